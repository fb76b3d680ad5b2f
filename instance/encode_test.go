package instance

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plainAttributes has Attributes' fields and no methods: encoding/json
// encodes it by reflection, which the hand-written encoder must match.
type plainAttributes Attributes

func TestAttributesEncoding(t *testing.T) {
	now := time.Unix(1700000000, 123456000)
	full := Attributes{
		Spec: Spec{
			CCPartition: "default", InstanceID: "id-1", InstanceIndex: 7, ApplicationID: "app",
			ApplicationVersion: "v<1>", ApplicationName: "n\"a\\m\te\u2028\x01é\xff", ApplicationURIs: []string{"a.example.com", "b&c"},
			DropletSHA1: "0123456789abcdef0123456789abcdef01234567", DropletURI: "http://x/y?a=1&b=2", Stack: "cflinuxfs",
			StartCommand: "bundle exec rails s -p $PORT", Limits: Limits{Mem: 256, Disk: 1024, FDs: 16384},
			Environment:        map[string]string{"Z": "1", "A": "two\nlines", "M": ""},
			Services:           []Service{{Name: "db", Label: "pg", Tags: []string{"sql"}, Credentials: map[string]any{"uri": "postgres://x", "port": 5432.0}}},
			VCAPApplication:    map[string]any{"space_name": "dev", "users": nil},
			EgressRules:        []container.NetOutRule{{Network: "10.0.0.0/8", Protocol: container.ProtocolTCP, Ports: container.PortRange{First: 80}}},
			HealthCheck:        HealthCheck{Type: HealthCheckHTTP, HTTPEndpoint: "/h", Timeout: Duration(90 * time.Second), LivenessInterval: Duration(time.Second)},
			HealthCheckTimeout: 90,
		},
		PrivateInstanceID: "p", State: StateCrashed,
		StateTimestamp: Timestamp{now}, StateStartingTimestamp: Timestamp{now.Add(-time.Minute)},
		StateRunningTimestamp: Timestamp{now.Add(-time.Second)}, StateCrashedTimestamp: Timestamp{now},
		WardenHandle: "inst-id-1", WardenJobID: "app", WardenContainerPath: "/depot/x", WardenHostIP: "10.0.0.1",
		WardenContainerIP: "10.0.0.2", InstanceHostPort: 61001, InstanceContainerPort: 61001,
		SyslogDrainURLs: []string{"syslog://d"}, ProcessPID: 12, ExitStatus: -1, ExitDescription: "out of memory",
		CrashCount: 3, InstancePath: "/base/crashes/id-1",
	}
	for name, a := range map[string]Attributes{
		"full":  full,
		"zero":  {State: StateBorn},
		"empty": {Spec: Spec{Environment: map[string]string{}, Services: []Service{}, ApplicationURIs: []string{}}, State: StateRunning, SyslogDrainURLs: []string{}},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(plainAttributes(a))
			require.NoError(t, err)
			got, err := appendAttributes(nil, &a)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
			viaMethod, err := json.Marshal(a)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(viaMethod))
		})
	}
	// Every field is covered: a struct with every field set differs from
	// the zero one in each of its keys.
	var zero, one map[string]any
	b, _ := json.Marshal(plainAttributes(full))
	require.NoError(t, json.Unmarshal(b, &one))
	b, _ = json.Marshal(plainAttributes{State: StateBorn})
	require.NoError(t, json.Unmarshal(b, &zero))
	n := reflect.TypeFor[Attributes]().NumField() - 1 + reflect.TypeFor[Spec]().NumField()
	assert.Len(t, one, n, "the full example sets every field")

	_, err := appendAttributes(nil, &Attributes{})
	assert.Error(t, err, "no state")
}

func TestSnapshotEncoding(t *testing.T) {
	s := &Snapshot{Time: Timestamp{time.Unix(1, 5e8)}, StagingTasks: []json.RawMessage{}}
	for i := range 1000 {
		s.Instances = append(s.Instances, Attributes{Spec: Spec{InstanceID: "i" + string(rune('a'+i%26))}, State: StateRunning, InstanceHostPort: i})
	}
	type plainSnapshot struct {
		Time         Timestamp         `json:"time"`
		Instances    []plainAttributes `json:"instances"`
		StagingTasks []json.RawMessage `json:"staging_tasks"`
	}
	ps := plainSnapshot{Time: s.Time, StagingTasks: s.StagingTasks}
	for _, a := range s.Instances {
		ps.Instances = append(ps.Instances, plainAttributes(a))
	}
	for _, n := range []int{0, 1, 3, 1000} {
		s2 := *s
		s2.Instances = s.Instances[:n]
		ps2 := ps
		ps2.Instances = ps.Instances[:n]
		want, err := json.Marshal(ps2)
		require.NoError(t, err)
		got, err := encodeSnapshot(&s2)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%d instances", n)
	}
}

// TestEncodingCacheSeesEveryChange changes each runtime field in turn and
// checks that the cached encoding follows.
func TestEncodingCacheSeesEveryChange(t *testing.T) {
	inst := newInstance(Spec{ApplicationID: "a", DropletSHA1: "0123456789abcdef0123456789abcdef01234567", Limits: Limits{Mem: 1}}, time.Unix(1, 0))
	at := reflect.TypeFor[Attributes]()
	for i := 1; i < at.NumField(); i++ { // 0 is the embedded Spec
		f := at.Field(i)
		if f.Name == "SyslogDrainURLs" {
			continue // immutable after creation
		}
		t.Run(f.Name, func(t *testing.T) {
			_, err := inst.appendJSONLocked(nil) // fill the cache
			require.NoError(t, err)
			v := reflect.ValueOf(&inst.a).Elem().Field(i)
			switch v.Interface().(type) {
			case string:
				v.SetString(v.String() + "x")
			case int:
				v.SetInt(v.Int() + 7)
			case State:
				v.Set(reflect.ValueOf(StateCrashed))
			case Timestamp:
				v.Set(reflect.ValueOf(Timestamp{time.Unix(int64(100+i), 0)}))
			default:
				t.Fatalf("field %s of type %s: teach this test", f.Name, f.Type)
			}
			got, err := inst.appendJSONLocked(nil)
			require.NoError(t, err)
			want, err := appendAttributes(nil, &inst.a)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
		})
	}
}

package instance_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paaskit/paaskit/instance"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDatabaseURL(t *testing.T) {
	svc := func(uri string) instance.Service {
		return instance.Service{Credentials: map[string]any{"uri": uri}}
	}
	for in, want := range map[string]string{
		"mysql://u:p@h/db":      "mysql2://u:p@h/db",
		"mysql2://u:p@h/db":     "mysql2://u:p@h/db",
		"postgresql://u@h/db":   "postgres://u@h/db",
		"postgres://u@h/db":     "postgres://u@h/db",
		"db2://u@h:50000/db":    "ibmdb://u@h:50000/db",
		"informix://u@h/db":     "ibmdb://u@h/db",
		"redis://h:6379":        "",
		"not a url at all %zz:": "",
	} {
		assert.Equal(t, want, instance.DatabaseURL([]instance.Service{svc(in)}), in)
	}
	assert.Equal(t, "postgres://a", instance.DatabaseURL([]instance.Service{svc("redis://x"), svc("postgres://a"), svc("mysql://b")}), "the first suitable one")
	assert.Empty(t, instance.DatabaseURL([]instance.Service{{Credentials: map[string]any{"host": "x"}}}))
}

func TestVCAPApplicationMergesTheControllersFields(t *testing.T) {
	start := time.Date(2015, 2, 10, 18, 21, 31, 0, time.UTC)
	a := instance.Attributes{
		Spec: instance.Spec{
			ApplicationID: "app", ApplicationName: "web", InstanceIndex: 2, InstanceID: "iid",
			Limits:          instance.Limits{Mem: 128},
			VCAPApplication: map[string]any{"space_name": "dev", "name": "from-cc", "instance_id": "cc-must-not-win"},
		},
		InstanceContainerPort:  61001,
		StateStartingTimestamp: instance.Timestamp{Time: start},
	}
	v := instance.VCAPApplication(&a)
	assert.Equal(t, "dev", v["space_name"], "the controller's own fields")
	assert.Equal(t, "from-cc", v["name"], "the controller's value over the default")
	assert.Equal(t, "iid", v["instance_id"], "the DEA's fields over the controller's")
	assert.Equal(t, "0.0.0.0", v["host"])
	assert.Equal(t, 61001, v["port"])
	assert.Equal(t, "2015-02-10 18:21:31 +0000", v["started_at"])
	assert.Equal(t, start.Unix(), v["started_at_timestamp"])
	assert.Equal(t, []string{}, v["application_uris"])

	env := instance.Environment(instance.EnvInput{Attributes: a, LocalIP: "10.0.0.1"})
	var got map[string]any
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "VCAP_APPLICATION="); ok {
			require.NoError(t, json.Unmarshal([]byte(v), &got))
		}
	}
	assert.Equal(t, "iid", got["instance_id"])
	assert.True(t, slices.IsSorted(env))
}

func TestParseEnv(t *testing.T) {
	env, err := instance.ParseEnv([]string{"A=1", "B=x=y", "A=2", "C="})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"A": "2", "B": "x=y", "C": ""}, env)
	_, err = instance.ParseEnv([]string{"NOEQUALS"})
	assert.ErrorIs(t, err, instance.ErrInvalidSpec)
}

func TestCPUShares(t *testing.T) {
	for mem, want := range map[int64]uint64{1: 1, 8: 1, 16: 2, 256: 32, 1024: 128, 2048: 256, 8192: 256} {
		assert.Equal(t, want, instance.CPUShares(mem), "mem %d", mem)
	}
}

func TestTimestampJSON(t *testing.T) {
	ts := instance.Timestamp{Time: time.Unix(1423582880, 500_000_000)}
	b, err := json.Marshal(ts)
	require.NoError(t, err)
	assert.Equal(t, "1423582880.5", string(b))
	var back instance.Timestamp
	require.NoError(t, json.Unmarshal(b, &back))
	assert.True(t, ts.Equal(back.Time))
	require.NoError(t, json.Unmarshal([]byte("null"), &back))
	assert.True(t, back.IsZero())
	assert.Error(t, json.Unmarshal([]byte(`"x"`), &back))
}

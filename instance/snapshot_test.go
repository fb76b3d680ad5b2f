package instance_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paaskit/paaskit/instance"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deaNGFields are the fields of dea_ng's Instance#snapshot_attributes.
var deaNGFields = []string{
	"cc_partition", "instance_id", "instance_index", "private_instance_id", "warden_handle", "limits",
	"health_check_timeout", "environment", "services", "application_id", "application_version",
	"application_name", "application_uris", "droplet_sha1", "droplet_uri", "start_command", "state",
	"warden_job_id", "warden_container_path", "warden_host_ip", "warden_container_ip",
	"instance_host_port", "instance_container_port", "syslog_drain_urls", "state_starting_timestamp",
}

func TestSnapshotUsesDeaNGFieldNames(t *testing.T) {
	e := newEnv(t)
	e.start(t, e.spec(func(s *instance.Spec) {
		s.CCPartition = "default"
		s.HealthCheckTimeout = 90
		s.Environment = map[string]string{"A": "1"}
		s.Services = []instance.Service{{Name: "logs", Label: "syslog", SyslogDrainURL: "syslog://drain:514"}}
		s.ApplicationURIs = []string{"web.example.com"}
		s.StartCommand = "./web"
	}))
	born, err := e.m.Create(e.spec(func(s *instance.Spec) { s.InstanceIndex = 1 }))
	require.NoError(t, err)
	require.NoError(t, e.m.SaveSnapshot(t.Context()))

	b, err := os.ReadFile(e.m.SnapshotPath())
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.IsType(t, float64(0), raw["time"])
	assert.Equal(t, []any{}, raw["staging_tasks"])
	insts := raw["instances"].([]any)
	require.Len(t, insts, 1, "BORN instances are not saved")
	got := insts[0].(map[string]any)
	for _, f := range deaNGFields {
		assert.Contains(t, got, f)
	}
	assert.Equal(t, "RUNNING", got["state"])
	assert.Equal(t, "default", got["cc_partition"])
	assert.Equal(t, float64(90), got["health_check_timeout"])
	assert.Equal(t, map[string]any{"mem": float64(256), "disk": float64(1024), "fds": float64(1000)}, got["limits"])
	assert.Equal(t, []any{"syslog://drain:514"}, got["syslog_drain_urls"])
	assert.Equal(t, "app", got["warden_job_id"])
	assert.Equal(t, "/fake/depot/"+got["warden_handle"].(string), got["warden_container_path"])
	assert.NotEqual(t, born.ID(), got["instance_id"])

	// And back.
	snap, err := instance.ReadSnapshotFile(e.m.SnapshotPath())
	require.NoError(t, err)
	require.Len(t, snap.Instances, 1)
	a := snap.Instances[0]
	want := e.m.Registry().ByState(instance.StateRunning)[0].Attributes()
	assert.Equal(t, want.InstanceID, a.InstanceID)
	assert.Equal(t, want.Limits, a.Limits)
	assert.Equal(t, want.Services, a.Services)
	assert.Equal(t, want.StateStartingTimestamp.UnixMicro(), a.StateStartingTimestamp.UnixMicro())
	assert.Equal(t, want.InstanceHostPort, a.InstanceHostPort)
	assert.Equal(t, instance.StateRunning, a.State)
}

func TestSnapshotIsWrittenOnEveryChange(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	read := func() []instance.Attributes {
		snap, err := instance.ReadSnapshotFile(e.m.SnapshotPath())
		if err != nil {
			return nil
		}
		return snap.Instances
	}
	require.Eventually(t, func() bool {
		s := read()
		return len(s) == 1 && s[0].State == instance.StateRunning
	}, 5*time.Second, time.Millisecond)
	e.proc(t, inst).Exit(9)
	require.Eventually(t, func() bool {
		s := read()
		return len(s) == 1 && s[0].State == instance.StateCrashed && s[0].ExitStatus == 9
	}, 5*time.Second, time.Millisecond)
	// Nothing but the snapshot in db/, no temporary files left.
	ents, err := os.ReadDir(filepath.Dir(e.m.SnapshotPath()))
	require.NoError(t, err)
	assert.Len(t, ents, 1)
	writes, lastErr := e.m.SnapshotStats()
	assert.Positive(t, writes)
	assert.NoError(t, lastErr)
}

// A snapshot as dea_ng wrote it decodes.
func TestReadDeaNGSnapshot(t *testing.T) {
	const deaNG = `{"time":1423582891.123,"instances":[{"cc_partition":"default","instance_id":"6a4d3a0a2d0f4f3b8e7c4c7f0f1b2c3d",
	"instance_index":0,"private_instance_id":"x","warden_handle":"17i4mqdvo5r","limits":{"mem":256,"disk":1024,"fds":16384},
	"health_check_timeout":null,"environment":{"K":"V"},"services":[],"application_id":"app","application_version":"v",
	"application_name":"n","application_uris":["n.example.com"],"droplet_sha1":"0123456789abcdef0123456789abcdef01234567",
	"droplet_uri":"http://cc/d","start_command":null,"state":"RUNNING","warden_job_id":11,"warden_container_path":"/var/vcap/data/warden/depot/17i4mqdvo5r",
	"warden_host_ip":"10.244.0.1","warden_container_ip":"10.244.0.2","instance_host_port":61001,"instance_container_port":61001,
	"syslog_drain_urls":[],"state_starting_timestamp":1423582880.5}],"staging_tasks":[]}`
	_, err := instance.ReadSnapshot(strings.NewReader(deaNG))
	// dea_ng's job ids were numbers; paaskit's are strings.
	assert.ErrorContains(t, err, "warden_job_id")
	snap, err := instance.ReadSnapshot(strings.NewReader(strings.Replace(deaNG, `"warden_job_id":11`, `"warden_job_id":"11"`, 1)))
	require.NoError(t, err)
	a := snap.Instances[0]
	assert.Equal(t, instance.StateRunning, a.State)
	assert.Equal(t, int64(16384), a.Limits.FDs)
	assert.Equal(t, 61001, a.InstanceHostPort)
	assert.Equal(t, int64(1423582880), a.StateStartingTimestamp.Unix())
	assert.Equal(t, 500*time.Millisecond, time.Duration(a.StateStartingTimestamp.Nanosecond()))
}

package nats_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/nats"
)

// The golden files in testdata/golden are messages as a Cloud Controller,
// DEA or gorouter of the classic era sent them, written from the field
// lists of PROTOCOL.md §1 and the senders' code. Each must decode,
// validate, and encode again to the same JSON: same members, same
// values, nothing lost (a null and an absent member count as the same).

func TestGoldenRoundTrip(t *testing.T) {
	tests := []struct {
		file string
		run  func(t *testing.T, data []byte) any
	}{
		{"dea.advertise.json", roundTrip[nats.AdvertiseMessage]},
		{"dea.start.json", roundTrip[nats.StartMessage]},
		{"dea.start.unknown_fields.json", roundTrip[nats.StartMessage]},
		{"dea.stop.json", roundTrip[nats.StopMessage]},
		{"dea.stop.instances.json", roundTrip[nats.StopMessage]},
		{"dea.update.json", roundTrip[nats.UpdateMessage]},
		{"dea.find.droplet.json", roundTrip[nats.FindDropletRequest]},
		{"dea.find.droplet.response.json", roundTrip[nats.FindDropletResponse]},
		{"dea.heartbeat.json", roundTrip[nats.HeartbeatMessage]},
		{"droplet.exited.json", roundTrip[nats.ExitedMessage]},
		{"dea.shutdown.json", roundTrip[nats.ShutdownMessage]},
		{"dea.locate.json", roundTrip[nats.LocateMessage]},
		{"router.register.json", roundTrip[nats.RegistryMessage]},
		{"router.register.gorouter.json", roundTrip[nats.RegistryMessage]},
		{"router.unregister.dirserver.json", roundTrip[nats.RegistryMessage]},
		{"router.start.json", roundTrip[nats.RouterStartMessage]},
		{"staging.start.json", roundTrip[nats.StagingRequest]},
		{"staging.start.setup_reply.json", roundTrip[nats.StagingReply]},
		{"staging.start.completion_reply.json", roundTrip[nats.StagingReply]},
		{"staging.start.failure_reply.json", roundTrip[nats.StagingReply]},
		{"staging.stop.json", roundTrip[nats.StagingStopMessage]},
		{"staging.advertise.json", roundTrip[nats.StagingAdvertiseMessage]},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "golden", tc.file))
			require.NoError(t, err)
			tc.run(t, data)
		})
	}
	// Every golden file is covered.
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	require.NoError(t, err)
	for _, f := range files {
		assert.True(t, seen[filepath.Base(f)], "golden file %s has no test", f)
	}
}

// roundTrip decodes data as a T, checks it is valid, encodes it again
// and compares, and checks that encoding/json gives the same results.
func roundTrip[T nats.Message](t *testing.T, data []byte) any {
	t.Helper()
	msg, err := nats.Decode[T](data)
	require.NoError(t, err)

	out, err := nats.Encode(msg)
	require.NoError(t, err)
	if diff := cmp.Diff(normalize(t, data), normalize(t, out)); diff != "" {
		t.Errorf("round trip changed the message (-golden +encoded):\n%s\nencoded: %s", diff, out)
	}

	// The standard library's encoding/json sees the same thing.
	std, err := json.Marshal(msg)
	require.NoError(t, err)
	assert.JSONEq(t, string(out), string(std))
	var viaStd T
	require.NoError(t, json.Unmarshal(data, &viaStd))
	assert.Equal(t, msg, viaStd)

	// Encoding is deterministic and stable.
	again, err := nats.Decode[T](out)
	require.NoError(t, err)
	out2, err := nats.Encode(again)
	require.NoError(t, err)
	assert.Equal(t, string(out), string(out2))
	return msg
}

// normalize parses JSON into generic values, numbers as written, and
// drops null members.
func normalize(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return dropNulls(v)
}

func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = dropNulls(e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropNulls(e)
		}
	}
	return v
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	require.NoError(t, err)
	return data
}

func TestGoldenValues(t *testing.T) {
	start, err := nats.Decode[nats.StartMessage](readGolden(t, "dea.start.json"))
	require.NoError(t, err)
	assert.Equal(t, "9f2c9a3e-3b4d-4c1b-8f5e-2d6a7b8c9d0e", start.Droplet)
	assert.Equal(t, "5f0d1ce9c2b5a3f1b6f7d1d4c5e6a7b8c9d0e1f2", start.SHA1)
	assert.Equal(t, nats.Limits{Mem: 256, Disk: 1024, FDs: 16384}, start.Limits)
	assert.Equal(t, 1, start.Index)
	assert.Equal(t, 120, start.HealthCheckTimeout)
	assert.Len(t, start.Services, 1)
	require.Len(t, start.EgressNetworkRules, 3)
	require.NotNil(t, start.EgressNetworkRules[2].Type)
	assert.Equal(t, 0, *start.EgressNetworkRules[2].Type)
	assert.Nil(t, start.Extra)

	hb, err := nats.Decode[nats.HeartbeatMessage](readGolden(t, "dea.heartbeat.json"))
	require.NoError(t, err)
	require.Len(t, hb.Droplets, 3)
	assert.Equal(t, nats.StateRunning, hb.Droplets[0].State)
	assert.Equal(t, nats.StateCrashed, hb.Droplets[1].State)
	assert.Equal(t, 1712345690.5, hb.Droplets[1].StateTimestamp)

	stg, err := nats.Decode[nats.StagingRequest](readGolden(t, "staging.start.json"))
	require.NoError(t, err)
	require.NotNil(t, stg.StartMessage)
	assert.Empty(t, stg.StartMessage.SHA1, "the staging start message has no droplet yet")
	assert.Equal(t, 1024, stg.Properties.Resources.Memory)

	setup, err := nats.Decode[nats.StagingReply](readGolden(t, "staging.start.setup_reply.json"))
	require.NoError(t, err)
	assert.False(t, setup.Final())
	assert.NoError(t, setup.Failure())
	done, err := nats.Decode[nats.StagingReply](readGolden(t, "staging.start.completion_reply.json"))
	require.NoError(t, err)
	assert.True(t, done.Final())
	assert.NoError(t, done.Failure())
	failed, err := nats.Decode[nats.StagingReply](readGolden(t, "staging.start.failure_reply.json"))
	require.NoError(t, err)
	assert.True(t, failed.Final())
	var se *nats.StagingError
	require.ErrorAs(t, failed.Failure(), &se)
	assert.Equal(t, "BuildpackCompileFailed", se.Type)
}

func TestUnknownFieldsKept(t *testing.T) {
	start, err := nats.Decode[nats.StartMessage](readGolden(t, "dea.start.unknown_fields.json"))
	require.NoError(t, err)
	assert.JSONEq(t, `"http"`, string(start.Extra["health_check_type"]))
	assert.JSONEq(t, `[8080, 9090]`, string(start.Extra["ports"]))
	assert.JSONEq(t, `null`, string(start.Extra["docker_image"]))
	assert.JSONEq(t, `8`, string(start.Limits.Extra["cpu_weight"]))

	// A name in Extra that is also a field cannot be encoded.
	start.Extra["droplet"] = json.RawMessage(`"other"`)
	_, err = nats.Encode(start)
	assert.Error(t, err)
}

package nats_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/nats"
)

func validStart() nats.StartMessage {
	return nats.StartMessage{
		Droplet:       "app-guid",
		Name:          "dora",
		SHA1:          "5f0d1ce9c2b5a3f1b6f7d1d4c5e6a7b8c9d0e1f2",
		ExecutableURI: "https://cc.example.com/droplet",
		Version:       "v1",
		Limits:        nats.Limits{Mem: 256, Disk: 1024, FDs: 16384},
		Env:           []string{"A=1"},
	}
}

// fields returns the Field of every ValidationError in err.
func fields(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ve *nats.ValidationError
		if errors.As(e, &ve) {
			out = append(out, ve.Field)
		}
	}
	walk(err)
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		msg  nats.Message
		want []string // fields reported; nil means valid
	}{
		{"start valid", validStart(), nil},
		{"start without droplet, sha1, uri", func() nats.StartMessage {
			m := validStart()
			m.Droplet, m.SHA1, m.ExecutableURI = "", "", ""
			return m
		}(), []string{"droplet", "sha1", "executableUri"}},
		{"start bad sha1", func() nats.StartMessage { m := validStart(); m.SHA1 = "xyz"; return m }(), []string{"sha1"}},
		{"start relative uri", func() nats.StartMessage { m := validStart(); m.ExecutableURI = "droplet.tgz"; return m }(), []string{"executableUri"}},
		{"start negative limits", func() nats.StartMessage {
			m := validStart()
			m.Limits = nats.Limits{Mem: -1, Disk: -2, FDs: -3}
			m.Index = -1
			m.HealthCheckTimeout = -5
			return m
		}(), []string{"index", "health_check_timeout", "limits.mem", "limits.disk", "limits.fds"}},
		{"start bad env and uris", func() nats.StartMessage {
			m := validStart()
			m.Env = []string{"A=1", "novalue", "=x"}
			m.URIs = []string{"ok.example.com", " "}
			return m
		}(), []string{"uris[1]", "env[1]", "env[2]"}},
		{"stop with nothing to match", nats.StopMessage{}, []string{"droplet"}},
		{"stop valid", nats.StopMessage{InstanceFilter: nats.InstanceFilter{Droplet: "app"}}, nil},
		{"stop bad filters", nats.StopMessage{InstanceFilter: nats.InstanceFilter{
			Droplet: "app", Indices: []int{0, -1}, States: []nats.State{nats.StateRunning, 0}, Instances: []string{""},
		}}, []string{"instances[0]", "indices[1]", "states[1]"}},
		{"find droplet without droplet", nats.FindDropletRequest{IncludeStats: true}, []string{"droplet"}},
		{"find response missing all", nats.FindDropletResponse{Index: -1}, []string{"dea", "droplet", "instance", "index", "state"}},
		{"find response bad stats", nats.FindDropletResponse{
			DEA: "d", Droplet: "a", Instance: "i", State: nats.StateRunning,
			Stats: &nats.InstanceStats{Port: 70000, MemQuota: -1},
		}, []string{"stats.port", "stats.mem_quota"}},
		{"heartbeat", nats.HeartbeatMessage{Droplets: []nats.HeartbeatInstance{
			{Droplet: "a", Instance: "i", State: nats.StateRunning},
			{Index: -1},
		}}, []string{"dea", "droplets[1].droplet", "droplets[1].instance", "droplets[1].index", "droplets[1].state"}},
		{"exited", nats.ExitedMessage{}, []string{"droplet", "instance", "reason"}},
		{"advertise", nats.AdvertiseMessage{AvailableMemory: -1, AppIDToCount: map[string]int{"a": -1}, URL: "not a url"},
			[]string{"id", "url", "available_memory", "app_id_to_count.a"}},
		{"router register", nats.RegistryMessage{Port: 0, RouteServiceURL: "http://rs"}, []string{"host", "port", "uris", "route_service_url"}},
		{"router register tls only", nats.RegistryMessage{Host: "h", TLSPort: 443, URIs: []string{"a.b"}}, nil},
		{"router start", nats.RouterStartMessage{PruneThresholdInSeconds: -1}, []string{"id", "pruneThresholdInSeconds"}},
		{"staging request", nats.StagingRequest{
			StartMessage: &nats.StartMessage{Limits: nats.Limits{Mem: -1}},
			MemoryLimit:  -1,
		}, []string{"app_id", "task_id", "download_uri", "upload_uri", "memory_limit", "start_message.droplet", "start_message.executableUri", "start_message.limits.mem"}},
		{"staging reply", nats.StagingReply{DropletSHA1: "nope"}, []string{"task_id", "droplet_sha1"}},
		{"staging stop", nats.StagingStopMessage{}, []string{"app_id"}},
		{"staging advertise", nats.StagingAdvertiseMessage{Stacks: []string{""}}, []string{"id", "stacks[0]"}},
		{"shutdown", nats.ShutdownMessage{}, []string{"id"}},
		{"update", nats.UpdateMessage{}, []string{"droplet"}},
		{"locate", nats.LocateMessage{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.msg.Validate()
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, nats.ErrInvalidMessage)
			assert.ElementsMatch(t, tc.want, fields(t, err))
			assert.Contains(t, err.Error(), "nats: invalid ")
		})
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	_, err := nats.Encode(nats.StopMessage{})
	var ve *nats.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "StopMessage", ve.Message)
	assert.Equal(t, "droplet", ve.Field)
	assert.Equal(t, `nats: invalid StopMessage: droplet: required`, ve.Error())
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		class   error
		message string
	}{
		{"syntax", `{"droplet":`, nats.ErrMalformed, ""},
		{"wrong type", `{"droplet": 5}`, nats.ErrMalformed, ""},
		{"unknown state", `{"droplet":"a","states":["SLEEPING"]}`, nats.ErrMalformed, ""},
		{"trailing data", `{"droplet":"a"} {}`, nats.ErrMalformed, ""},
		{"empty", ``, nats.ErrMalformed, ""},
		{"invalid", `{"indices":[-1]}`, nats.ErrInvalidMessage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := nats.Decode[nats.StopMessage]([]byte(tc.data))
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.class)
			if tc.class == nats.ErrMalformed {
				var de *nats.DecodeError
				require.ErrorAs(t, err, &de)
				assert.Equal(t, "StopMessage", de.Message)
			}
		})
	}

	// A locate message may be empty.
	_, err := nats.Decode[nats.LocateMessage](nil)
	assert.NoError(t, err)

	// Case-insensitive states, as the DEA's from_external.
	m, err := nats.Decode[nats.StopMessage]([]byte(`{"droplet":"a","states":["running","Crashed"]}`))
	require.NoError(t, err)
	assert.Equal(t, []nats.State{nats.StateRunning, nats.StateCrashed}, m.States)
}

func TestInstanceFilterMatch(t *testing.T) {
	f := nats.InstanceFilter{Droplet: "app", Version: "v2", InstanceIDs: []string{"i1", "i2"}, Indices: []int{0, 1}, States: []nats.State{nats.StateRunning}}
	assert.True(t, f.Match("app", "v2", "i1", 0, nats.StateRunning))
	assert.False(t, f.Match("other", "v2", "i1", 0, nats.StateRunning), "droplet")
	assert.False(t, f.Match("app", "v1", "i1", 0, nats.StateRunning), "version")
	assert.False(t, f.Match("app", "v2", "i3", 0, nats.StateRunning), "instance")
	assert.False(t, f.Match("app", "v2", "i1", 2, nats.StateRunning), "index")
	assert.False(t, f.Match("app", "v2", "i1", 0, nats.StateCrashed), "state")
	// instances wins over instance_ids, as in the DEA.
	f.Instances = []string{"i3"}
	assert.True(t, f.Match("app", "v2", "i3", 0, nats.StateRunning))
	assert.False(t, f.Match("app", "v2", "i1", 0, nats.StateRunning))
	// Only the droplet: every instance of the app.
	g := nats.InstanceFilter{Droplet: "app"}
	assert.True(t, g.Match("app", "any", "x", 7, nats.StateStopping))
	assert.False(t, (&nats.InstanceFilter{}).Match("", "", "", 0, nats.StateRunning))
}

func TestState(t *testing.T) {
	for _, s := range nats.States() {
		b, err := s.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, s.String(), string(b))
		var back nats.State
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, s, back)
	}
	assert.Len(t, nats.States(), 9)
	assert.Equal(t, "State(0)", nats.State(0).String())
	_, err := nats.State(0).MarshalText()
	assert.ErrorIs(t, err, nats.ErrInvalidMessage)
	_, err = json.Marshal(nats.HeartbeatInstance{Droplet: "a", Instance: "i"})
	assert.Error(t, err, "an unset state cannot go on the wire")
	_, err = nats.ParseState("ASLEEP")
	assert.ErrorIs(t, err, nats.ErrInvalidMessage)
	s, err := nats.ParseState("evacuating")
	require.NoError(t, err)
	assert.Equal(t, nats.StateEvacuating, s)

	for _, r := range []nats.ExitReason{nats.ExitCrashed, nats.ExitStopped, nats.ExitDEAShutdown, nats.ExitDEAEvacuation} {
		b, err := r.MarshalText()
		require.NoError(t, err)
		back, err := nats.ParseExitReason(string(b))
		require.NoError(t, err)
		assert.Equal(t, r, back)
	}
	assert.Equal(t, "DEA_SHUTDOWN", nats.ExitDEAShutdown.String())
	_, err = nats.ParseExitReason("BORED")
	assert.ErrorIs(t, err, nats.ErrInvalidMessage)
}

func TestSubjects(t *testing.T) {
	assert.Equal(t, "dea.0-abc.start", nats.DEAStart("0-abc").String())
	assert.NoError(t, nats.DEAStart("0-abc").Err())
	assert.Equal(t, "staging.0-abc.start", nats.StagingStart("0-abc").String())
	assert.Equal(t, "dea.*.start", nats.DEAStart("*").String())
	assert.NoError(t, nats.DEAStart("*").Err())
	for _, bad := range []string{"", "a.b", "a b", ">", "a*"} {
		assert.ErrorIs(t, nats.DEAStart(bad).Err(), nats.ErrInvalidSubject, "%q", bad)
		assert.ErrorIs(t, nats.StagingStart(bad).Err(), nats.ErrInvalidSubject, "%q", bad)
	}
	assert.ErrorIs(t, nats.Subject[nats.StopMessage]{}.Err(), nats.ErrInvalidSubject)
	assert.ErrorIs(t, nats.RequestSubject[nats.LocateMessage, nats.RouterStartMessage]{}.Err(), nats.ErrInvalidSubject)

	names := map[string]string{
		"dea.advertise":     nats.DEAAdvertise.String(),
		"dea.stop":          nats.DEAStop.String(),
		"dea.update":        nats.DEAUpdate.String(),
		"dea.find.droplet":  nats.DEAFindDroplet.String(),
		"dea.heartbeat":     nats.DEAHeartbeat.String(),
		"dea.shutdown":      nats.DEAShutdown.String(),
		"dea.locate":        nats.DEALocate.String(),
		"droplet.exited":    nats.DropletExited.String(),
		"router.register":   nats.RouterRegister.String(),
		"router.unregister": nats.RouterUnregister.String(),
		"router.start":      nats.RouterStart.String(),
		"router.greet":      nats.RouterGreet.String(),
		"staging.stop":      nats.StagingStop.String(),
		"staging.locate":    nats.StagingLocate.String(),
		"staging.advertise": nats.StagingAdvertise.String(),
	}
	for want, got := range names {
		assert.Equal(t, want, got)
	}
}

package container

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpecValidate(t *testing.T) {
	ok := Spec{RootFS: "/stacks/s"}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		name  string
		mod   func(*Spec)
		field string
	}{
		{"no rootfs", func(s *Spec) { s.RootFS = "" }, "RootFS"},
		{"relative rootfs", func(s *Spec) { s.RootFS = "s" }, "RootFS"},
		{"handle with slash", func(s *Spec) { s.Handle = "a/b" }, "Handle"},
		{"handle dot-dot", func(s *Spec) { s.Handle = ".." }, "Handle"},
		{"handle too long", func(s *Spec) { s.Handle = strings.Repeat("a", 65) }, "Handle"},
		{"handle starts with dash", func(s *Spec) { s.Handle = "-x" }, "Handle"},
		{"relative bind source", func(s *Spec) { s.BindMounts = []BindMount{{SrcPath: "x", DstPath: "/x"}} }, "BindMounts[0].SrcPath"},
		{"bind onto root", func(s *Spec) { s.BindMounts = []BindMount{{SrcPath: "/x", DstPath: "/"}} }, "BindMounts[0].DstPath"},
		{"bind into dev", func(s *Spec) { s.BindMounts = []BindMount{{SrcPath: "/x", DstPath: "/dev/sda"}} }, "BindMounts[0].DstPath"},
		{"env without =", func(s *Spec) { s.Env = []string{"A=1", "B"} }, "Env[1]"},
		{"env empty key", func(s *Spec) { s.Env = []string{"=1"} }, "Env[0]"},
		{"hostname bad", func(s *Spec) { s.Hostname = "a_b" }, "Hostname"},
		{"hostname long", func(s *Spec) { s.Hostname = strings.Repeat("a", 64) }, "Hostname"},
		{"empty property key", func(s *Spec) { s.Properties = map[string]string{"": "v"} }, "Properties"},
		{"memory too small", func(s *Spec) { s.Limits.MemoryBytes = 1 << 20 }, "Limits.MemoryBytes"},
		{"memory negative", func(s *Spec) { s.Limits.MemoryBytes = -1 }, "Limits.MemoryBytes"},
		{"shares too big", func(s *Spec) { s.Limits.CPUShares = 300000 }, "Limits.CPUShares"},
		{"shares too small", func(s *Spec) { s.Limits.CPUShares = 1 }, "Limits.CPUShares"},
		{"pids negative", func(s *Spec) { s.Limits.PidsMax = -1 }, "Limits.PidsMax"},
		{"grace negative", func(s *Spec) { s.GraceTime = -time.Second }, "GraceTime"},
		{"user uid not a number", func(s *Spec) { s.User = "a:1" }, "User"},
		{"user with slash", func(s *Spec) { s.User = "../x" }, "User"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.mod(&s)
			err := s.Validate()
			var se *SpecError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.field, se.Field)
			assert.ErrorIs(t, err, ErrInvalidSpec)
			assert.True(t, strings.HasPrefix(err.Error(), "container: invalid spec: "+tc.field+": "), err.Error())
		})
	}
}

func TestProcessSpecValidate(t *testing.T) {
	require.NoError(t, (&ProcessSpec{Path: "sh", User: "1000:1000", Dir: "/tmp"}).Validate())
	for _, tc := range []struct {
		name  string
		p     ProcessSpec
		field string
	}{
		{"no path", ProcessSpec{}, "Path"},
		{"bad id", ProcessSpec{Path: "sh", ID: "a/../b"}, "ID"},
		{"nul in arg", ProcessSpec{Path: "sh", Args: []string{"a\x00b"}}, "Args[0]"},
		{"relative dir", ProcessSpec{Path: "sh", Dir: "tmp"}, "Dir"},
		{"bad env", ProcessSpec{Path: "sh", Env: []string{"X"}}, "Env[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var se *SpecError
			require.ErrorAs(t, tc.p.Validate(), &se)
			assert.Equal(t, tc.field, se.Field)
		})
	}
}

func TestParseStartTime(t *testing.T) {
	// The command name may contain spaces and parentheses.
	line := "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 987654 1234567 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
	st, err := parseStartTime(line)
	require.NoError(t, err)
	assert.Equal(t, uint64(987654), st)
	_, err = parseStartTime("4242 (x) S 1 2")
	assert.Error(t, err)
	_, err = parseStartTime("garbage")
	assert.Error(t, err)
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := containerState{
		Version: stateVersion, Handle: "h1", Phase: phaseActive,
		Spec:  Spec{Handle: "h1", RootFS: "/s", Properties: map[string]string{"a": "b"}, GraceTime: time.Minute, Limits: Limits{MemoryBytes: 64 << 20}},
		Stack: "/s", CgroupPath: "/paaskit/x-h1", AgentPID: 42, AgentStartTime: 99,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Events: []string{"out of memory"}, OOMKills: 1,
	}
	require.NoError(t, writeState(dir, &in))
	out, err := loadState(dir)
	require.NoError(t, err)
	assert.Equal(t, in, *out)

	in.Version = 99
	require.NoError(t, writeState(dir, &in))
	_, err = loadState(dir)
	assert.ErrorContains(t, err, "version 99")
}

func TestAgentErrorsKeepTheirKind(t *testing.T) {
	for _, base := range []error{ErrAlreadyExists, ErrNotFound, ErrInvalidSpec, ErrStopped} {
		resp := agentResponse{Error: "x", Code: codeOf(errors.Join(base))}
		assert.ErrorIs(t, resp.err(), base)
	}
	assert.ErrorIs(t, (&agentResponse{Error: "boom"}).err(), ErrAgent)
	assert.NoError(t, (&agentResponse{}).err())
}

func TestDefaultHostname(t *testing.T) {
	assert.Equal(t, "my-app-1", defaultHostname("my_app.1"))
	assert.Equal(t, "container", defaultHostname("___"))
	assert.Len(t, defaultHostname(strings.Repeat("a", 64)), 63)
}

func TestDispatcherDeliversInOrderAndDrainsOnClose(t *testing.T) {
	var mu sync.Mutex
	var got []int
	d := newDispatcher(func(e Event) {
		mu.Lock()
		got = append(got, int(e.Type))
		mu.Unlock()
	})
	for i := range 100 {
		d.send(Event{Type: EventType(i)})
	}
	d.close()
	d.close() // idempotent
	d.send(Event{Type: 1000})
	require.Len(t, got, 100)
	for i, v := range got {
		assert.Equal(t, i, v)
	}
}

func TestMessageTooLong(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeMessage(&buf, agentRequest{Op: opRun, Process: &agentProc{Path: strings.Repeat("x", maxMessage)}}))
	var req agentRequest
	err := readMessage(newBufferReader(&buf), &req)
	assert.ErrorContains(t, err, "too long")
}

package instance_test

import (
	"os"
	"testing"
	"time"

	"github.com/paaskit/paaskit/instance"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResume(t *testing.T) {
	e := newEnv(t)
	running := e.start(t, e.spec())
	gone := e.start(t, e.spec(func(s *instance.Spec) { s.InstanceIndex = 1 }))
	exited := e.start(t, e.spec(func(s *instance.Spec) { s.InstanceIndex = 2 }))
	crashed := e.start(t, e.spec(func(s *instance.Spec) { s.InstanceIndex = 3 }))
	e.proc(t, crashed).Exit(4)
	waitState(t, crashed, instance.StateCrashed)
	require.NoError(t, e.m.Close())
	require.NoError(t, e.m.Close())

	// While no Manager watches: one container vanishes, one process exits.
	goneHandle := gone.Attributes().WardenHandle
	require.NoError(t, e.c.Container(goneHandle).Destroy(t.Context()))
	e.proc(t, exited).Exit(7)
	runsBefore := len(e.c.Calls())
	pid := e.proc(t, running).PID()

	e.m = e.open(t)
	r := record(e.m)
	insts, err := e.m.Resume(t.Context())
	require.NoError(t, err)
	require.Len(t, insts, 4)
	byIndex := map[int]*instance.Instance{}
	for _, i := range insts {
		byIndex[i.Attributes().InstanceIndex] = i
	}

	a := byIndex[0].Attributes()
	assert.Equal(t, instance.StateRunning, a.State, "re-linked")
	assert.Equal(t, running.ID(), a.InstanceID)
	assert.Equal(t, pid, a.ProcessPID, "same process")
	assert.Equal(t, running.Attributes().StateRunningTimestamp.UnixMicro(), a.StateRunningTimestamp.UnixMicro(), "saved timestamps kept")
	for _, c := range e.c.Calls()[runsBefore:] {
		assert.NotEqual(t, "run", c.Op, "no process restarted")
		assert.NotEqual(t, "create", c.Op)
	}

	a = byIndex[1].Attributes()
	assert.Equal(t, instance.StateCrashed, a.State, "container gone")
	assert.Equal(t, instance.DescResumedGone, a.ExitDescription)

	a = byIndex[2].Attributes()
	assert.Equal(t, instance.StateCrashed, a.State, "process exited meanwhile")
	assert.Equal(t, 7, a.ExitStatus)
	assert.Equal(t, instance.DescExited, a.ExitDescription)

	a = byIndex[3].Attributes()
	assert.Equal(t, instance.StateCrashed, a.State)
	assert.Equal(t, 4, a.ExitStatus, "the crash as saved")
	assert.Equal(t, crashed.Attributes().StateCrashedTimestamp.UnixMicro(), a.StateCrashedTimestamp.UnixMicro())

	flush(t, e.m)
	assert.Equal(t, transitions("BORN", "RESUMING", "RUNNING"), r.strings(running.ID()))
	assert.Equal(t, transitions("BORN", "RESUMING", "CRASHED"), r.strings(gone.ID()))

	// The resumed instance is watched again.
	e.proc(t, running).Exit(1)
	waitState(t, byIndex[0], instance.StateCrashed)
}

func TestResumeStartingBecomesCrashed(t *testing.T) {
	e := newEnv(t)
	inst, err := e.m.Create(e.spec(func(s *instance.Spec) { s.HealthCheck.Type = instance.HealthCheckPort }))
	require.NoError(t, err)
	done := make(chan error)
	go func() { done <- e.m.Start(t.Context(), inst) }()
	require.Eventually(t, func() bool {
		c := e.c.Container(inst.Attributes().WardenHandle)
		return c != nil && c.Process(instance.ProcessID) != nil && inst.Attributes().WardenContainerPath != ""
	}, 5*time.Second, time.Millisecond)
	// The DEA dies while the instance is STARTING.
	require.NoError(t, e.m.Close())
	assert.ErrorIs(t, <-done, instance.ErrClosed)
	assert.Equal(t, instance.StateStarting, inst.State())

	e.m = e.open(t)
	insts, err := e.m.Resume(t.Context())
	require.NoError(t, err)
	require.Len(t, insts, 1)
	a := insts[0].Attributes()
	assert.Equal(t, instance.StateCrashed, a.State, "not STARTING forever (dea_ng#152)")
	assert.Equal(t, instance.DescResumedStarting, a.ExitDescription)
	assert.True(t, e.c.Container(a.WardenHandle).Destroyed(), "its container is cleaned up")
}

func TestResumeStoppingStops(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	e.c.SetHangStop(true)
	stopCtx, cancel := contextWithTimeout(t, 50*time.Millisecond)
	defer cancel()
	assert.Error(t, e.m.Stop(stopCtx, inst))
	require.Equal(t, instance.StateStopping, inst.State())
	e.c.SetHangStop(false)
	e.reopen(t)
	r := record(e.m)
	insts, err := e.m.Resume(t.Context())
	require.NoError(t, err)
	require.Len(t, insts, 1)
	waitState(t, insts[0], instance.StateDeleted)
	flush(t, e.m)
	assert.Equal(t, transitions("BORN", "RESUMING", "STOPPING", "STOPPED", "DELETED"), r.strings(inst.ID()))
	assert.Empty(t, e.c.Live())
}

func TestResumeWithoutSnapshot(t *testing.T) {
	e := newEnv(t)
	insts, err := e.m.Resume(t.Context())
	require.NoError(t, err)
	assert.Empty(t, insts)
	// An empty snapshot reads and resumes nothing too.
	require.NoError(t, e.m.SaveSnapshot(t.Context()))
	snap, err := instance.ReadSnapshotFile(e.m.SnapshotPath())
	require.NoError(t, err)
	assert.Empty(t, snap.Instances)
	assert.NotNil(t, snap.Instances)
	e.reopen(t)
	insts, err = e.m.Resume(t.Context())
	require.NoError(t, err)
	assert.Empty(t, insts)
}

func TestResumeEvacuating(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	e.m.Evacuate()
	e.reopen(t)
	insts, err := e.m.Resume(t.Context())
	require.NoError(t, err)
	require.Len(t, insts, 1)
	assert.Equal(t, instance.StateEvacuating, insts[0].State(), "dea_ng lost evacuating instances")
	require.NoError(t, e.m.Stop(t.Context(), insts[0]))
	assert.False(t, e.c.Container(inst.Attributes().WardenHandle) == nil)
	assert.Empty(t, e.c.Live())
}

func TestResumeFromACorruptSnapshot(t *testing.T) {
	e := newEnv(t)
	e.start(t, e.spec())
	e.start(t, e.spec(func(s *instance.Spec) { s.InstanceIndex = 1 }))
	require.NoError(t, e.m.Close())
	b, err := os.ReadFile(e.m.SnapshotPath())
	require.NoError(t, err)
	// Cut in the middle of the second instance.
	require.NoError(t, os.WriteFile(e.m.SnapshotPath(), b[:len(b)*3/4], 0o644))
	e.m = e.open(t)
	insts, err := e.m.Resume(t.Context())
	assert.ErrorContains(t, err, "read snapshot")
	assert.Len(t, insts, 1, "what could be read is resumed")
}

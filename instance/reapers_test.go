package instance_test

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/paaskit/paaskit/instance"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashOne starts an instance of app and crashes it.
func (e *env) crashOne(t *testing.T, app string, index int) *instance.Instance {
	t.Helper()
	inst := e.start(t, e.spec(func(s *instance.Spec) { s.ApplicationID = app; s.InstanceIndex = index }))
	e.proc(t, inst).Exit(1)
	waitState(t, inst, instance.StateCrashed)
	return inst
}

func TestReapCrashesKeepsTheNewestPerAppForTheLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, instance.WithReapers(instance.ReaperConfig{CrashesInterval: 10 * time.Second, CrashLifetime: time.Hour}))
		a1 := e.crashOne(t, "a", 0)
		time.Sleep(time.Minute)
		a2 := e.crashOne(t, "a", 1)
		b1 := e.crashOne(t, "b", 0)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		assert.Equal(t, instance.StateDeleted, a1.State(), "an older crash of a")
		assert.NoDirExists(t, filepath.Join(e.base, "crashes", a1.ID()))
		assert.Equal(t, instance.StateCrashed, a2.State())
		assert.DirExists(t, filepath.Join(e.base, "crashes", a2.ID()))
		assert.Equal(t, instance.StateCrashed, b1.State())
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, instance.StateDeleted, a2.State(), "past the crash lifetime")
		assert.Equal(t, instance.StateDeleted, b1.State())
		require.NoError(t, e.m.Close())
	})
}

func TestReapOrphanedCrashes(t *testing.T) {
	e := newEnv(t)
	inst := e.crashOne(t, "a", 0)
	orphan := filepath.Join(e.base, "crashes", "gone")
	require.NoError(t, os.MkdirAll(filepath.Join(orphan, "logs"), 0o755))
	got, err := e.m.ReapOrphanedCrashes(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"gone"}, got)
	assert.NoDirExists(t, orphan)
	assert.DirExists(t, filepath.Join(e.base, "crashes", inst.ID()))
}

func TestReapCrashesUnderDiskPressure(t *testing.T) {
	e := newEnv(t)
	old := e.crashOne(t, "a", 0)
	time.Sleep(5 * time.Millisecond)
	newer := e.crashOne(t, "b", 0)
	full := true
	instance.SetDiskUsage(e.m, func(string) (instance.DiskUsage, error) {
		if full {
			full = false // removing one crash is enough
			return instance.DiskUsage{BlockRatio: 0.9, InodeRatio: 0.1}, nil
		}
		return instance.DiskUsage{BlockRatio: 0.5, InodeRatio: 0.1}, nil
	})
	got, err := e.m.ReapCrashesUnderDiskPressure(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{old.ID()}, got, "the oldest first")
	assert.Equal(t, instance.StateCrashed, newer.State())
}

func TestReapOrphanedContainersAfterTwoSightings(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	e.c.Add("inst-orphan", map[string]string{instance.PropertyOwner: instance.OwnerInstance})
	e.c.Add("staging-task", map[string]string{"paaskit.owner": "staging"})
	got, err := e.m.ReapOrphanedContainers(t.Context())
	require.NoError(t, err)
	assert.Empty(t, got, "first sighting")
	got, err = e.m.ReapOrphanedContainers(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"inst-orphan"}, got)
	assert.ElementsMatch(t, []string{inst.Attributes().WardenHandle, "staging-task"}, e.c.Live())
}

func TestReapUnreferencedDroplets(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	b, err := e.d.Fetch(t.Context(), e.d.Add([]byte("another droplet")), "")
	require.NoError(t, err)
	require.FileExists(t, b)
	staged := e.d.Add([]byte("staged just now"))
	_, err = e.d.Fetch(t.Context(), staged, "")
	require.NoError(t, err)
	require.NoError(t, e.m.Resources().ReserveStaging(instance.StagingReservation{TaskID: "t", MemoryMB: 1, DiskMB: 1, DropletSHA1: staged}))
	got, err := e.m.ReapUnreferencedDroplets(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.NoFileExists(t, b)
	have, _ := e.d.SHA1s(t.Context())
	assert.ElementsMatch(t, []string{inst.Attributes().DropletSHA1, staged}, have)
}

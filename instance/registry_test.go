package instance_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/paaskit/paaskit/instance"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func newInst(t *testing.T, app, version string, index int, id string) *instance.Instance {
	t.Helper()
	inst, err := instance.NewInstance(instance.Spec{
		ApplicationID: app, ApplicationVersion: version, InstanceIndex: index, InstanceID: id,
		DropletSHA1: sha, Limits: instance.Limits{Mem: 128, Disk: 256},
	})
	require.NoError(t, err)
	return inst
}

func ids(insts []*instance.Instance) string {
	var out []string
	for _, i := range insts {
		out = append(out, i.ID())
	}
	return strings.Join(out, ",")
}

func TestRegistryFilterByMessage(t *testing.T) {
	r := instance.NewRegistry()
	for _, i := range []*instance.Instance{
		newInst(t, "a", "v1", 0, "a0"), newInst(t, "a", "v1", 1, "a1"),
		newInst(t, "a", "v2", 2, "a2"), newInst(t, "b", "v1", 0, "b0"),
	} {
		require.NoError(t, r.Register(i))
	}
	for _, tc := range []struct {
		name string
		f    instance.Filter
		want string
	}{
		{"no droplet selects nothing", instance.Filter{Version: "v1"}, ""},
		{"an app", instance.Filter{Droplet: "a"}, "a0,a1,a2"},
		{"unknown app", instance.Filter{Droplet: "z"}, ""},
		{"version", instance.Filter{Droplet: "a", Version: "v2"}, "a2"},
		{"instances", instance.Filter{Droplet: "a", Instances: []string{"a1", "b0"}}, "a1"},
		{"instance_ids, the older name", instance.Filter{Droplet: "a", InstanceIDs: []string{"a0"}}, "a0"},
		{"instances wins over instance_ids", instance.Filter{Droplet: "a", Instances: []string{"a2"}, InstanceIDs: []string{"a0"}}, "a2"},
		{"indices", instance.Filter{Droplet: "a", Indices: []int{0, 2}}, "a0,a2"},
		{"states", instance.Filter{Droplet: "a", States: []instance.State{instance.StateBorn}}, "a0,a1,a2"},
		{"states none", instance.Filter{Droplet: "a", States: []instance.State{instance.StateRunning}}, ""},
		{"all together", instance.Filter{Droplet: "a", Version: "v1", Indices: []int{1}, States: []instance.State{instance.StateBorn}}, "a1"},
		{"empty lists do not filter", instance.Filter{Droplet: "b", Instances: []string{}, Indices: []int{}}, "b0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ids(r.Find(tc.f)))
		})
	}
	a := newInst(t, "a", "v1", 0, "x").Attributes()
	f := instance.Filter{Droplet: "a", Indices: []int{0}}
	assert.True(t, f.Match(&a))
	assert.ErrorIs(t, (&instance.Filter{}).Validate(), instance.ErrInvalidSpec)
	assert.NoError(t, f.Validate())
}

func TestRegistryIndexes(t *testing.T) {
	r := instance.NewRegistry()
	a0, a1, b0 := newInst(t, "a", "v1", 0, "a0"), newInst(t, "a", "v1", 1, "a1"), newInst(t, "b", "v1", 0, "b0")
	for _, i := range []*instance.Instance{a1, b0, a0} {
		require.NoError(t, r.Register(i))
	}
	err := r.Register(newInst(t, "a", "v1", 5, "a0"))
	assert.ErrorIs(t, err, instance.ErrAlreadyExists)
	assert.ErrorIs(t, r.Register(a0), instance.ErrAlreadyExists)
	assert.Equal(t, 3, r.Len())
	assert.Equal(t, "a0,a1,b0", ids(r.All()))
	assert.Equal(t, "a0,a1", ids(r.ByApp("a")))
	assert.Equal(t, "a0,a1,b0", ids(r.ByState(instance.StateBorn)))
	assert.Empty(t, r.ByState(instance.StateRunning))
	assert.Equal(t, map[string]int{"a": 2, "b": 1}, r.AppIDToCount())
	assert.Equal(t, map[instance.State]int{instance.StateBorn: 3}, r.CountByState())
	got, err := r.Lookup("a1")
	require.NoError(t, err)
	assert.Same(t, a1, got)
	_, err = r.Unregister("a1")
	require.NoError(t, err)
	_, err = r.Lookup("a1")
	assert.ErrorIs(t, err, instance.ErrNotFound)
	_, err = r.Unregister("a1")
	assert.ErrorIs(t, err, instance.ErrNotFound)
	assert.Equal(t, map[string]int{"a": 1, "b": 1}, r.AppIDToCount())
}

func TestResourceArithmetic(t *testing.T) {
	r := instance.NewRegistry()
	rm, err := instance.NewResourceManager(r, instance.ResourceConfig{MemoryMB: 1000, MemoryOvercommitFactor: 2, DiskMB: 4000})
	require.NoError(t, err)
	assert.Equal(t, int64(2000), rm.MemoryCapacity())
	assert.Equal(t, int64(4000), rm.DiskCapacity())
	for i := range 3 {
		require.NoError(t, r.Register(newInst(t, "a", "v1", i, "a"+itoa(i)))) // 128 MB, 256 MB disk each
	}
	assert.Equal(t, int64(384), rm.ReservedMemory())
	assert.Equal(t, int64(768), rm.ReservedDisk())
	assert.Equal(t, int64(1616), rm.RemainingMemory())
	assert.Equal(t, int64(3232), rm.RemainingDisk())
	assert.InDelta(t, 1-384.0/2000, rm.AvailableMemoryRatio(), 1e-9)
	assert.InDelta(t, 1-768.0/4000, rm.AvailableDiskRatio(), 1e-9)
	assert.True(t, rm.CanReserve(1616, 3232))
	assert.False(t, rm.CanReserve(1617, 1))
	assert.Equal(t, "memory", rm.ConstrainedResource(1617, 1))
	assert.Equal(t, "disk", rm.ConstrainedResource(1617, 3233), "disk first")
	assert.Equal(t, "", rm.ConstrainedResource(1, 1))
	assert.Equal(t, 3, rm.NumberReservable(500, 1000)) // min(1616/500, 3232/1000)
	assert.Equal(t, 0, rm.NumberReservable(0, 1))

	// Staging tasks count too.
	require.NoError(t, rm.ReserveStaging(instance.StagingReservation{TaskID: "t1", MemoryMB: 1000, DiskMB: 2000}))
	assert.Equal(t, int64(1384), rm.ReservedMemory())
	assert.Equal(t, int64(2768), rm.ReservedDisk())
	assert.ErrorIs(t, rm.ReserveStaging(instance.StagingReservation{TaskID: "t1", MemoryMB: 1}), instance.ErrAlreadyExists)
	err = rm.ReserveStaging(instance.StagingReservation{TaskID: "t2", MemoryMB: 1000, DiskMB: 1})
	re, ok := errors.AsType[*instance.ResourceError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "memory", re.Resource)
	assert.Equal(t, int64(616), re.Remaining)
	assert.Equal(t, 0, rm.NumberReservableStagers(), "616 MB left, staging needs 1024")
	rm.ReleaseStaging("t1")
	assert.Equal(t, int64(384), rm.ReservedMemory())
	assert.Equal(t, 1, rm.NumberReservableStagers())
	s := rm.Snapshot()
	assert.Equal(t, instance.Resources{
		MemoryCapacity: 2000, DiskCapacity: 4000, ReservedMemory: 384, ReservedDisk: 768,
		RemainingMemory: 1616, RemainingDisk: 3232, AvailableMemoryRatio: s.AvailableMemoryRatio, AvailableDiskRatio: s.AvailableDiskRatio,
	}, s)
	_, err = instance.NewResourceManager(r, instance.ResourceConfig{MemoryMB: -1})
	assert.ErrorIs(t, err, instance.ErrInvalidSpec)
}

// TestReservationsFollowTheState checks §4.2 through a Manager: memory
// while the instance lives, disk until its crash is reaped.
func TestReservationsFollowTheState(t *testing.T) {
	e := newEnv(t)
	rm := e.m.Resources()
	inst, err := e.m.Create(e.spec())
	require.NoError(t, err)
	assert.Equal(t, int64(256), rm.ReservedMemory(), "BORN reserves")
	assert.Equal(t, int64(1024), rm.ReservedDisk())
	require.NoError(t, e.m.Start(t.Context(), inst))
	assert.Equal(t, int64(256), rm.ReservedMemory(), "RUNNING reserves")
	e.proc(t, inst).Exit(1)
	waitState(t, inst, instance.StateCrashed)
	assert.Equal(t, int64(0), rm.ReservedMemory(), "CRASHED holds no memory")
	assert.Equal(t, int64(1024), rm.ReservedDisk(), "CRASHED holds disk")
	require.NoError(t, e.m.Delete(t.Context(), inst))
	assert.Equal(t, int64(0), rm.ReservedDisk())
	assert.Equal(t, 0, e.m.Registry().Len())
}

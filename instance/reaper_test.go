package instance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var t0 = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

func TestOrphanedCrashDirs(t *testing.T) {
	got := orphanedCrashDirs([]string{"a", "b", "c"}, map[string]bool{"b": true})
	assert.Equal(t, []string{"a", "c"}, got)
	assert.Empty(t, orphanedCrashDirs(nil, nil))
}

func TestOldCrashes(t *testing.T) {
	crashes := []crashRecord{
		{id: "a1", app: "a", at: t0.Add(-10 * time.Minute)},
		{id: "a2", app: "a", at: t0.Add(-5 * time.Minute)}, // newest of a: kept
		{id: "a3", app: "a", at: t0.Add(-50 * time.Minute)},
		{id: "b1", app: "b", at: t0.Add(-2 * time.Hour)}, // newest of b, but too old
		{id: "c1", app: "c", at: t0},                     // only one of c, fresh
	}
	assert.Equal(t, []string{"a1", "a3", "b1"}, oldCrashes(crashes, t0, time.Hour))
	assert.Equal(t, []string{"a1", "a3"}, oldCrashes(crashes, t0, 3*time.Hour))
	assert.Empty(t, oldCrashes(nil, t0, time.Hour))
}

func TestCrashUnderDiskPressure(t *testing.T) {
	crashes := []crashRecord{
		{id: "new", at: t0},
		{id: "old", at: t0.Add(-time.Hour)},
		{id: "mid", at: t0.Add(-time.Minute)},
	}
	for _, tc := range []struct {
		name string
		u    DiskUsage
		want string
		ok   bool
	}{
		{"calm", DiskUsage{BlockRatio: 0.5, InodeRatio: 0.5}, "", false},
		{"at the threshold", DiskUsage{BlockRatio: 0.8, InodeRatio: 0.8}, "", false},
		{"blocks", DiskUsage{BlockRatio: 0.81}, "old", true},
		{"inodes", DiskUsage{InodeRatio: 0.95}, "old", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := crashUnderDiskPressure(crashes, tc.u, 0.8, 0.8)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, id)
		})
	}
	_, ok := crashUnderDiskPressure(nil, DiskUsage{BlockRatio: 1}, 0.8, 0.8)
	assert.False(t, ok, "nothing to reap")
}

func TestStuckStopping(t *testing.T) {
	s := []crashRecord{{id: "x", at: t0.Add(-61 * time.Second)}, {id: "y", at: t0.Add(-59 * time.Second)}}
	assert.Equal(t, []string{"x"}, stuckStopping(s, t0, time.Minute))
}

func TestOrphanedContainersNeedTwoSightings(t *testing.T) {
	known := map[string]bool{"inst-a": true}
	destroy, next := orphanedContainers([]string{"inst-a", "inst-b", "inst-c"}, known, nil)
	assert.Empty(t, destroy, "first sighting destroys nothing")
	assert.Equal(t, map[string]bool{"inst-b": true, "inst-c": true}, next)

	// inst-c got registered meanwhile; inst-d is new.
	known["inst-c"] = true
	destroy, next = orphanedContainers([]string{"inst-a", "inst-b", "inst-c", "inst-d"}, known, next)
	assert.Equal(t, []string{"inst-b"}, destroy)
	assert.Equal(t, map[string]bool{"inst-d": true}, next)
}

func TestUnreferencedDroplets(t *testing.T) {
	got := unreferencedDroplets([]string{"s1", "s2", "s3"}, map[string]bool{"s2": true})
	assert.Equal(t, []string{"s1", "s3"}, got)
}

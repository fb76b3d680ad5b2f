package cgroups

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDetectModeFixtures(t *testing.T) {
	empty := t.TempDir()
	assert.Equal(t, Unavailable, detectMode(empty))
	assert.Equal(t, Unavailable, detectMode(filepath.Join(empty, "missing")))

	unified := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(unified, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644))
	assert.Equal(t, Unified, detectMode(unified))

	// Hybrid: v1 controllers plus a controller-less cgroup2 at unified/.
	hybrid := t.TempDir()
	for _, d := range []string{"memory", "unified"} {
		require.NoError(t, os.Mkdir(filepath.Join(hybrid, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(hybrid, "memory", "cgroup.procs"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(hybrid, "unified", "cgroup.controllers"), nil, 0o644))
	assert.Equal(t, Legacy, detectMode(hybrid))
}

func TestDetectModeMemoised(t *testing.T) {
	m := DetectMode()
	assert.Equal(t, m, DetectMode())
	t.Logf("host cgroup mode: %s", m)
}

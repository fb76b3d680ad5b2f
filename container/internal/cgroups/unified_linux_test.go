package cgroups

// Tests of the cgroup v2 side against a fixture tree in a temporary
// directory, standing in for /sys/fs/cgroup: they need no root and run on
// any Linux host, v1 or v2.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// fakeV2 returns a config for a fixture unified hierarchy whose root
// offers controllers. Directories New creates are filled like the kernel
// does: cgroup.controllers lists what the parent enabled, and the files
// of those controllers appear.
func fakeV2(t *testing.T, controllers string) config {
	t.Helper()
	root := t.TempDir()
	writeFixture(t, root, map[string]string{
		"cgroup.controllers":     controllers + "\n",
		"cgroup.subtree_control": "",
		"cgroup.procs":           "1\n",
	})
	return config{
		mode: Unified,
		root: root,
		populate: func(dir string) error {
			parent, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"))
			if err != nil {
				return err
			}
			ctrls := strings.Fields(strings.ReplaceAll(string(parent), "+", ""))
			files := map[string]string{
				"cgroup.controllers":     strings.Join(ctrls, " ") + "\n",
				"cgroup.subtree_control": "",
				"cgroup.procs":           "",
				"cgroup.events":          "populated 0\nfrozen 0\n",
				"cgroup.kill":            "",
				"cpu.stat":               "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
			}
			for _, c := range ctrls {
				switch c {
				case "memory":
					files["memory.current"] = "0\n"
					files["memory.max"] = "max\n"
					files["memory.swap.current"] = "0\n"
					files["memory.swap.max"] = "max\n"
					files["memory.stat"] = "anon 0\nfile 0\n"
					files["memory.events"] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"
				case "cpu":
					files["cpu.weight"] = "100\n"
					files["cpu.max"] = "max 100000\n"
				case "pids":
					files["pids.current"] = "0\n"
					files["pids.max"] = "max\n"
				}
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		remove: os.RemoveAll,
	}
}

func writeFixture(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
}

func readFixture(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// overwrite writes content at offset 0 of an existing file in one write
// and without truncating first, as the kernel updates a counter file:
// a reader never sees it empty.
func overwrite(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte(content), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

var allLimits = Resources{MemoryLimit: 64 << 20, CPUShares: 512, PidsMax: 100, Devices: true}

func TestUnifiedNewWritesLimits(t *testing.T) {
	cfg := fakeV2(t, "cpuset cpu io memory hugetlb pids rdma misc")
	c, err := newCgroup(cfg, "paaskit/h1", allLimits)
	require.NoError(t, err)

	assert.Equal(t, "/paaskit/h1", c.Path())
	assert.Equal(t, Unified, c.Mode())
	// Controllers are enabled from the root down to the parent.
	assert.Equal(t, "+cpu +memory +pids", readFixture(t, filepath.Join(cfg.root, "cgroup.subtree_control")))
	assert.Equal(t, "+cpu +memory +pids", readFixture(t, filepath.Join(cfg.root, "paaskit", "cgroup.subtree_control")))
	assert.Empty(t, readFixture(t, filepath.Join(cfg.root, "paaskit", "h1", "cgroup.subtree_control")))

	leaf := filepath.Join(cfg.root, "paaskit", "h1")
	for file, want := range map[string]string{
		"memory.max":      "67108864",
		"memory.swap.max": "0",
		"cpu.weight":      "59", // shares 512
		"pids.max":        "100",
	} {
		assert.Equal(t, want, readFixture(t, filepath.Join(leaf, file)), file)
	}
	assert.Equal(t, filepath.Join(leaf, "memory.events"), c.OOMCounterFile())

	// Zero values lift the limits but leave the CPU weight.
	require.NoError(t, c.Update(Resources{}))
	for file, want := range map[string]string{
		"memory.max":      "max",
		"memory.swap.max": "max",
		"cpu.weight":      "59",
		"pids.max":        "max",
	} {
		assert.Equal(t, want, readFixture(t, filepath.Join(leaf, file)), file)
	}
	require.NoError(t, c.Update(Resources{CPUShares: 1024}))
	assert.Equal(t, "100", readFixture(t, filepath.Join(leaf, "cpu.weight")))

	err = c.Update(Resources{PidsMax: -1})
	require.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, "max", readFixture(t, filepath.Join(leaf, "pids.max")), "invalid update must write nothing")

	// An existing cgroup is reused; controllers already enabled are not
	// written again.
	overwrite(t, filepath.Join(cfg.root, "cgroup.subtree_control"), "+memory +pids +cpu")
	c2, err := newCgroup(cfg, "/paaskit/h1", Resources{PidsMax: 7})
	require.NoError(t, err)
	assert.Equal(t, "7", readFixture(t, filepath.Join(leaf, "pids.max")))
	assert.Equal(t, "+memory +pids +cpu", readFixture(t, filepath.Join(cfg.root, "cgroup.subtree_control")))
	assert.Equal(t, c.OOMCounterFile(), c2.OOMCounterFile())
}

func TestUnifiedNewErrors(t *testing.T) {
	t.Run("invalid resources", func(t *testing.T) {
		cfg := fakeV2(t, "cpu memory pids")
		_, err := newCgroup(cfg, "/paaskit/h1", Resources{CPUShares: 1})
		require.ErrorIs(t, err, ErrInvalid)
		assert.NoDirExists(t, filepath.Join(cfg.root, "paaskit"))
	})
	t.Run("invalid path", func(t *testing.T) {
		cfg := fakeV2(t, "cpu memory pids")
		for _, p := range []string{"", "/", "/paaskit/../etc"} {
			_, err := newCgroup(cfg, p, Resources{})
			require.ErrorIs(t, err, ErrInvalid, "%q", p)
		}
	})
	t.Run("controller missing", func(t *testing.T) {
		cfg := fakeV2(t, "cpu memory")
		_, err := newCgroup(cfg, "/paaskit/h1", Resources{PidsMax: 10})
		require.ErrorIs(t, err, errors.ErrUnsupported)
		assert.Contains(t, err.Error(), "pids")
		assert.NoDirExists(t, filepath.Join(cfg.root, "paaskit"))

		// Without a pids limit, the missing controller does not matter.
		c, err := newCgroup(cfg, "/paaskit/h1", Resources{MemoryLimit: 8 << 20})
		require.NoError(t, err)
		s, err := c.Stats()
		require.NoError(t, err)
		assert.Zero(t, s.Pids)
	})
	t.Run("rollback", func(t *testing.T) {
		cfg := fakeV2(t, "cpu memory pids")
		populate := cfg.populate
		cfg.populate = func(dir string) error {
			if err := populate(dir); err != nil {
				return err
			}
			if filepath.Base(dir) != "h1" {
				return nil
			}
			// pids.max that cannot be written: the last write of New fails.
			p := filepath.Join(dir, "pids.max")
			return errors.Join(os.Remove(p), os.Mkdir(p, 0o755))
		}
		_, err := newCgroup(cfg, "/paaskit/h1", allLimits)
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "cgroups: "), err.Error())
		assert.NoDirExists(t, filepath.Join(cfg.root, "paaskit", "h1"), "the new cgroup is removed")
		assert.DirExists(t, filepath.Join(cfg.root, "paaskit"), "ancestors stay")
	})
	t.Run("unavailable", func(t *testing.T) {
		_, err := newCgroup(config{mode: Unavailable, root: t.TempDir()}, "/x", Resources{})
		require.ErrorIs(t, err, errors.ErrUnsupported)
		_, err = loadCgroup(config{mode: Unavailable, root: t.TempDir()}, "/x")
		require.ErrorIs(t, err, errors.ErrUnsupported)
	})
}

func TestUnifiedLoad(t *testing.T) {
	cfg := fakeV2(t, "cpu memory pids")
	_, err := loadCgroup(cfg, "/paaskit/h1")
	require.ErrorIs(t, err, ErrNotExist)

	_, err = newCgroup(cfg, "/paaskit/h1", Resources{})
	require.NoError(t, err)
	c, err := loadCgroup(cfg, "paaskit/h1/")
	require.NoError(t, err)
	assert.Equal(t, "/paaskit/h1", c.Path())
	n, err := c.OOMKillCount()
	require.NoError(t, err)
	assert.Zero(t, n)

	_, err = loadCgroup(cfg, "../x")
	require.ErrorIs(t, err, ErrInvalid)
}

// v2MemoryStat is a trimmed memory.stat of a cgroup v2 leaf.
const v2MemoryStat = `anon 1048576
file 4096
kernel 65536
kernel_stack 16384
sock 0
shmem 0
file_mapped 8192
file_dirty 0
inactive_anon 1040000
active_anon 8576
inactive_file 4096
active_file 0
unevictable 0
pgfault 300
pgmajfault 2
`

func TestUnifiedStats(t *testing.T) {
	cfg := fakeV2(t, "cpu memory pids")
	c, err := newCgroup(cfg, "/paaskit/h1", Resources{MemoryLimit: 16 << 20, PidsMax: 50})
	require.NoError(t, err)
	leaf := filepath.Join(cfg.root, "paaskit", "h1")
	writeFixture(t, leaf, map[string]string{
		"memory.stat":         v2MemoryStat,
		"memory.current":      "1200000\n",
		"memory.swap.current": "4096\n",
		"memory.events":       v2MemEvents,
		"cpu.stat":            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
		"pids.current":        "3\n",
	})

	s, err := c.Stats()
	require.NoError(t, err)
	want := MemoryCounters{
		Cache: 4096, RSS: 1 << 20, MappedFile: 8192, Swap: 4096, PgFault: 300, PgMajFault: 2,
		InactiveAnon: 1040000, ActiveAnon: 8576, InactiveFile: 4096,
	}
	assert.Equal(t, uint64(1200000), s.Memory.Usage)
	assert.Equal(t, uint64(16<<20), s.Memory.Limit)
	assert.Equal(t, uint64(2), s.Memory.OOMKill)
	assert.Equal(t, want, s.Memory.MemoryCounters)
	assert.Equal(t, want, s.Memory.Total, "v2 memory.stat is hierarchical")
	assert.Equal(t, uint64(65536), s.Memory.Raw["kernel"])
	assert.Equal(t, CPUStats{UsageNS: 1_500_000, UserNS: 1_000_000, SystemNS: 500_000}, s.CPU)
	assert.Equal(t, PidsStats{Current: 3, Limit: 50}, s.Pids)

	n, err := c.OOMKillCount()
	require.NoError(t, err)
	assert.Equal(t, uint64(2), n)

	require.NoError(t, c.Update(Resources{}))
	s, err = c.Stats()
	require.NoError(t, err)
	assert.Zero(t, s.Memory.Limit, "no limit")
	assert.Zero(t, s.Pids.Limit, "no limit")
}

func TestUnifiedProcsAddKillDelete(t *testing.T) {
	cfg := fakeV2(t, "cpu memory pids")
	c, err := newCgroup(cfg, "/paaskit/h1", Resources{})
	require.NoError(t, err)
	leaf := filepath.Join(cfg.root, "paaskit", "h1")

	require.NoError(t, c.Add(4242))
	assert.Equal(t, "4242", readFixture(t, filepath.Join(leaf, "cgroup.procs")))
	require.ErrorIs(t, c.Add(0), ErrInvalid)

	writeFixture(t, leaf, map[string]string{"cgroup.procs": "10\n11\n"})
	pids, err := c.Procs()
	require.NoError(t, err)
	assert.Equal(t, []int{10, 11}, pids)

	writeFixture(t, leaf, map[string]string{"cgroup.procs": ""})
	require.NoError(t, c.Kill())
	assert.Equal(t, "1", readFixture(t, filepath.Join(leaf, "cgroup.kill")))

	fd, err := c.CgroupFD()
	require.NoError(t, err)
	var st syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(fd.Fd()), &st))
	assert.Equal(t, uint32(syscall.S_IFDIR), st.Mode&syscall.S_IFMT)
	require.NoError(t, fd.Close())

	require.NoError(t, c.Delete())
	assert.NoDirExists(t, leaf)
	assert.DirExists(t, filepath.Join(cfg.root, "paaskit"))
	require.NoError(t, c.Delete(), "Delete is idempotent")
	require.NoError(t, c.Kill(), "Kill of a deleted cgroup")
	_, err = loadCgroup(cfg, "/paaskit/h1")
	require.ErrorIs(t, err, ErrNotExist)
}

func recvCount(ctx context.Context, t *testing.T, ch <-chan uint64) (uint64, bool) {
	t.Helper()
	select {
	case n, ok := <-ch:
		return n, ok
	case <-ctx.Done():
		t.Fatalf("no OOM report: %v", ctx.Err())
		return 0, false
	}
}

func TestUnifiedWatchOOM(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := fakeV2(t, "cpu memory pids")
	c, err := newCgroup(cfg, "/paaskit/h1", Resources{MemoryLimit: 16 << 20})
	require.NoError(t, err)
	events := c.OOMCounterFile()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	w, err := c.WatchOOM()
	require.NoError(t, err)
	overwrite(t, events, "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n")
	n, ok := recvCount(ctx, t, w.C())
	require.True(t, ok)
	assert.Equal(t, uint64(1), n)

	overwrite(t, events, "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\noom_group_kill 0\n")
	n, ok = recvCount(ctx, t, w.C())
	require.True(t, ok)
	assert.Equal(t, uint64(3), n)

	require.NoError(t, w.Close())
	_, ok = recvCount(ctx, t, w.C())
	assert.False(t, ok, "C is closed after Close")
	require.NoError(t, w.Close(), "Close is idempotent")
	assert.NoError(t, w.Err())
}

func TestUnifiedWatchOOMCgroupRemoved(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := fakeV2(t, "cpu memory pids")
	c, err := newCgroup(cfg, "/paaskit/h1", Resources{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	w, err := c.WatchOOM()
	require.NoError(t, err)
	defer func() { assert.NoError(t, w.Close()) }()
	require.NoError(t, c.Delete())
	_, ok := recvCount(ctx, t, w.C())
	assert.False(t, ok, "C is closed when the cgroup goes away")
	assert.NoError(t, w.Err())
}

func TestUnifiedWatchOOMNoMemoryController(t *testing.T) {
	cfg := fakeV2(t, "cpu pids")
	c, err := newCgroup(cfg, "/paaskit/h1", Resources{})
	require.NoError(t, err)
	_, err = c.WatchOOM()
	require.Error(t, err)
	_, err = c.OOMKillCount()
	require.Error(t, err)
}

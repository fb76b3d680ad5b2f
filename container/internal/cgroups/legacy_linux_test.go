package cgroups

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestLegacyStatsFixture reads v1 stats from a fixture tree: no root
// needed.
func TestLegacyStatsFixture(t *testing.T) {
	root := t.TempDir()
	c := &Cgroup{cfg: config{mode: Legacy, root: root}, path: "/pk", dirs: map[string]string{}}
	for ctrl, files := range map[string]map[string]string{
		"memory": {
			"memory.stat":                 v1MemoryStat,
			"memory.usage_in_bytes":       "2200000\n",
			"memory.limit_in_bytes":       "9223372036854771712\n",
			"memory.oom_control":          v1OOMControl,
			"memory.memsw.usage_in_bytes": "2200000\n",
		},
		"cpuacct": {
			"cpuacct.usage": "2000000\n",
			"cpuacct.stat":  "user 1\nsystem 0\n", // used only without usage_user/usage_sys
		},
		"pids": {"pids.current": "4\n", "pids.max": "max\n"},
	} {
		dir := filepath.Join(root, ctrl, "pk")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		writeFixture(t, dir, files)
		c.dirs[ctrl] = dir
	}
	s, err := c.Stats()
	require.NoError(t, err)
	assert.Equal(t, uint64(2200000), s.Memory.Usage)
	assert.Zero(t, s.Memory.Limit, "v1 no limit")
	assert.Equal(t, uint64(3), s.Memory.OOMKill)
	assert.Equal(t, uint64(1<<20), s.Memory.RSS)
	assert.Equal(t, uint64(2<<20), s.Memory.Total.RSS)
	assert.Equal(t, CPUStats{UsageNS: 2000000, UserNS: 10_000_000}, s.CPU)
	assert.Equal(t, PidsStats{Current: 4}, s.Pids)

	writeFixture(t, c.dirs["cpuacct"], map[string]string{"cpuacct.usage_user": "1500000\n", "cpuacct.usage_sys": "500000\n"})
	s, err = c.Stats()
	require.NoError(t, err)
	assert.Equal(t, CPUStats{UsageNS: 2000000, UserNS: 1500000, SystemNS: 500000}, s.CPU)

	assert.Equal(t, filepath.Join(root, "memory", "pk", "memory.oom_control"), c.OOMCounterFile())
	_, err = c.CgroupFD()
	require.ErrorIs(t, err, errors.ErrUnsupported)
}

// TestLegacyNewRollbackFixture creates a cgroup in a fixture v1 tree:
// cgroup1 makes the directories, but no kernel fills them, so the first
// limit written fails and New must remove what it created, and only that.
func TestLegacyNewRollbackFixture(t *testing.T) {
	root := t.TempDir()
	for _, ctrl := range []string{"memory", "pids", "freezer"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, ctrl, "existing"), 0o755))
		writeFixture(t, filepath.Join(root, ctrl), map[string]string{"cgroup.procs": ""})
	}
	cfg := config{mode: Legacy, root: root, remove: os.RemoveAll}

	_, err := newCgroup(cfg, "/paaskit/h1", Resources{CPUShares: 512})
	require.ErrorIs(t, err, errors.ErrUnsupported, "no cpu controller")
	assert.NoDirExists(t, filepath.Join(root, "memory", "paaskit"), "checked before creating anything")

	_, err = newCgroup(cfg, "/paaskit/h1", Resources{MemoryLimit: 16 << 20})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "memory.limit_in_bytes")
	for _, ctrl := range []string{"memory", "pids", "freezer"} {
		assert.NoDirExists(t, filepath.Join(root, ctrl, "paaskit", "h1"), ctrl)
		assert.DirExists(t, filepath.Join(root, ctrl, "paaskit"), "ancestors stay")
	}

	_, err = newCgroup(cfg, "/existing", Resources{MemoryLimit: 16 << 20})
	require.Error(t, err)
	for _, ctrl := range []string{"memory", "pids", "freezer"} {
		assert.DirExists(t, filepath.Join(root, ctrl, "existing"), "a cgroup New did not create stays")
	}

	c, err := loadCgroup(cfg, "/existing")
	require.NoError(t, err)
	assert.Len(t, c.dirs, 3)
	_, err = loadCgroup(cfg, "/paaskit/h1")
	require.ErrorIs(t, err, ErrNotExist)
}

// newHostCgroup creates a cgroup on the host with a unique top-level name
// starting with "pk-", removed (after killing what is left in it) when
// the test ends.
func newHostCgroup(t *testing.T, r Resources) *Cgroup {
	t.Helper()
	testutil.RequireRoot(t)
	if DetectMode() == Legacy {
		testutil.RequireCgroupV1Controller(t, "memory")
	}
	name := testutil.UniqueName(t, "pk-", 60, func(name string) error {
		c, err := Load("/" + name)
		if errors.Is(err, ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.Join(c.Kill(), c.Delete())
	})
	c, err := New("/"+name, r)
	require.NoError(t, err)
	return c
}

// hostDirs returns every directory the cgroup at p could have on the
// host.
func hostDirs(p string) []string {
	if DetectMode() == Unified {
		return []string{filepath.Join(hostRoot, p)}
	}
	var dirs []string
	for _, ctrl := range v1Controllers {
		dirs = append(dirs, filepath.Join(hostRoot, ctrl, p))
	}
	return dirs
}

func hostFile(t *testing.T, c *Cgroup, ctrl, file string) string {
	t.Helper()
	dir, ok := c.dirs[ctrl]
	if c.Mode() == Unified {
		dir, ok = c.dirs[unifiedKey]
	}
	require.True(t, ok, "cgroup not in %s", ctrl)
	b, err := os.ReadFile(filepath.Join(dir, file))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// child is a shell started outside the cgroup that waits for a line on
// stdin before running the rest of its script, so the test can move it
// into the cgroup first.
type child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{}
	waitErr error
}

func startChild(t *testing.T, script string, stderr io.Writer) *child {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read line; "+script)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	cmd.Stderr = stderr
	// Its own process group, so that the cleanup also kills the
	// background processes it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	ch := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		ch.waitErr = cmd.Wait()
		close(ch.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-ch.done
	})
	return ch
}

func (ch *child) pid() int { return ch.cmd.Process.Pid }

func (ch *child) release(t *testing.T) {
	t.Helper()
	_, err := io.WriteString(ch.stdin, "go\n")
	require.NoError(t, err)
}

func (ch *child) wait(ctx context.Context, t *testing.T) error {
	t.Helper()
	select {
	case <-ch.done:
		return ch.waitErr
	case <-ctx.Done():
		t.Fatalf("child %d still running: %v", ch.pid(), ctx.Err())
		return nil
	}
}

// eventually polls cond with a short backoff until it holds or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	delay := time.Millisecond
	for !cond() {
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-timer.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func TestHostLimits(t *testing.T) {
	c := newHostCgroup(t, allLimits)
	if c.Mode() == Unified {
		assert.Equal(t, "67108864", hostFile(t, c, "memory", "memory.max"))
		assert.Equal(t, "59", hostFile(t, c, "cpu", "cpu.weight"))
		assert.Equal(t, "100", hostFile(t, c, "pids", "pids.max"))
		return
	}
	assert.Equal(t, "67108864", hostFile(t, c, "memory", "memory.limit_in_bytes"))
	if _, ok := c.dirs["memory"]; ok && exists(filepath.Join(c.dirs["memory"], "memory.memsw.limit_in_bytes")) {
		assert.Equal(t, "67108864", hostFile(t, c, "memory", "memory.memsw.limit_in_bytes"))
	}
	assert.Equal(t, "512", hostFile(t, c, "cpu", "cpu.shares"))
	assert.Equal(t, "100", hostFile(t, c, "pids", "pids.max"))
	assert.ElementsMatch(t, defaultAllowList(), strings.Split(hostFile(t, c, "devices", "devices.list"), "\n"))
	for _, ctrl := range []string{"memory", "cpu", "cpuacct", "pids", "devices", "freezer"} {
		assert.DirExists(t, filepath.Join(hostRoot, ctrl, c.Path()), ctrl)
	}
	// Controllers that would only cost attaches are left alone.
	for _, ctrl := range []string{"cpuset", "blkio"} {
		assert.NoDirExists(t, filepath.Join(hostRoot, ctrl, c.Path()), ctrl)
	}

	// Raising the limit must write memsw first, lifting it too.
	require.NoError(t, c.Update(Resources{MemoryLimit: 128 << 20, CPUShares: 2048, PidsMax: 10, Devices: true}))
	assert.Equal(t, "134217728", hostFile(t, c, "memory", "memory.limit_in_bytes"))
	assert.Equal(t, "2048", hostFile(t, c, "cpu", "cpu.shares"))
	require.NoError(t, c.Update(Resources{}))
	s, err := c.Stats()
	require.NoError(t, err)
	assert.Zero(t, s.Memory.Limit)
	assert.Zero(t, s.Pids.Limit)
	assert.Equal(t, "max", hostFile(t, c, "pids", "pids.max"))
	assert.Equal(t, "a *:* rwm", hostFile(t, c, "devices", "devices.list"))
	assert.Equal(t, "2048", hostFile(t, c, "cpu", "cpu.shares"), "0 leaves the shares")
	// And lowering from no limit writes memory first.
	require.NoError(t, c.Update(Resources{MemoryLimit: 32 << 20, Devices: true}))
	assert.Equal(t, "33554432", hostFile(t, c, "memory", "memory.limit_in_bytes"))
	assert.ElementsMatch(t, defaultAllowList(), strings.Split(hostFile(t, c, "devices", "devices.list"), "\n"))

	l, err := Load(c.Path())
	require.NoError(t, err)
	assert.Equal(t, c.dirs, l.dirs)
	_, err = c.CgroupFD()
	require.ErrorIs(t, err, errors.ErrUnsupported)
}

func TestHostProcsStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := newHostCgroup(t, Resources{MemoryLimit: 64 << 20, PidsMax: 20})
	ch := startChild(t, "exec sleep 30", nil)
	require.NoError(t, c.Add(ch.pid()))
	pids, err := c.Procs()
	require.NoError(t, err)
	assert.Equal(t, []int{ch.pid()}, pids)
	ch.release(t)

	var s *Stats
	eventually(ctx, t, "memory usage > 0", func() bool {
		s, err = c.Stats()
		require.NoError(t, err)
		return s.Memory.Usage > 0
	})
	assert.Equal(t, uint64(64<<20), s.Memory.Limit)
	assert.Equal(t, uint64(1), s.Pids.Current)
	assert.Equal(t, uint64(20), s.Pids.Limit)
	assert.NotEmpty(t, s.Memory.Raw)
	assert.GreaterOrEqual(t, s.Memory.Total.RSS+s.Memory.Total.Cache, s.Memory.RSS+s.Memory.Cache)
	t.Logf("stats: %+v %+v %+v", s.Memory.MemoryCounters, s.CPU, s.Pids)

	require.NoError(t, c.Kill())
	assert.Error(t, ch.wait(ctx, t), "killed")
}

func TestHostOOM(t *testing.T) {
	defer goleak.VerifyNone(t)
	testutil.RequireCommand(t, "tail")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := newHostCgroup(t, Resources{MemoryLimit: 16 << 20})
	before, err := c.OOMKillCount()
	require.NoError(t, err)
	require.Zero(t, before)

	w, err := c.WatchOOM()
	require.NoError(t, err)
	defer func() { assert.NoError(t, w.Close()) }()

	// tail keeps the endless "line" of /dev/zero in memory.
	ch := startChild(t, "exec tail /dev/zero", nil)
	require.NoError(t, c.Add(ch.pid()))
	ch.release(t)

	n, ok := recvCount(ctx, t, w.C())
	require.True(t, ok, "watcher stopped: %v", w.Err())
	assert.GreaterOrEqual(t, n, uint64(1))
	got, err := c.OOMKillCount()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, got, uint64(1))

	var ee *exec.ExitError
	require.ErrorAs(t, ch.wait(ctx, t), &ee)
	assert.Equal(t, "killed", ee.ProcessState.String()[len("signal: "):], ee.ProcessState.String())

	b, err := os.ReadFile(c.OOMCounterFile())
	require.NoError(t, err)
	fromFile, err := ParseOOMKill(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, got, fromFile)

	require.NoError(t, w.Close())
	_, ok = recvCount(ctx, t, w.C())
	assert.False(t, ok, "C closed after Close")
}

// TestHostWatchOOMRemoved checks that the v1 eventfd firing on rmdir is
// not taken for an OOM kill, and that the watch then ends.
func TestHostWatchOOMRemoved(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := newHostCgroup(t, Resources{MemoryLimit: 16 << 20})
	w, err := c.WatchOOM()
	require.NoError(t, err)
	require.NoError(t, c.Delete())
	n, ok := recvCount(ctx, t, w.C())
	assert.False(t, ok, "no OOM report for a removed cgroup, got %d", n)
	assert.NoError(t, w.Err())
	require.NoError(t, w.Close())
	require.NoError(t, w.Close())
}

func TestHostKillDelete(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := newHostCgroup(t, Resources{PidsMax: 50})
	ch := startChild(t, "sleep 30 & sleep 30 & exec sleep 30", nil)
	require.NoError(t, c.Add(ch.pid()))
	ch.release(t)
	eventually(ctx, t, "three processes", func() bool {
		pids, err := c.Procs()
		require.NoError(t, err)
		return len(pids) == 3
	})

	require.NoError(t, c.Kill())
	pids, err := c.Procs()
	require.NoError(t, err)
	assert.Empty(t, pids)
	assert.Error(t, ch.wait(ctx, t))

	require.NoError(t, c.Delete())
	for _, dir := range hostDirs(c.Path()) {
		assert.NoDirExists(t, dir)
	}
	require.NoError(t, c.Delete(), "second Delete")
	require.NoError(t, c.Kill(), "Kill after Delete")
	_, err = Load(c.Path())
	require.ErrorIs(t, err, ErrNotExist)
}

// syncBuffer is a bytes.Buffer safe for the exec copying goroutine and
// the test reading it at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHostPidsMax(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := newHostCgroup(t, Resources{PidsMax: 5})
	var stderr syncBuffer
	// dash gives up at the first failed fork ("Cannot fork", status 2).
	// The sleeps do not hold stderr, so Wait returns when sh exits.
	ch := startChild(t, `i=0; while [ $i -lt 20 ]; do sleep 30 2>/dev/null & i=$((i+1)); done; echo loop-done >&2`, &stderr)
	require.NoError(t, c.Add(ch.pid()))
	ch.release(t)
	err := ch.wait(ctx, t)
	assert.Regexp(t, regexp.MustCompile(`(?i)fork`), stderr.String())
	assert.NotContains(t, stderr.String(), "loop-done")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)

	s, err := c.Stats()
	require.NoError(t, err)
	assert.Equal(t, uint64(5), s.Pids.Limit)
	assert.LessOrEqual(t, s.Pids.Current, uint64(5))
	assert.NotZero(t, s.Pids.Current, "the sleeps that did start")
	pids, err := c.Procs()
	require.NoError(t, err)
	assert.LessOrEqual(t, len(pids), 5)
	assert.NotEmpty(t, pids)

	require.NoError(t, c.Kill())
	pids, err = c.Procs()
	require.NoError(t, err)
	assert.Empty(t, pids)
	require.NoError(t, c.Delete())
}

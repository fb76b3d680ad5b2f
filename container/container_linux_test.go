package container_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	if container.Init() {
		return
	}
	if os.Getenv("PAASKIT_TEST_OWNER") != "" {
		managerOwner() // never returns
	}
	testutil.Main(m)
}

// newManager and newContainer are containertest's helpers: a Manager on a
// fresh depot and containers on the test stack, all destroyed when the
// test ends, also when it fails.
func newManager(t *testing.T, opts ...container.Option) *container.Manager {
	t.Helper()
	return containertest.NewManager(t, opts...)
}

func newContainer(t *testing.T, m *container.Manager, spec container.Spec) *container.Container {
	t.Helper()
	return containertest.NewContainer(t, m, spec)
}

type result struct {
	code           int
	err            error
	stdout, stderr string
}

// run runs a command in c and waits for it.
func run(t *testing.T, c *container.Container, spec container.ProcessSpec) result {
	t.Helper()
	var out, errb syncBuffer
	p, err := c.Run(t.Context(), spec, container.ProcessIO{Stdout: &out, Stderr: &errb})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	code, err := p.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		diagnose(t, c, p)
	}
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	return result{code, err, out.String(), errb.String()}
}

// diagnose logs what a process that never ended left in the depot and
// what its agent's threads are doing.
func diagnose(t *testing.T, c *container.Container, p *container.Process) {
	t.Helper()
	dir := filepath.Join(c.Path(), "processes", p.ID())
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		t.Logf("%s: %q", e.Name(), b)
	}
	log, _ := os.ReadFile(filepath.Join(c.Path(), "agent.log"))
	t.Logf("agent.log: %s", log)
	if info, err := c.Info(context.Background()); err == nil {
		t.Logf("agent %d, running %v", info.AgentPID, info.ProcessIDs)
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", info.AgentPID))
		for _, task := range tasks {
			status, _ := os.ReadFile(task + "/status")
			var sig []string
			for _, l := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(l, "Sig") || strings.HasPrefix(l, "ShdPnd") || strings.HasPrefix(l, "State") || strings.HasPrefix(l, "Seccomp") {
					sig = append(sig, l)
				}
			}
			kids, _ := os.ReadFile(task + "/children")
			t.Logf("thread %s: %s children %q", filepath.Base(task), strings.Join(sig, " "), kids)
			for _, kid := range strings.Fields(string(kids)) {
				st, _ := os.ReadFile("/proc/" + kid + "/stat")
				wc, _ := os.ReadFile("/proc/" + kid + "/wchan")
				ks, _ := os.ReadFile("/proc/" + kid + "/stack")
				t.Logf("child %s: %s wchan %s stack %s", kid, st, wc, ks)
			}
		}
	} else {
		t.Logf("info: %v", err)
	}
}

func sh(script string) container.ProcessSpec {
	return container.ProcessSpec{Path: "/bin/sh", Args: []string{"-c", script}}
}

// syncBuffer is output read while it is written.
type syncBuffer = testutil.SyncBuffer

func TestNamespacesAndAgent(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{Hostname: "app-host"})
	r := run(t, c, sh(`tr '\0' ' ' </proc/1/cmdline; echo; hostname; ls /proc | grep -c '^[0-9]'; echo pid=$$`))
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, r.stdout)
	assert.Contains(t, lines[0], "paaskit-container-agent", "PID 1 is the agent")
	assert.Equal(t, "app-host", lines[1])
	n, _ := strconv.Atoi(lines[2])
	assert.LessOrEqual(t, n, 4, "only the agent, sh, ls and grep are visible")
	assert.NotEqual(t, "pid=1", lines[3])

	// The host's network is not visible: only lo, and it is down.
	r = run(t, c, sh(`ls /sys/class/net`))
	assert.Equal(t, "lo\n", r.stdout)
}

func TestDefaultHostnameAndUser(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{User: "vcap", Env: []string{"A=1", "B=2"}})
	r := run(t, c, container.ProcessSpec{Path: "sh", Args: []string{"-c", "hostname; id -u; id -g; pwd; echo $A$B$HOME"}, Env: []string{"B=3"}})
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, fmt.Sprintf("%s\n%d\n%d\n/home/vcap\n13/home/vcap\n", strings.ReplaceAll(c.Handle(), "_", "-"), testutil.StackUID, testutil.StackGID), r.stdout)

	r = run(t, c, container.ProcessSpec{Path: "/usr/bin/id", Args: []string{"-u"}, User: "0:0", Dir: "/tmp"})
	assert.Equal(t, "0\n", r.stdout)

	_, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/true", User: "nosuchuser"}, container.ProcessIO{})
	assert.ErrorIs(t, err, container.ErrInvalidSpec)
	_, err = c.Run(t.Context(), container.ProcessSpec{Path: "/no/such/program"}, container.ProcessIO{})
	assert.ErrorIs(t, err, container.ErrInvalidSpec)
}

func TestMaskedAndReadOnlyPaths(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	for _, tc := range []struct{ name, script string }{
		{"kcore is empty", `! test -e /proc/kcore || test "$(wc -c </proc/kcore)" = 0`},
		{"interrupts is empty", `test -e /proc/interrupts && test -z "$(cat /proc/interrupts)"`},
		{"keys is empty", `test ! -e /proc/keys || ! test -s /proc/keys`},
		{"proc/sys read-only", `! echo 1 >/proc/sys/vm/drop_caches 2>/dev/null`},
		{"sysrq-trigger read-only", `! echo h >/proc/sysrq-trigger 2>/dev/null`},
		{"sys read-only", `! touch /sys/kernel/x 2>/dev/null && ! echo 1 > /sys/kernel/mm/ksm/run 2>/dev/null`},
		{"firmware masked", `test -z "$(ls /sys/firmware 2>/dev/null)"`},
		{"no cgroupfs", `! test -e /sys/fs/cgroup/memory/cgroup.procs && ! mount -t cgroup -o memory none /mnt 2>/dev/null`},
		{"cannot mount", `! mount -t tmpfs none /mnt 2>/dev/null`},
		{"dev is minimal", `ls /dev | sort | tr '\n' ' ' | grep -qx 'console fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero '`},
		{"devices work", `head -c 4 /dev/urandom | wc -c | grep -qx 4 && echo x >/dev/null`},
		{"root fs writable", `echo hi >/etc/new && test "$(cat /etc/new)" = hi`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, c, sh(tc.script))
			assert.Equal(t, 0, r.code, "script %q: %s%s", tc.script, r.stdout, r.stderr)
		})
	}
}

func TestMknodRefused(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	r := run(t, c, sh(`mknod /tmp/sda b 8 0`))
	assert.NotEqual(t, 0, r.code, "root in the container made a block device: %s", r.stdout)
	r = run(t, c, container.ProcessSpec{Path: "/bin/sh", Args: []string{"-c", "mknod /tmp/null c 1 3"}, User: "vcap"})
	assert.NotEqual(t, 0, r.code, "vcap made a device")
}

func statusField(status, name string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestCapabilitiesAndNoNewPrivs(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	// Docker's 14: chown dac_override fowner fsetid kill setgid setuid
	// setpcap net_bind_service net_raw sys_chroot mknod audit_write setfcap.
	const docker14 = "00000000a80425fb"
	r := run(t, c, sh(`cat /proc/self/status`))
	require.Equal(t, 0, r.code)
	assert.Equal(t, docker14, statusField(r.stdout, "CapBnd"))
	assert.Equal(t, docker14, statusField(r.stdout, "CapEff"))
	assert.Equal(t, docker14, statusField(r.stdout, "CapPrm"))
	assert.Equal(t, "0000000000000000", statusField(r.stdout, "CapInh"))
	assert.Equal(t, "0000000000000000", statusField(r.stdout, "CapAmb"))
	assert.Equal(t, "1", statusField(r.stdout, "NoNewPrivs"))

	r = run(t, c, container.ProcessSpec{Path: "/bin/cat", Args: []string{"/proc/self/status"}, User: "vcap"})
	for _, f := range []string{"CapEff", "CapPrm", "CapInh", "CapAmb"} {
		assert.Equal(t, "0000000000000000", statusField(r.stdout, f), f)
	}
	assert.Equal(t, "1", statusField(r.stdout, "NoNewPrivs"))
}

func TestRLimits(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	var host syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &host))
	nofile := strconv.FormatUint(min(65536, host.Max), 10)
	r := run(t, c, sh(`ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc`))
	assert.Equal(t, nofile+"\n"+nofile+"\n0\n0\n", r.stdout)
	n := uint64(123)
	r = run(t, c, container.ProcessSpec{Path: "/bin/sh", Args: []string{"-c", "ulimit -n"}, Limits: container.RLimits{Nofile: &n}})
	assert.Equal(t, "123\n", r.stdout)
	// The override applied to that process only.
	r = run(t, c, sh(`ulimit -n`))
	assert.Equal(t, nofile+"\n", r.stdout)
	// Above the hard limit: refused.
	huge := uint64(1 << 40)
	_, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/true", Limits: container.RLimits{Nofile: &huge}}, container.ProcessIO{})
	assert.ErrorIs(t, err, container.ErrInvalidSpec)
}

func TestOutOfMemory(t *testing.T) {
	testutil.RequireCgroupV1Controller(t, "memory")
	var mu sync.Mutex
	var events []container.Event
	m := newManager(t, container.WithEventHandler(func(e container.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}))
	c := newContainer(t, m, container.Spec{Limits: container.Limits{MemoryBytes: 32 << 20}})
	r := run(t, c, container.ProcessSpec{Path: "/usr/bin/tail", Args: []string{"/dev/zero"}})
	assert.Equal(t, 137, r.code)
	assert.ErrorIs(t, r.err, container.ErrOutOfMemory)
	// The container itself survives its process's OOM kill.
	r = run(t, c, sh("echo alive"))
	assert.Equal(t, "alive\n", r.stdout)
	require.Eventually(t, func() bool {
		info, err := c.Info(t.Context())
		return err == nil && len(info.Events) > 0 && info.Events[0] == "out of memory" && info.Memory.OOMKills > 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) > 0 && events[0].Type == container.EventOutOfMemory && events[0].Handle == c.Handle()
	}, 10*time.Second, 10*time.Millisecond)
}

func TestPidsLimitHoldsAgainstForkBomb(t *testing.T) {
	testutil.RequireCgroupV1Controller(t, "pids")
	m := newManager(t)
	c := newContainer(t, m, container.Spec{Limits: container.Limits{PidsMax: 16}})
	// Background sleeps until fork fails (dash then exits with 2).
	r := run(t, c, sh(`i=0; while [ $i -lt 64 ]; do sleep 3 & i=$((i+1)); done; echo tried $i`))
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "/bin/sh: 0: Cannot fork\n", r.stderr)
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	assert.LessOrEqual(t, info.Pids.Current, uint64(16))
	assert.GreaterOrEqual(t, info.Pids.Current, uint64(10), "the sleeps run")
	assert.Equal(t, uint64(16), info.Pids.Max)
	// The agent, whose threads are not in the limited cgroup, still
	// works, and so does the container once the sleeps are gone.
	require.Eventually(t, func() bool {
		p, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/echo", Args: []string{"alive"}}, container.ProcessIO{})
		if err != nil {
			return false
		}
		code, err := p.Wait(t.Context())
		return err == nil && code == 0
	}, 30*time.Second, 50*time.Millisecond)
}

func TestOutputOfFastExitingProcessIsComplete(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	want := strings.Builder{}
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	for i := range 20 {
		r := run(t, c, sh(`seq 1 20000; echo bye >&2; exit 3`))
		require.Equal(t, 3, r.code, "iteration %d", i)
		require.Equal(t, want.String(), r.stdout, "iteration %d", i)
		require.Equal(t, "bye\n", r.stderr)
	}
	// A process that prints one line and exits at once, many times.
	for i := range 50 {
		r := run(t, c, container.ProcessSpec{Path: "/bin/echo", Args: []string{strconv.Itoa(i)}})
		require.Equal(t, strconv.Itoa(i)+"\n", r.stdout)
	}
}

func TestOutputLimit(t *testing.T) {
	m := newManager(t, container.WithOutputLimit(1000))
	c := newContainer(t, m, container.Spec{})
	var out bytes.Buffer
	p, err := c.Run(t.Context(), sh(`head -c 5000 /dev/zero | tr '\0' a`), container.ProcessIO{Stdout: &out})
	require.NoError(t, err)
	st, err := p.Status(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(4000), st.StdoutDropped)
	assert.True(t, strings.HasPrefix(out.String(), strings.Repeat("a", 1000)+"\n[paaskit: output limit of 1000 bytes reached"), out.String())
}

func TestStdinAndAttach(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	var out bytes.Buffer
	p, err := c.Run(t.Context(), container.ProcessSpec{ID: "cat-1", Path: "/bin/cat"}, container.ProcessIO{Stdin: strings.NewReader("hello\nworld\n"), Stdout: &out})
	require.NoError(t, err)
	code, err := p.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Equal(t, "hello\nworld\n", out.String())

	// Attach to the exited process, from an offset.
	var again bytes.Buffer
	p2, err := c.Attach(t.Context(), "cat-1", container.ProcessIO{Stdout: &again, StdoutOffset: 6})
	require.NoError(t, err)
	code, err = p2.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Equal(t, "world\n", again.String())

	_, err = c.Run(t.Context(), container.ProcessSpec{ID: "cat-1", Path: "/bin/true"}, container.ProcessIO{})
	assert.ErrorIs(t, err, container.ErrAlreadyExists)
	_, err = c.Attach(t.Context(), "nope", container.ProcessIO{})
	assert.ErrorIs(t, err, container.ErrNotFound)

	// Live attach while it runs, and signal.
	p3, err := c.Run(t.Context(), container.ProcessSpec{ID: "sleeper", Path: "/bin/sh", Args: []string{"-c", "echo up; exec sleep 100"}}, container.ProcessIO{})
	require.NoError(t, err)
	var live syncBuffer
	p4, err := c.Attach(t.Context(), "sleeper", container.ProcessIO{Stdout: &live})
	require.NoError(t, err)
	assert.NotZero(t, p4.PID())
	require.Eventually(t, func() bool { return live.String() == "up\n" }, 10*time.Second, 5*time.Millisecond)
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"sleeper"}, info.ProcessIDs)
	require.NoError(t, p3.Signal(t.Context(), syscall.SIGTERM))
	code, err = p4.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 128+int(syscall.SIGTERM), code)
}

func TestStopEscalatesToKill(t *testing.T) {
	m := newManager(t, container.WithStopTimeout(300*time.Millisecond))
	c := newContainer(t, m, container.Spec{})
	stubborn, err := c.Run(t.Context(), sh(`trap "" TERM; echo ready; while :; do sleep 1; done`), container.ProcessIO{})
	require.NoError(t, err)
	polite, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/sleep", Args: []string{"100"}}, container.ProcessIO{})
	require.NoError(t, err)
	// Let the trap be installed before stopping.
	var out syncBuffer
	_, err = c.Attach(t.Context(), stubborn.ID(), container.ProcessIO{Stdout: &out})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return out.String() == "ready\n" }, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, c.Stop(t.Context(), false))
	code, err := stubborn.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 137, code, "ignored TERM, so KILL")
	code, err = polite.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 143, code, "died of TERM")

	_, err = c.Run(t.Context(), container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
	assert.ErrorIs(t, err, container.ErrStopped)
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "stopped", info.State)
	assert.Empty(t, info.ProcessIDs)
}

func TestDestroyLeavesNothing(t *testing.T) {
	m := newManager(t)
	dir := t.TempDir()
	c := newContainer(t, m, container.Spec{
		BindMounts: []container.BindMount{{SrcPath: dir, DstPath: "/data"}},
		Limits:     container.Limits{MemoryBytes: 64 << 20, PidsMax: 100, CPUShares: 512},
	})
	_, err := c.Run(t.Context(), sh("sleep 100 & sleep 100"), container.ProcessIO{})
	require.NoError(t, err)
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	cgroupDirs := cgroupDirsOf(t, c)
	require.NotEmpty(t, cgroupDirs)

	require.NoError(t, c.Destroy(t.Context()))
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), c.Path())
	for _, d := range cgroupDirs {
		assert.NoDirExists(t, d)
	}
	assert.NoDirExists(t, c.Path())
	_, err = os.Stat(fmt.Sprintf("/proc/%d", info.AgentPID))
	assert.ErrorIs(t, err, os.ErrNotExist, "agent still runs")

	assert.ErrorIs(t, c.Destroy(t.Context()), container.ErrNotFound)
	assert.ErrorIs(t, m.Destroy(t.Context(), c.Handle()), container.ErrNotFound)
	_, err = m.Lookup(c.Handle())
	assert.ErrorIs(t, err, container.ErrNotFound)
}

// cgroupDirsOf lists the host cgroup directories of a container (v1: one
// per controller; v2: one), found by their name, which ends with the
// handle, below the default cgroup parent.
func cgroupDirsOf(t *testing.T, c *container.Container) []string {
	t.Helper()
	dirs, err := filepath.Glob("/sys/fs/cgroup/*" + container.DefaultCgroupParent + "/*-" + c.Handle())
	require.NoError(t, err)
	more, err := filepath.Glob("/sys/fs/cgroup" + container.DefaultCgroupParent + "/*-" + c.Handle())
	require.NoError(t, err)
	return append(dirs, more...)
}

func TestBindMounts(t *testing.T) {
	m := newManager(t)
	ro, rw := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ro, "in"), []byte("from host"), 0o644))
	c := newContainer(t, m, container.Spec{BindMounts: []container.BindMount{
		{SrcPath: ro, DstPath: "/ro", ReadOnly: true},
		{SrcPath: rw, DstPath: "/deep/rw"},
	}})
	r := run(t, c, sh(`cat /ro/in; ! touch /ro/x 2>/dev/null && echo out >/deep/rw/out`))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "from host", r.stdout)
	b, err := os.ReadFile(filepath.Join(rw, "out"))
	require.NoError(t, err)
	assert.Equal(t, "out\n", string(b))
	assert.NoFileExists(t, filepath.Join(ro, "x"))
}

func TestBadSpecs(t *testing.T) {
	m := newManager(t)
	stack := testutil.Stack(t)
	for _, tc := range []struct {
		name  string
		spec  container.Spec
		field string
	}{
		{"no rootfs", container.Spec{}, "RootFS"},
		{"relative rootfs", container.Spec{RootFS: "stack"}, "RootFS"},
		{"missing rootfs", container.Spec{RootFS: "/no/such/stack"}, "RootFS"},
		{"bad handle", container.Spec{RootFS: stack, Handle: "../evil"}, "Handle"},
		{"missing bind source", container.Spec{RootFS: stack, BindMounts: []container.BindMount{{SrcPath: "/no/such/dir", DstPath: "/x"}}}, "BindMounts[0].SrcPath"},
		{"bind over proc", container.Spec{RootFS: stack, BindMounts: []container.BindMount{{SrcPath: "/tmp", DstPath: "/proc/x"}}}, "BindMounts[0].DstPath"},
		{"tiny memory", container.Spec{RootFS: stack, Limits: container.Limits{MemoryBytes: 1000}}, "Limits.MemoryBytes"},
		{"bad env", container.Spec{RootFS: stack, Env: []string{"NOEQUALS"}}, "Env[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Create(t.Context(), tc.spec)
			var se *container.SpecError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.field, se.Field)
			assert.ErrorIs(t, err, container.ErrInvalidSpec)
		})
	}
	ents, err := os.ReadDir(filepath.Join(m.Depot(), "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents, "a failed create left something in the depot")

	c := newContainer(t, m, container.Spec{})
	_, err = m.Create(t.Context(), container.Spec{RootFS: stack, Handle: c.Handle()})
	assert.ErrorIs(t, err, container.ErrAlreadyExists)
}

func TestListAndProperties(t *testing.T) {
	m := newManager(t)
	a := newContainer(t, m, container.Spec{Properties: map[string]string{"app": "web", "env": "prod"}})
	b := newContainer(t, m, container.Spec{Properties: map[string]string{"app": "web", "env": "dev"}})
	all, err := m.List(t.Context(), nil)
	require.NoError(t, err)
	assert.Len(t, all, 2)
	web, err := m.List(t.Context(), map[string]string{"app": "web"})
	require.NoError(t, err)
	assert.Len(t, web, 2)
	prod, err := m.List(t.Context(), map[string]string{"app": "web", "env": "prod"})
	require.NoError(t, err)
	require.Len(t, prod, 1)
	assert.Equal(t, a.Handle(), prod[0].Handle())
	assert.Equal(t, "dev", b.Properties()["env"])
}

func TestGraceTimeDestroysIdleContainer(t *testing.T) {
	expired := make(chan container.Event, 1)
	m := newManager(t, container.WithEventHandler(func(e container.Event) {
		if e.Type == container.EventGraceExpired {
			expired <- e
		}
	}))
	c := newContainer(t, m, container.Spec{GraceTime: 200 * time.Millisecond})
	// A waited-on process keeps it alive past the grace time.
	r := run(t, c, sh("sleep 0.5; echo done"))
	assert.Equal(t, "done\n", r.stdout)
	select {
	case e := <-expired:
		assert.Equal(t, c.Handle(), e.Handle)
	case <-time.After(30 * time.Second):
		t.Fatal("grace time never expired")
	}
	_, err := m.Lookup(c.Handle())
	assert.ErrorIs(t, err, container.ErrNotFound)
	assert.NoDirExists(t, c.Path())
}

func TestTarballStack(t *testing.T) {
	m := newManager(t)
	tarball := filepath.Join(t.TempDir(), "stack.tgz")
	out, err := exec.Command("tar", "-czf", tarball, "-C", testutil.Stack(t), ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	a := newContainer(t, m, container.Spec{RootFS: tarball})
	b := newContainer(t, m, container.Spec{RootFS: tarball})
	for _, c := range []*container.Container{a, b} {
		r := run(t, c, sh("echo from tarball"))
		assert.Equal(t, "from tarball\n", r.stdout)
	}
	stacks, err := filepath.Glob(filepath.Join(m.Depot(), "stacks", "*"))
	require.NoError(t, err)
	var dirs int
	for _, s := range stacks {
		if fi, err := os.Stat(s); err == nil && fi.IsDir() {
			dirs++
		}
	}
	assert.Equal(t, 1, dirs, "imported once: %v", stacks)
}

// TestReattachAfterOwnerKilled starts a Manager in another process, which
// creates a container and a process and is then killed with SIGKILL; a new
// Manager on the same depot finds the container, re-attaches to the
// process and gets all of its output and its exit status.
func TestReattachAfterOwnerKilled(t *testing.T) {
	testutil.RequireRoot(t)
	depot := t.TempDir()
	handle := testutil.UniqueName(t, "pk-", 60, nil)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PAASKIT_TEST_OWNER="+depot, "PAASKIT_TEST_HANDLE="+handle, "PAASKIT_TEST_STACK="+testutil.Stack(t))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "started\n", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()

	m, err := container.New(depot)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	c, err := m.Lookup(handle)
	require.NoError(t, err, "the new Manager did not find the container")
	t.Cleanup(func() { c.Destroy(context.Background()) })
	var out syncBuffer
	p, err := c.Attach(t.Context(), "job", container.ProcessIO{Stdout: &out})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	code, err := p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 7, code)
	var want strings.Builder
	want.WriteString("start\n")
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	want.WriteString("end\n")
	assert.Equal(t, want.String(), out.String())
	r := run(t, c, sh("echo still usable"))
	assert.Equal(t, "still usable\n", r.stdout)
}

// managerOwner is the other process of TestReattachAfterOwnerKilled.
func managerOwner() {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "owner:", err); os.Exit(2) }
	m, err := container.New(os.Getenv("PAASKIT_TEST_OWNER"))
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	c, err := m.Create(ctx, container.Spec{Handle: os.Getenv("PAASKIT_TEST_HANDLE"), RootFS: os.Getenv("PAASKIT_TEST_STACK")})
	if err != nil {
		fail(err)
	}
	// Output before and after the owner dies, and an exit status that
	// only the new Manager sees.
	if _, err := c.Run(ctx, container.ProcessSpec{ID: "job", Path: "/bin/sh", Args: []string{"-c", "echo start; sleep 1; seq 1 3000; echo end; exit 7"}}, container.ProcessIO{}); err != nil {
		fail(err)
	}
	fmt.Println("started")
	select {} // killed by the test
}

func TestRediscoveryCleansDeadContainers(t *testing.T) {
	testutil.RequireRoot(t)
	depot := t.TempDir()
	m, err := container.New(depot)
	require.NoError(t, err)
	c := newContainer(t, m, container.Spec{})
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	cgDirs := cgroupDirsOf(t, c)
	require.NotEmpty(t, cgDirs)
	require.NoError(t, m.Close())
	// The agent dies while no Manager watches; a half-created container
	// (a directory with no state) is also left behind.
	require.NoError(t, syscall.Kill(info.AgentPID, syscall.SIGKILL))
	require.NoError(t, os.MkdirAll(filepath.Join(depot, "containers", "half-made", "upper"), 0o700))

	m2, err := container.New(depot)
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	_, err = m2.Lookup(c.Handle())
	assert.ErrorIs(t, err, container.ErrNotFound)
	assert.NoDirExists(t, filepath.Join(depot, "containers", "half-made"))
	assert.NoDirExists(t, c.Path())
	for _, d := range cgDirs {
		assert.NoDirExists(t, d)
	}
}

func TestPropertiesAndGraceTimeChange(t *testing.T) {
	expired := make(chan string, 1)
	m := newManager(t, container.WithEventHandler(func(e container.Event) {
		if e.Type == container.EventGraceExpired {
			expired <- e.Handle
		}
	}))
	c := newContainer(t, m, container.Spec{Properties: map[string]string{"a": "1"}})
	require.NoError(t, c.SetProperty(t.Context(), "b", "2"))
	require.NoError(t, c.RemoveProperty(t.Context(), "a"))
	assert.Equal(t, map[string]string{"b": "2"}, c.Properties())
	found, err := m.List(t.Context(), map[string]string{"b": "2"})
	require.NoError(t, err)
	assert.Len(t, found, 1)
	var se *container.SpecError
	assert.ErrorAs(t, c.SetProperty(t.Context(), "", "x"), &se)

	require.NoError(t, c.SetGraceTime(t.Context(), 100*time.Millisecond))
	select {
	case h := <-expired:
		assert.Equal(t, c.Handle(), h)
	case <-time.After(30 * time.Second):
		t.Fatal("the new grace time never expired")
	}
}

package container_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// py runs a python3 program in c and returns its output.
func py(t *testing.T, c *container.Container, user, program string) result {
	t.Helper()
	return run(t, c, container.ProcessSpec{Path: "/usr/bin/python3", Args: []string{"-c", program}, User: user})
}

// syscallErrno is a python program that makes a raw system call and
// prints "errno N" (0 when it succeeded).
func syscallErrno(nr uintptr, args ...string) string {
	return fmt.Sprintf(`import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(%d%s)
print("errno", 0 if r >= 0 else ctypes.get_errno())`, nr, strings.Join(append([]string{""}, args...), ", "))
}

// TestEscapeBattery runs known container escapes and probes from inside a
// container with the default security profile; each subtest is one
// attack and says what it tries.
func TestEscapeBattery(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	for _, tc := range []struct {
		name, user, program, want string
	}{
		{"unshare a user namespace", "vcap", syscallErrno(unix.SYS_UNSHARE, "0x10000000"), "errno 1\n"},
		{"clone a new pid namespace as root", "", syscallErrno(unix.SYS_CLONE, "0x20000000|17", "0", "0", "0", "0"), "errno 1\n"},
		{"clone3 (flags a filter cannot read)", "", syscallErrno(unix.SYS_CLONE3, "0", "0"), "errno 38\n"},
		{"mount as root", "", syscallErrno(unix.SYS_MOUNT, "b'none'", "b'/mnt'", "b'tmpfs'", "0", "0"), "errno 1\n"},
		{"keyctl to reach the session keyring", "", syscallErrno(unix.SYS_KEYCTL, "0", "-3", "0"), "errno 1\n"},
		{"bpf", "", syscallErrno(unix.SYS_BPF, "0", "0", "0"), "errno 1\n"},
		{"perf_event_open", "", syscallErrno(unix.SYS_PERF_EVENT_OPEN, "0", "0", "-1", "-1", "0"), "errno 1\n"},
		{"userfaultfd", "", syscallErrno(unix.SYS_USERFAULTFD, "0"), "errno 1\n"},
		{"open_by_handle_at (shocker)", "", syscallErrno(unix.SYS_OPEN_BY_HANDLE_AT, "-100", "0", "0"), "errno 1\n"},
		{"setns into another namespace", "", syscallErrno(unix.SYS_SETNS, "0", "0"), "errno 1\n"},
		{"personality without ASLR", "", syscallErrno(unix.SYS_PERSONALITY, "0x0040000"), "errno 1\n"},
		{"io_uring", "", syscallErrno(unix.SYS_IO_URING_SETUP, "1", "0"), "errno 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := py(t, c, tc.user, tc.program)
			assert.Equal(t, tc.want, r.stdout, r.stderr)
		})
	}

	for _, tc := range []struct{ name, script string }{
		{"seccomp and no_new_privs in an exec'd process", `grep -q '^Seccomp:[[:space:]]*2$' /proc/self/status && grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/self/status`},
		{"write core_pattern", `echo '|/tmp/x' 2>&1 >/proc/sys/kernel/core_pattern | grep -q 'Read-only file system'`},
		{"write sysrq-trigger", `! test -e /proc/sysrq-trigger || echo c 2>&1 >/proc/sysrq-trigger | grep -q 'Read-only file system'`},
		{"mount a new proc", `! mount -t proc proc /mnt 2>/dev/null`},
		{"umount /proc", `! umount /proc 2>/dev/null && ! umount -l /proc/sys 2>/dev/null`},
		{"reach cgroup files and release_agent", `! test -e /sys/fs/cgroup/memory && ! mount -t cgroup -o memory cgroup /mnt 2>/dev/null && ! ls /sys/fs/cgroup/*/release_agent 2>/dev/null`},
		{"mknod a disk", `! mknod /tmp/sda b 8 0 2>/dev/null`},
		{"find /dev/mem or /dev/kmsg", `! test -e /dev/mem && ! test -e /dev/kmsg && ! test -e /dev/sda`},
		{"read masked kernel files", `test -z "$(cat /proc/interrupts /proc/timer_list 2>/dev/null)"`},
		{"write the agent's binary", `! echo x 2>/dev/null >>/proc/1/exe && ! cat /proc/1/mem >/dev/null 2>&1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, c, sh(tc.script))
			assert.Equal(t, 0, r.code, "script %q: %s%s", tc.script, r.stdout, r.stderr)
		})
	}

	t.Run("push input into the terminal (TIOCSTI)", func(t *testing.T) {
		var out syncBuffer
		p, err := c.Run(t.Context(), container.ProcessSpec{Path: "/usr/bin/python3", Args: []string{"-c",
			"import fcntl, termios\ntry:\n  fcntl.ioctl(0, termios.TIOCSTI, b'x')\n  print('injected')\nexcept OSError as e:\n  print('errno', e.errno)"},
			TTY: &container.TTYSpec{Rows: 24, Columns: 80}}, container.ProcessIO{Stdout: &out})
		require.NoError(t, err)
		_, err = p.Wait(t.Context())
		require.NoError(t, err)
		assert.Contains(t, out.String(), "errno 1")
	})

	t.Run("only fds 0, 1 and 2 are open", func(t *testing.T) {
		r := py(t, c, "", "import os; print(sorted(int(f) for f in os.listdir('/proc/self/fd')))")
		assert.Equal(t, "[0, 1, 2, 3]\n", r.stdout, "3 is listdir's own") // nothing else
	})

	t.Run("cwd through /proc/self/fd (CVE-2024-21626)", func(t *testing.T) {
		_, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/pwd", Dir: "/proc/self/fd/3"}, container.ProcessIO{})
		assert.ErrorIs(t, err, container.ErrInvalidSpec)
		_, err = c.Run(t.Context(), container.ProcessSpec{Path: "/bin/pwd", Dir: "/proc/1/cwd"}, container.ProcessIO{})
		assert.ErrorIs(t, err, container.ErrInvalidSpec)
	})

	t.Run("a setuid-root copy stays unprivileged", func(t *testing.T) {
		r := run(t, c, sh("cp /usr/bin/id /tmp/suid-id && chmod 4755 /tmp/suid-id && ls -l /tmp/suid-id"))
		require.Equal(t, 0, r.code, r.stderr)
		require.True(t, strings.HasPrefix(r.stdout, "-rwsr-xr-x"), r.stdout)
		r = run(t, c, container.ProcessSpec{Path: "/tmp/suid-id", Args: []string{"-u"}, User: "vcap"})
		assert.Equal(t, "10001\n", r.stdout)
	})
}

func TestAgentBinaryIsNotTheHostsFile(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	hash := func() [32]byte {
		f, err := os.Open(exe)
		require.NoError(t, err)
		defer f.Close()
		h := sha256.New()
		_, err = io.Copy(h, f)
		require.NoError(t, err)
		return [32]byte(h.Sum(nil))
	}
	before := hash()
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", info.AgentPID))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(link, "/memfd:paaskit-agent"), link)
	// Root in the container tries to write through /proc/1/exe.
	r := py(t, c, "", "open('/proc/1/exe', 'r+b').write(b'x')")
	assert.NotEqual(t, 0, r.code)
	assert.Equal(t, before, hash())
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", info.AgentPID))
	require.NoError(t, err)
	assert.Contains(t, string(status), "\nSeccomp:\t0\n", "the agent itself is not filtered")
}

func TestManagerLeaksNoDescriptors(t *testing.T) {
	m := newManager(t)
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		require.NoError(t, err)
		return len(ents)
	}
	cycle := func() {
		c, err := m.Create(t.Context(), container.Spec{RootFS: testutil.Stack(t)})
		require.NoError(t, err)
		r := run(t, c, sh("echo hi"))
		require.Equal(t, "hi\n", r.stdout)
		require.NoError(t, c.Destroy(t.Context()))
	}
	cycle() // warm up: the spare agent, the watcher
	before := count()
	for range 50 {
		cycle()
	}
	assert.Equal(t, before, count())
}

func TestHostileStacks(t *testing.T) {
	m := newManager(t)
	t.Run("proc is a symlink", func(t *testing.T) {
		stack := t.TempDir()
		require.NoError(t, os.Symlink("/proc", filepath.Join(stack, "proc")))
		_, err := m.Create(t.Context(), container.Spec{RootFS: stack})
		var se *container.SpecError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "RootFS", se.Field)
		assert.Contains(t, se.Reason, "/proc")
	})
	t.Run("bind mount destination through a link out of the root", func(t *testing.T) {
		// A hard-linked copy of the test stack with /escape -> a host
		// path that must not be touched.
		stack := filepath.Join(t.TempDir(), "stack")
		out, err := exec.Command("cp", "-al", testutil.Stack(t), stack).CombinedOutput()
		require.NoError(t, err, "%s", out)
		outside := filepath.Join(t.TempDir(), "outside")
		require.NoError(t, os.Symlink(outside, filepath.Join(stack, "escape")))
		src := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("bound"), 0o644))
		c := newContainer(t, m, container.Spec{RootFS: stack, BindMounts: []container.BindMount{{SrcPath: src, DstPath: "/escape/data"}}})
		r := run(t, c, sh("cat "+outside+"/data/f"))
		assert.Equal(t, "bound", r.stdout, "the mount landed inside the container, where the link resolves")
		assert.NoDirExists(t, outside, "the mount followed the link to the host")
	})
}

func TestWeakeningTheProfileIsExplicit(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{Security: container.SecurityProfile{
		Seccomp:            container.SeccompUnconfined(),
		Capabilities:       []string{"CAP_CHOWN"},
		AllowNewPrivileges: true,
	}})
	r := run(t, c, sh("grep -E '^(Seccomp|NoNewPrivs|CapBnd):' /proc/self/status"))
	assert.Equal(t, "CapBnd:\t0000000000000001\nNoNewPrivs:\t0\nSeccomp:\t0\n", r.stdout)

	// A profile that adds a rule to the default one.
	prof := container.DefaultSeccompProfile()
	prof.Syscalls = append([]container.SeccompRule{{Names: []string{"getpid"}, Action: container.SeccompErrno(unix.EACCES)}}, prof.Syscalls...)
	c2 := newContainer(t, m, container.Spec{Security: container.SecurityProfile{Seccomp: prof}})
	r = py(t, c2, "", syscallErrno(unix.SYS_GETPID))
	assert.Equal(t, "errno 13\n", r.stdout)

	_, err := m.Create(t.Context(), container.Spec{RootFS: testutil.Stack(t), Security: container.SecurityProfile{Capabilities: []string{"CAP_BOGUS"}}})
	var se *container.SpecError
	assert.ErrorAs(t, err, &se)
}

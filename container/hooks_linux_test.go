package container_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Child hooks run in the agent: they are registered in this test binary,
// which the agent is, before Init.
func init() {
	// Records where it ran, inside the rootfs before the pivot, and adds
	// a mount the container will see.
	container.RegisterChildHook("test-before-pivot", func(s container.HookState) error {
		wd, _ := os.Getwd()
		note := fmt.Sprintf("point=%s rootfs=%s pid=%d cwd=%s hostname=%s", s.Point, s.Rootfs, os.Getpid(), wd, hostname())
		target := filepath.Join(s.Rootfs, "hooked")
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", target, "tmpfs", 0, "size=64k"); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(target, "before-pivot"), []byte(note), 0o644)
	})
	container.RegisterChildHook("test-after-pivot", func(s container.HookState) error {
		_, err := os.Stat("/hooked/before-pivot") // runs after the other, inside the root
		if err != nil {
			return err
		}
		f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = fmt.Fprintf(f, "after-pivot hook says hello on the console, root %s\n", s.Rootfs)
		return err
	})
	container.RegisterChildHook("test-fail", func(container.HookState) error { return errors.New("refused by the test") })
	container.RegisterChildHook("test-die", func(container.HookState) error {
		os.Exit(7) // the agent dies during setup (SIGKILL from inside would not do: it is the namespace's init)
		return nil
	})
	container.RegisterChildHook("test-hang", func(container.HookState) error {
		select {}
	})
}

func hostname() string { h, _ := os.Hostname(); return h }

func TestHooksRunInOrderAndInContext(t *testing.T) {
	testutil.RequireRoot(t)
	var mu sync.Mutex
	var order []string
	record := func(ctx context.Context, s container.HookState) error {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, fmt.Sprintf("%s pid=%v", s.Point, s.Pid != 0))
		return nil
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "hook.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\ncat > "+dir+"/state-$PAASKIT_HOOK.json\necho \"$PAASKIT_HOOK $PAASKIT_HANDLE\" >> "+dir+"/calls\n"), 0o755))
	hooks := container.Hooks{
		ParentBeforeClone: []container.Hook{{Name: "r1", Func: record}, {Path: script}},
		ParentAfterClone:  []container.Hook{{Name: "r2", Func: record}, {Path: script}},
		ChildBeforePivot:  []container.Hook{{Name: "test-before-pivot"}},
		ChildAfterPivot:   []container.Hook{{Name: "test-after-pivot"}},
		AfterStart:        []container.Hook{{Name: "r3", Func: record}},
		BeforeStop:        []container.Hook{{Name: "r4", Func: record}},
		AfterDestroy:      []container.Hook{{Name: "r5", Func: record}, {Path: script}},
	}
	m := newManager(t, container.WithHooks(hooks))
	c := newContainer(t, m, container.Spec{Hostname: "hooked-host"})

	r := run(t, c, sh("cat /hooked/before-pivot"))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "point=child-before-pivot rootfs="+filepath.Join(c.Path(), "rootfs"))
	assert.Contains(t, r.stdout, "pid=1 ", "in the container's pid namespace")
	assert.Contains(t, r.stdout, "hostname=hooked-host", "in its uts namespace")

	// The console caught what the after-pivot hook wrote.
	var console bytes.Buffer
	require.NoError(t, c.Stop(t.Context(), true))
	p, err := c.Attach(t.Context(), container.ConsoleID, container.ProcessIO{Stdout: &console})
	require.NoError(t, err)
	_, err = p.Wait(t.Context())
	require.NoError(t, err)
	assert.Contains(t, console.String(), "after-pivot hook says hello on the console, root /")

	require.NoError(t, c.Destroy(t.Context()))
	assert.Equal(t, []string{"parent-before-clone pid=false", "parent-after-clone pid=true", "after-start pid=true", "before-stop pid=true", "after-destroy pid=true"}, order)
	calls, err := os.ReadFile(filepath.Join(dir, "calls"))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("parent-before-clone %[1]s\nparent-after-clone %[1]s\nafter-destroy %[1]s\n", c.Handle()), string(calls))
	var st container.HookState
	b, err := os.ReadFile(filepath.Join(dir, "state-parent-after-clone.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &st))
	assert.Equal(t, c.Handle(), st.Handle)
	assert.NotZero(t, st.Pid)
	assert.Equal(t, c.Path(), st.Dir)
}

func TestFailingHooksLeaveNothing(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		hooks container.Hooks
		point string
	}{
		{"parent-before-clone fails", container.Hooks{ParentBeforeClone: []container.Hook{{Name: "no", Func: func(context.Context, container.HookState) error { return errors.New("no") }}}}, "parent-before-clone"},
		{"parent-after-clone program fails", container.Hooks{ParentAfterClone: []container.Hook{{Path: "/bin/false"}}}, "parent-after-clone"},
		{"child-before-pivot fails", container.Hooks{ChildBeforePivot: []container.Hook{{Name: "test-fail"}}}, "child-before-pivot"},
		{"child-after-pivot times out", container.Hooks{ChildAfterPivot: []container.Hook{{Name: "test-hang", Timeout: 300 * time.Millisecond}}}, "child-after-pivot"},
		{"after-start times out", container.Hooks{AfterStart: []container.Hook{{Name: "slow", Timeout: 200 * time.Millisecond, Func: func(ctx context.Context, _ container.HookState) error {
			<-ctx.Done()
			return ctx.Err()
		}}}}, "after-start"},
		{"unregistered child hook", container.Hooks{ChildBeforePivot: []container.Hook{{Name: "nobody-registered-this"}}}, "child-before-pivot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, container.WithHooks(tc.hooks))
			handle := testutil.UniqueName(t, "pk-", 60, nil)
			_, err := m.Create(t.Context(), container.Spec{Handle: handle, RootFS: testutil.Stack(t)})
			require.Error(t, err)
			assert.ErrorIs(t, err, container.ErrHook)
			assert.Contains(t, err.Error(), tc.point)
			// Nothing left: depot, cgroups, mounts.
			ents, err := os.ReadDir(filepath.Join(m.Depot(), "containers"))
			require.NoError(t, err)
			assert.Empty(t, ents)
			dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + container.DefaultCgroupParent + "/*-" + handle)
			assert.Empty(t, dirs)
			mounts, err := os.ReadFile("/proc/self/mountinfo")
			require.NoError(t, err)
			assert.NotContains(t, string(mounts), m.Depot())
		})
	}
}

func TestAgentDyingDuringSetupFailsCreatePromptly(t *testing.T) {
	// A setup timeout far beyond the test's: the error must come from the
	// agent's death, not from waiting.
	m := newManager(t, container.WithSetupTimeout(time.Hour), container.WithHooks(container.Hooks{ChildBeforePivot: []container.Hook{{Name: "test-die"}}}))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := m.Create(ctx, container.Spec{RootFS: testutil.Stack(t)})
	require.ErrorIs(t, err, container.ErrAgent)
	assert.Contains(t, err.Error(), "agent exited during setup")
	ents, err := os.ReadDir(filepath.Join(m.Depot(), "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents)
}

func TestHookConfigurationIsValidated(t *testing.T) {
	testutil.RequireRoot(t)
	_, err := container.New(t.TempDir(), container.WithHooks(container.Hooks{ChildBeforePivot: []container.Hook{{Name: "x", Func: func(context.Context, container.HookState) error { return nil }}}}))
	var se *container.SpecError
	require.ErrorAs(t, err, &se)
	assert.True(t, strings.Contains(se.Reason, "RegisterChildHook"), se.Reason)
	_, err = container.New(t.TempDir(), container.WithHooks(container.Hooks{AfterStart: []container.Hook{{Name: "empty"}}}))
	assert.ErrorAs(t, err, &se)
}

func TestConsoleCapturesAndIsReattachable(t *testing.T) {
	testutil.RequireRoot(t)
	depot := t.TempDir()
	m, err := container.New(depot)
	require.NoError(t, err)
	c := newContainer(t, m, container.Spec{})
	r := run(t, c, sh("echo to the console >/dev/console; echo from vcap >/dev/console"))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout, "console output is not the process's")
	var live syncBuffer
	_, err = c.Attach(t.Context(), container.ConsoleID, container.ProcessIO{Stdout: &live})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(live.String(), "from vcap") }, 10*time.Second, 5*time.Millisecond)
	assert.Contains(t, live.String(), "to the console\r\n")

	// From a new Manager, all of it again.
	require.NoError(t, m.Close())
	m2, err := container.New(depot)
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	c2, err := m2.Lookup(c.Handle())
	require.NoError(t, err)
	var again syncBuffer
	_, err = c2.Attach(t.Context(), container.ConsoleID, container.ProcessIO{Stdout: &again})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return again.String() == live.String() }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, c2.Destroy(t.Context()))
}

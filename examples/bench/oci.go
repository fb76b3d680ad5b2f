package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// peer measures the lifecycle and exec with the named OCI runtime on the
// same stack. A runtime that is missing or fails gives n/a figures and a
// "# <name>: <error>" comment, not an error; only a cancelled ctx or a
// failed cleanup is.
func (s *containerSuite) peer(ctx context.Context, name string) (retErr error) {
	lc, ex := "container.lifecycle."+name, "container.exec."+name
	na := func(prefix string, err error) {
		s.r.addNA(prefix+".p50", "ms", name, err)
		s.r.addNA(prefix+".p90", "ms", "", nil)
	}
	rt, err := lookRuntime(name, fmt.Sprintf("paaskit-bench-%d-%s-", s.pid, name))
	if err != nil {
		na(lc, err)
		na(ex, nil)
		return nil
	}
	defer func() {
		if err := rt.cleanup(ctx); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("%s: cleanup: %w", name, err))
		}
	}()
	runBundle := filepath.Join(s.tmp, name+"-run")
	sleepBundle := filepath.Join(s.tmp, name+"-sleep")
	if err := writeBundle(runBundle, s.stack, []string{"/bin/true"}, s.ociCg+"/"+name+"-run"); err != nil {
		return err
	}
	if err := writeBundle(sleepBundle, s.stack, []string{"/bin/sleep", "1000"}, s.ociCg+"/"+name+"-sleep"); err != nil {
		return err
	}

	s.r.commentf("%s lifecycle (run), %d iterations", name, s.cfg.n)
	err = s.timeN(ctx, lc, func(int) (time.Duration, error) { return rt.runOnce(ctx, runBundle) })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		na(lc, err)
	}

	s.r.commentf("%s exec, %d iterations", name, s.cfg.n)
	id, err := rt.startDetached(ctx, sleepBundle, s.tmp)
	if err == nil {
		err = s.timeN(ctx, ex, func(int) (time.Duration, error) { return rt.execOnce(ctx, id, "/bin/true") })
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		na(ex, err)
	}
	return nil
}

// ociSpec returns a minimal OCI runtime configuration, close to what
// `runc spec` generates: root at rootfs (read-only, so that the same stack
// serves paaskit and the peers without being written), the process args
// without a terminal, new pid, mount, ipc, uts and network namespaces, the
// usual /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and
// /sys/fs/cgroup mounts, all devices denied, and the container's cgroups
// at cgroupsPath.
func ociSpec(rootfs string, args []string, cgroupsPath string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		// The oldest version with all we use: runtimes check it (crun 1.8
		// refuses the 1.3.0 of specs.Version).
		Version: "1.0.2",
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: 0, GID: 0},
			Args:     args,
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: "bench",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
}

// writeBundle makes the bundle directory dir with the config.json of
// ociSpec(rootfs, args, cgroupsPath).
func writeBundle(dir, rootfs string, args []string, cgroupsPath string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(ociSpec(rootfs, args, cgroupsPath), "", "\t")
	if err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	return nil
}

// ociRuntime drives one OCI runtime binary (runc or crun) with its default
// state root. Every container it creates has an id starting with prefix,
// so that cleanup finds them all. It is not safe for concurrent use.
type ociRuntime struct {
	name   string // "runc" or "crun"
	path   string // the binary, found on PATH
	prefix string // prefix of the ids of this runner's containers
	seq    int
	ids    []string // every id used, for cleanup when listing fails
}

// lookRuntime finds the named runtime on PATH; it returns an error when it
// is not installed.
func lookRuntime(name, prefix string) (*ociRuntime, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("not found on PATH: %w", err)
	}
	return &ociRuntime{name: name, path: p, prefix: prefix}, nil
}

// newID returns a container id no other container of this run uses, and
// records it for cleanup.
func (rt *ociRuntime) newID(kind string) string {
	rt.seq++
	id := fmt.Sprintf("%s%s-%d", rt.prefix, kind, rt.seq)
	rt.ids = append(rt.ids, id)
	return id
}

// command returns the runtime invoked with args: cancelled with SIGTERM
// (which runc and crun forward to the container's process) when ctx ends,
// then killed after a grace period.
func (rt *ociRuntime) command(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, rt.path, args...)
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = 5 * time.Second
	return c
}

// do runs the runtime with args and waits for it; the error holds its
// output.
func (rt *ociRuntime) do(ctx context.Context, args ...string) error {
	c := rt.command(ctx, args...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", rt.name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// runOnce runs the bundle's process to its end in a new container (`run`
// in the foreground: create, start, wait, delete) and returns how long it
// took. A failed container is deleted at once.
func (rt *ociRuntime) runOnce(ctx context.Context, bundle string) (time.Duration, error) {
	id := rt.newID("run")
	start := time.Now()
	err := rt.do(ctx, "run", "--bundle", bundle, id)
	d := time.Since(start)
	if err != nil {
		return 0, errors.Join(err, rt.deleteQuiet(ctx, id))
	}
	return d, nil
}

// startDetached starts the bundle's process in a new container that keeps
// running (`run -d`) and returns its id. Its stdio go to /dev/null, and
// its stderr to a file while it starts, so that waiting for the runtime
// does not wait for the container's process.
func (rt *ociRuntime) startDetached(ctx context.Context, bundle, tmpDir string) (string, error) {
	id := rt.newID("detached")
	errFile, err := os.CreateTemp(tmpDir, rt.name+"-stderr-")
	if err != nil {
		return "", fmt.Errorf("%s run -d: %w", rt.name, err)
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()
	c := rt.command(ctx, "run", "-d", "--bundle", bundle, id)
	c.Stderr = errFile
	if err := c.Run(); err != nil {
		msg, _ := os.ReadFile(errFile.Name())
		err = fmt.Errorf("%s run -d --bundle %s %s: %w: %s", rt.name, bundle, id, err, strings.TrimSpace(string(msg)))
		return "", errors.Join(err, rt.deleteQuiet(ctx, id))
	}
	return id, nil
}

// execOnce runs args in the running container id (`exec`), waits for it
// and returns how long it took.
func (rt *ociRuntime) execOnce(ctx context.Context, id string, args ...string) (time.Duration, error) {
	start := time.Now()
	if err := rt.do(ctx, append([]string{"exec", id}, args...)...); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// deleteQuiet force-deletes container id, succeeding when it does not
// exist. It runs even when ctx is cancelled.
func (rt *ociRuntime) deleteQuiet(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := rt.do(ctx, "delete", "-f", id)
	if err != nil && (strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "not exist")) {
		return nil // the runtimes have no exit code for "not found"
	}
	return err
}

// cleanup force-deletes every container of this runner that the runtime
// still lists (all the ids it used when listing fails). It runs even when
// ctx is cancelled.
func (rt *ociRuntime) cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	ids := rt.ids
	c := rt.command(ctx, "list", "-q")
	if out, err := c.Output(); err == nil {
		ids = nil
		for _, id := range strings.Fields(string(out)) {
			if strings.HasPrefix(id, rt.prefix) {
				ids = append(ids, id)
			}
		}
	}
	var errs []error
	for _, id := range ids {
		if err := rt.deleteQuiet(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

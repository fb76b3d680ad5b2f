package cgroups

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Cgroup is one cgroup: on v1 a directory of the same path in each
// mounted controller, on v2 one directory in the unified tree. Create one
// with [New] or attach to an existing one with [Load].
//
// A Cgroup holds no open files and no goroutines (a [OOMWatcher] does);
// dropping it releases nothing in the kernel, [Cgroup.Delete] does. Its
// methods are safe for concurrent use: each is a few reads or writes of
// cgroup files, and the kernel serialises those.
type Cgroup struct {
	cfg  config
	path string // clean, absolute within the hierarchy: "/paaskit/h1"
	// dirs are the host directories of the cgroup: controller name → dir
	// on v1 (only the controllers it is in), unifiedKey → dir on v2.
	dirs map[string]string
}

// unifiedKey is the key of the one directory in Cgroup.dirs on v2.
const unifiedKey = "unified"

// config is where the cgroup hierarchies are and how directories appear
// and disappear; tests replace it with a fixture tree.
type config struct {
	mode Mode
	// root is the unified mountpoint on v2, the directory holding the
	// controller mountpoints (root/memory, root/cpu, …) on v1.
	root string
	// populate, when not nil, is called for each directory New creates on
	// v2, standing in for the kernel filling it with interface files.
	populate func(dir string) error
	// remove removes a cgroup directory; nil means rmdir(2). Tests use
	// os.RemoveAll, as a fixture directory is not empty.
	remove func(dir string) error
}

func hostConfig() config { return config{mode: DetectMode(), root: hostRoot} }

// New creates the cgroup at path and applies r to it, after checking r with
// [Resources.Validate]. path is relative to the hierarchy root, such as
// "/paaskit/<handle>"; it must not be the root and must not contain "..".
//
// On v1 the cgroup is created in the controllers that limit, account or
// stop its processes, when mounted: memory, cpu, cpuacct, pids, devices
// and freezer (not cpuset, blkio, … nor the named name=systemd
// hierarchy: each controller costs an attach per process moved). On v2 it is created in the unified tree, after enabling the
// cpu, memory and pids controllers in cgroup.subtree_control of every
// ancestor. A controller that r needs but that is missing (memory for
// MemoryLimit, cpu for CPUShares, pids for PidsMax, devices on v1 for
// Devices) is an error wrapping errors.ErrUnsupported.
//
// An existing cgroup at path is reused and r applied to it. Missing
// ancestors are created and left in place (siblings share them). On any
// failure New removes the cgroup directories it created and returns the
// error. New fails with an error wrapping errors.ErrUnsupported when the
// host has no cgroups ([DetectMode] is [Unavailable]).
func New(path string, r Resources) (*Cgroup, error) {
	return newCgroup(hostConfig(), path, r)
}

// Load attaches to the existing cgroup at path (as for [New]). It returns
// an error wrapping [ErrNotExist] when there is no such cgroup.
func Load(path string) (*Cgroup, error) {
	return loadCgroup(hostConfig(), path)
}

// Path returns the cgroup's path within the hierarchy, as given to [New]
// or [Load] but cleaned: "/paaskit/h1".
func (c *Cgroup) Path() string { return c.path }

// Mode returns the cgroup layout the cgroup lives in: [Legacy] or
// [Unified].
func (c *Cgroup) Mode() Mode { return c.cfg.mode }

// Add moves the process pid (all its threads) into the cgroup, in every
// controller on v1. The process's children forked later inherit it.
func (c *Cgroup) Add(pid int) error {
	if pid < 1 {
		return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, c.path, ErrInvalid)
	}
	return c.add(pid)
}

// Update applies r to the cgroup, after checking it with
// [Resources.Validate]. Zero fields remove the limit (MemoryLimit,
// PidsMax), leave the current value (CPUShares) or lift the device
// allowlist (Devices, v1 only). On v1, memory.limit_in_bytes and
// memory.memsw.limit_in_bytes are written in the order the kernel accepts
// (memsw must never be below the memory limit). Lowering MemoryLimit below
// the current usage makes the kernel reclaim and, failing that, OOM-kill.
func (c *Cgroup) Update(r Resources) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return c.update(r)
}

// Procs returns the pids of the processes in the cgroup (cgroup.procs of
// the memory controller on v1, of the unified directory on v2), without
// those of descendant cgroups. The order is the kernel's.
func (c *Cgroup) Procs() ([]int, error) { return c.procs() }

// Stats returns the cgroup's memory, CPU and pids accounting.
func (c *Cgroup) Stats() (*Stats, error) { return c.stats() }

// OOMKillCount returns how many tasks the OOM killer has killed in the
// cgroup and its descendants: the oom_kill line of v1 memory.oom_control
// or of v2 memory.events.
func (c *Cgroup) OOMKillCount() (uint64, error) { return c.oomKillCount() }

// OOMCounterFile returns the host path of the file holding the cgroup's
// oom_kill counter (v1 memory.oom_control, v2 memory.events), for a
// process that keeps it open and parses it with [ParseOOMKill]. It is ""
// on v1 when the memory controller is not mounted.
func (c *Cgroup) OOMCounterFile() string {
	if c.cfg.mode == Unified {
		return filepath.Join(c.dirs[unifiedKey], "memory.events")
	}
	if d, ok := c.dirs["memory"]; ok {
		return filepath.Join(d, "memory.oom_control")
	}
	return ""
}

// Kill sends SIGKILL to every process in the cgroup and waits until it is
// empty, for at most about 5 seconds (a process stuck in the kernel can
// outlive that: the error then says how many remain). On v2 it writes
// cgroup.kill when the kernel has it (5.14+) and otherwise kills the pids
// of cgroup.procs until none is left. On v1 it freezes the cgroup with the
// freezer controller when mounted, so nothing forks in between, kills
// every process, and thaws it so the signals are delivered. Kill on an
// empty or deleted cgroup returns nil.
func (c *Cgroup) Kill() error { return c.kill() }

// Delete removes the cgroup's directories (every controller on v1). It
// is idempotent: directories already gone count as removed, so a second
// Delete returns nil. While the kernel still reports the cgroup busy
// (processes just killed are still exiting) it retries with a short
// backoff for about 2 seconds; call [Cgroup.Kill] first. Failures of
// several controllers are joined with errors.Join. Ancestors are left in
// place.
func (c *Cgroup) Delete() error { return c.delete() }

// CgroupFD opens the cgroup directory with O_PATH|O_DIRECTORY|O_CLOEXEC,
// for starting a process directly in the cgroup: pass its Fd() as
// syscall.SysProcAttr.CgroupFD with UseCgroupFD set (clone3 with
// CLONE_INTO_CGROUP, Linux 5.7+), and close it once the process started.
// It is cgroup v2 only: on v1 the error wraps errors.ErrUnsupported.
func (c *Cgroup) CgroupFD() (*os.File, error) { return c.cgroupFD() }

// cleanPath checks a cgroup path given to New or Load and returns it
// cleaned and absolute.
func cleanPath(p string) (string, error) {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("cgroups: path %q: must not contain \"..\": %w", p, ErrInvalid)
		}
	}
	clean := path.Clean("/" + p)
	if clean == "/" {
		return "", fmt.Errorf("cgroups: path %q: must not be the root cgroup: %w", p, ErrInvalid)
	}
	return clean, nil
}

// ThreadFiles returns, on cgroup v1, the "tasks" file of the cgroup in
// every controller it is in, sorted. Writing a thread id there moves that
// one thread, so that the processes it forks from then on start in the
// cgroup. On v2, where the threads of a process share its cgroup, it
// returns nil: use [Cgroup.CgroupFD] with clone3 instead.
func (c *Cgroup) ThreadFiles() []string {
	if c.cfg.mode != Legacy {
		return nil
	}
	var files []string
	for _, dir := range c.dirs {
		files = append(files, filepath.Join(dir, "tasks"))
	}
	slices.Sort(files)
	return files
}

// Rename moves the cgroup to path, which must have the same parent (a
// rename within one directory of every controller): processes and threads
// stay in it, and no attach is needed, unlike moving them to a new
// cgroup. On failure the controllers renamed so far are renamed back.
func (c *Cgroup) Rename(path string) error {
	p, err := cleanPath(path)
	if err != nil {
		return err
	}
	if filepath.Dir(p) != filepath.Dir(c.path) {
		return fmt.Errorf("cgroups: rename %s to %s: not the same parent: %w", c.path, p, ErrInvalid)
	}
	base := filepath.Base(p)
	done := map[string]string{}
	for name, dir := range c.dirs {
		to := filepath.Join(filepath.Dir(dir), base)
		if err := os.Rename(dir, to); err != nil {
			for n, d := range done {
				os.Rename(d, c.dirs[n])
			}
			return fmt.Errorf("cgroups: rename %s to %s (%s): %w", c.path, p, name, err)
		}
		done[name] = to
	}
	c.dirs = done
	c.path = p
	return nil
}

package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Timeouts of the polling loops; each polls with a backoff from 1 ms to
// 50 ms.
const (
	deleteTimeout = 2 * time.Second // Delete: rmdir retried while EBUSY
	killTimeout   = 5 * time.Second // Kill: waiting for cgroup.procs to empty
	freezeTimeout = time.Second     // Kill on v1: waiting for FROZEN
)

func newCgroup(cfg config, path string, r Resources) (*Cgroup, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	switch cfg.mode {
	case Legacy:
		return newLegacy(cfg, p, r)
	case Unified:
		return newUnified(cfg, p, r)
	default:
		return nil, fmt.Errorf("cgroups: create %s: no cgroup hierarchy mounted: %w", p, errors.ErrUnsupported)
	}
}

func loadCgroup(cfg config, path string) (*Cgroup, error) {
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	switch cfg.mode {
	case Legacy:
		return loadLegacy(cfg, p)
	case Unified:
		return loadUnified(cfg, p)
	default:
		return nil, fmt.Errorf("cgroups: load %s: no cgroup hierarchy mounted: %w", p, errors.ErrUnsupported)
	}
}

func (c *Cgroup) add(pid int) error {
	if c.cfg.mode == Legacy {
		return c.addLegacy(pid)
	}
	return c.addUnified(pid)
}

func (c *Cgroup) update(r Resources) error {
	if c.cfg.mode == Legacy {
		return c.updateLegacy(r)
	}
	return c.updateUnified(r)
}

func (c *Cgroup) procs() ([]int, error) {
	pids, err := readProcs(c.procsDir())
	if err != nil {
		return nil, fmt.Errorf("cgroups: procs of %s: %w", c.path, err)
	}
	return pids, nil
}

func (c *Cgroup) stats() (*Stats, error) {
	var (
		s   *Stats
		err error
	)
	if c.cfg.mode == Legacy {
		s, err = c.statsLegacy()
	} else {
		s, err = c.statsUnified()
	}
	if err != nil {
		return nil, fmt.Errorf("cgroups: stats of %s: %w", c.path, err)
	}
	return s, nil
}

func (c *Cgroup) oomKillCount() (uint64, error) {
	file := c.OOMCounterFile()
	if file == "" {
		return 0, fmt.Errorf("cgroups: oom_kill of %s: memory controller not mounted: %w", c.path, errors.ErrUnsupported)
	}
	n, err := readOOMKill(file)
	if err != nil {
		return 0, fmt.Errorf("cgroups: oom_kill of %s: %w", c.path, err)
	}
	return n, nil
}

func (c *Cgroup) kill() error {
	var err error
	if c.cfg.mode == Legacy {
		err = c.killLegacy()
	} else {
		err = c.killUnified()
	}
	if err != nil {
		return fmt.Errorf("cgroups: kill %s: %w", c.path, err)
	}
	return nil
}

func (c *Cgroup) delete() error {
	deadline := time.Now().Add(deleteTimeout)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.dirs)) {
		if err := c.removeDir(c.dirs[name], deadline); err != nil {
			errs = append(errs, fmt.Errorf("cgroups: delete %s (%s): %w", c.path, name, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Cgroup) cgroupFD() (*os.File, error) {
	if c.cfg.mode != Unified {
		return nil, fmt.Errorf("cgroups: cgroup fd of %s: needs cgroup v2: %w", c.path, errors.ErrUnsupported)
	}
	dir := c.dirs[unifiedKey]
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroups: cgroup fd of %s: %w", c.path, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// procsDir is the directory whose cgroup.procs lists the cgroup's
// processes: the memory controller's on v1 (or, without it, the first
// controller's in name order), the unified one on v2.
func (c *Cgroup) procsDir() string {
	if d, ok := c.dirs[unifiedKey]; ok {
		return d
	}
	if d, ok := c.dirs["memory"]; ok {
		return d
	}
	for _, name := range slices.Sorted(maps.Keys(c.dirs)) {
		return c.dirs[name]
	}
	return ""
}

// removeDir removes one cgroup directory, retrying with a backoff while
// the kernel says it is busy, until deadline. A missing directory is not
// an error.
func (c *Cgroup) removeDir(dir string, deadline time.Time) error {
	remove := c.cfg.remove
	if remove == nil {
		remove = rmdir
	}
	return poll(deadline, func() (bool, error) {
		err := remove(dir)
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
			return true, nil
		case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EAGAIN):
			return false, err
		default:
			return true, err
		}
	})
}

// poll calls f until it reports done, with a backoff from 1 ms to 50 ms
// between calls. When deadline passes first it returns the last error f
// returned with done false, or an error saying it timed out.
func poll(deadline time.Time, f func() (done bool, err error)) error {
	delay := time.Millisecond
	for {
		done, err := f()
		if done {
			return err
		}
		if !time.Now().Before(deadline) {
			if err == nil {
				err = errors.New("timed out")
			}
			return err
		}
		time.Sleep(min(delay, time.Until(deadline)))
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// killUntilEmpty sends SIGKILL to every process of dir's cgroup.procs
// until the file lists none, for at most killTimeout. A missing directory
// counts as empty.
func killUntilEmpty(dir string) error {
	var left int
	err := poll(time.Now().Add(killTimeout), func() (bool, error) {
		pids, err := readProcs(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return true, nil
		case err != nil:
			return true, err
		}
		left = len(pids)
		if left == 0 {
			return true, nil
		}
		for _, pid := range pids {
			if err := killPid(pid); err != nil {
				return true, err
			}
		}
		return false, nil
	})
	if err != nil && left > 0 {
		return fmt.Errorf("%d processes left after SIGKILL: %w", left, err)
	}
	return err
}

// killPid sends SIGKILL to pid; a process already gone is not an error.
func killPid(pid int) error {
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return os.NewSyscallError("kill "+strconv.Itoa(pid), err)
	}
	return nil
}

// rmdir is rmdir(2) with the error as an *os.PathError.
func rmdir(dir string) error {
	if err := unix.Rmdir(dir); err != nil {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// readFile reads a cgroup file whole.
func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// writeFile writes value to an existing cgroup file in one write(2) (the
// kernel parses each write on its own; cgroup files cannot be created).
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write %q: %w", value, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q: %w", value, err)
	}
	return nil
}

// readUintFile reads a single-number cgroup file.
func readUintFile(path string) (uint64, error) {
	s, err := readFile(path)
	if err != nil {
		return 0, err
	}
	n, err := parseUint(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// readLimitFile reads a single-limit cgroup file; no limit is 0.
func readLimitFile(path string) (uint64, error) {
	s, err := readFile(path)
	if err != nil {
		return 0, err
	}
	n, err := parseLimit(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// readFlatKeyed reads a "key value" per line cgroup file.
func readFlatKeyed(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := parseFlatKeyed(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func readOOMKill(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := ParseOOMKill(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// readProcs reads the pids of dir/cgroup.procs.
func readProcs(dir string) ([]int, error) {
	f, err := os.Open(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pids []int
	s := bufio.NewScanner(f)
	for s.Scan() {
		t := strings.TrimSpace(s.Text())
		if t == "" {
			continue
		}
		pid, err := strconv.Atoi(t)
		if err != nil {
			return nil, fmt.Errorf("%s: malformed pid %q", f.Name(), t)
		}
		pids = append(pids, pid)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return pids, nil
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Children lists the names of the cgroups directly below parent (read
// from one controller: on v1 they exist in all of them).
func Children(parent string) ([]string, error) {
	p, err := cleanPath(parent)
	if err != nil {
		return nil, err
	}
	cfg := hostConfig()
	dir := filepath.Join(cfg.root, p)
	if cfg.mode == Legacy {
		dir = filepath.Join(cfg.root, "memory", p)
		if !exists(dir) {
			dir = filepath.Join(cfg.root, "pids", p)
		}
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

package cgroups

// The cgroup v2 side, in plain file I/O: containerd's cgroup2 package
// would work on these files too, but it brings cilium/ebpf, logrus and
// go-systemd along for a dozen reads and writes, skips zero values (so it
// cannot lift a limit again), and its EventChan runs a goroutine nobody
// can stop.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v2Controllers are enabled for the cgroup when the host has them: they
// are the ones Resources and Stats use.
var v2Controllers = []string{"cpu", "memory", "pids"}

// neededV2 returns the controllers r cannot do without.
func neededV2(r Resources) []string {
	var need []string
	if r.CPUShares > 0 {
		need = append(need, "cpu")
	}
	if r.MemoryLimit > 0 {
		need = append(need, "memory")
	}
	if r.PidsMax > 0 {
		need = append(need, "pids")
	}
	return need
}

func readControllers(path string) ([]string, error) {
	s, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range strings.Fields(s) {
		out = append(out, strings.TrimPrefix(f, "+"))
	}
	return out, nil
}

func newUnified(cfg config, p string, r Resources) (_ *Cgroup, retErr error) {
	need := neededV2(r)
	avail, err := readControllers(filepath.Join(cfg.root, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: create %s: %w", p, err)
	}
	for _, n := range need {
		if !slices.Contains(avail, n) {
			return nil, fmt.Errorf("cgroups: create %s: the %s controller is not available: %w", p, n, errors.ErrUnsupported)
		}
	}
	dir := filepath.Join(cfg.root, p)
	c := &Cgroup{cfg: cfg, path: p, dirs: map[string]string{unifiedKey: dir}}

	// Walk from the root down: enable the controllers for the children of
	// each level, then step into (creating if needed) the next level.
	cur := cfg.root
	elems := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, el := range elems {
		if err := enableControllers(cur, need); err != nil {
			return nil, fmt.Errorf("cgroups: create %s: %w", p, err)
		}
		cur = filepath.Join(cur, el)
		created, err := mkdirCgroup(cfg, cur)
		if err != nil {
			return nil, fmt.Errorf("cgroups: create %s: %w", p, err)
		}
		if created && i == len(elems)-1 {
			defer func() {
				if retErr != nil {
					if err := c.removeDir(dir, time.Now().Add(deleteTimeout)); err != nil {
						retErr = errors.Join(retErr, fmt.Errorf("cgroups: roll back %s: %w", p, err))
					}
				}
			}()
		}
	}
	if err := c.updateUnified(r); err != nil {
		return nil, err
	}
	return c, nil
}

// mkdirCgroup creates one cgroup directory, reporting whether it did.
func mkdirCgroup(cfg config, dir string) (bool, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	if cfg.populate != nil {
		if err := cfg.populate(dir); err != nil {
			return true, errors.Join(err, os.Remove(dir))
		}
	}
	return true, nil
}

// enableControllers writes the v2Controllers that dir offers but has not
// enabled yet to dir/cgroup.subtree_control. When writing them together
// fails it tries one by one, and fails only if one in need fails (the
// kernel refuses, say, cpu while a real-time task runs outside of it).
func enableControllers(dir string, need []string) error {
	avail, err := readControllers(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	ctl := filepath.Join(dir, "cgroup.subtree_control")
	enabled, err := readControllers(ctl)
	if err != nil {
		return err
	}
	var missing []string
	for _, n := range v2Controllers {
		if slices.Contains(avail, n) && !slices.Contains(enabled, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	all := "+" + strings.Join(missing, " +")
	if err := writeFile(ctl, all); err == nil {
		return nil
	}
	for _, n := range missing {
		if err := writeFile(ctl, "+"+n); err != nil && slices.Contains(need, n) {
			return err
		}
	}
	return nil
}

func loadUnified(cfg config, p string) (*Cgroup, error) {
	dir := filepath.Join(cfg.root, p)
	if !exists(filepath.Join(dir, "cgroup.procs")) {
		return nil, fmt.Errorf("cgroups: load %s: %w", p, ErrNotExist)
	}
	return &Cgroup{cfg: cfg, path: p, dirs: map[string]string{unifiedKey: dir}}, nil
}

func (c *Cgroup) addUnified(pid int) error {
	file := filepath.Join(c.dirs[unifiedKey], "cgroup.procs")
	// EINVAL: the task is still being forked (TASK_NEW); retry a little,
	// as runc and containerd do.
	err := poll(time.Now().Add(150*time.Millisecond), func() (bool, error) {
		err := writeFile(file, strconv.Itoa(pid))
		return !errors.Is(err, unix.EINVAL), err
	})
	if err != nil {
		return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, c.path, err)
	}
	return nil
}

func (c *Cgroup) updateUnified(r Resources) error {
	dir := c.dirs[unifiedKey]
	has := func(file string) bool { return exists(filepath.Join(dir, file)) }
	for _, n := range neededV2(r) {
		// cpu.weight, memory.max and pids.max appear once the parent
		// enables the controller.
		file := map[string]string{"cpu": "cpu.weight", "memory": "memory.max", "pids": "pids.max"}[n]
		if !has(file) {
			return fmt.Errorf("cgroups: update %s: the %s controller is not enabled: %w", c.path, n, errors.ErrUnsupported)
		}
	}
	var writes [][2]string
	if has("memory.max") {
		mem, swap := "max", "max"
		if r.MemoryLimit > 0 {
			mem, swap = strconv.FormatInt(r.MemoryLimit, 10), "0"
		}
		writes = append(writes, [2]string{"memory.max", mem})
		if has("memory.swap.max") { // absent without swap accounting
			writes = append(writes, [2]string{"memory.swap.max", swap})
		}
	}
	if r.CPUShares > 0 {
		writes = append(writes, [2]string{"cpu.weight", strconv.FormatUint(sharesToWeight(r.CPUShares), 10)})
	}
	if has("pids.max") {
		writes = append(writes, [2]string{"pids.max", pidsMaxValue(r.PidsMax)})
	}
	for _, w := range writes {
		if err := writeFile(filepath.Join(dir, w[0]), w[1]); err != nil {
			return fmt.Errorf("cgroups: update %s: %w", c.path, err)
		}
	}
	return nil
}

func (c *Cgroup) statsUnified() (*Stats, error) {
	dir := c.dirs[unifiedKey]
	s := &Stats{}
	if exists(filepath.Join(dir, "memory.current")) {
		raw, err := readFlatKeyed(filepath.Join(dir, "memory.stat"))
		if err != nil {
			return nil, err
		}
		var swap uint64
		if sw := filepath.Join(dir, "memory.swap.current"); exists(sw) {
			if swap, err = readUintFile(sw); err != nil {
				return nil, err
			}
		}
		s.Memory.Raw = raw
		s.Memory.MemoryCounters = v2MemoryCounters(raw, swap)
		s.Memory.Total = s.Memory.MemoryCounters
		if s.Memory.Usage, err = readUintFile(filepath.Join(dir, "memory.current")); err != nil {
			return nil, err
		}
		if s.Memory.Limit, err = readLimitFile(filepath.Join(dir, "memory.max")); err != nil {
			return nil, err
		}
		if s.Memory.OOMKill, err = readOOMKill(filepath.Join(dir, "memory.events")); err != nil {
			return nil, err
		}
	}
	m, err := readFlatKeyed(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return nil, err
	}
	s.CPU = v2CPUStats(m)
	if exists(filepath.Join(dir, "pids.current")) {
		if s.Pids.Current, err = readUintFile(filepath.Join(dir, "pids.current")); err != nil {
			return nil, err
		}
		if s.Pids.Limit, err = readLimitFile(filepath.Join(dir, "pids.max")); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// killUnified writes cgroup.kill (Linux 5.14+), which kills every task of
// the cgroup and its descendants atomically; without it, it kills the
// listed pids until none is left.
func (c *Cgroup) killUnified() error {
	dir := c.dirs[unifiedKey]
	if kill := filepath.Join(dir, "cgroup.kill"); exists(kill) {
		if err := writeFile(kill, "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return killUntilEmpty(dir)
}

// watchOOMUnified watches memory.events with inotify: the kernel sends
// IN_MODIFY when one of its counters changes.
func (c *Cgroup) watchOOMUnified() (_ *OOMWatcher, retErr error) {
	events := filepath.Join(c.dirs[unifiedKey], "memory.events")
	last, err := readOOMKill(events)
	if err != nil {
		return nil, err
	}
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	file := os.NewFile(uintptr(ifd), "inotify")
	defer func() {
		if retErr != nil {
			file.Close()
		}
	}()
	if _, err := unix.InotifyAddWatch(ifd, events, unix.IN_MODIFY|unix.IN_DELETE_SELF); err != nil {
		return nil, &os.PathError{Op: "inotify_add_watch", Path: events, Err: err}
	}
	buf := make([]byte, 4096)
	src := oomSource{
		file: file,
		wait: func() (bool, error) {
			n, err := file.Read(buf)
			if err != nil {
				return false, err
			}
			return inotifyGone(buf[:n]), nil
		},
		check: func() (uint64, bool, error) {
			n, err := readOOMKill(events)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV) {
				return 0, false, errGone
			}
			return n, false, err
		},
	}
	return startOOMWatcher(src, last), nil
}

// inotifyGone reports whether a batch of inotify events says the watched
// file was deleted or the watch removed.
func inotifyGone(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		// struct inotify_event: int wd; u32 mask, cookie, len; char name[len]
		mask := binary.NativeEndian.Uint32(b[4:8])
		nameLen := int(binary.NativeEndian.Uint32(b[12:16]))
		if mask&(unix.IN_DELETE_SELF|unix.IN_IGNORED) != 0 {
			return true
		}
		b = b[min(len(b), unix.SizeofInotifyEvent+nameLen):]
	}
	return false
}

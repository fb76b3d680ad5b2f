package cgroups

// The cgroup v1 side. Creating a cgroup in the mounted controllers of
// v1Controllers and adding processes
// go through containerd's cgroup1 package; limits, stats, OOM, kill and
// removal are plain file I/O, because cgroup1 cannot lift a limit again
// (it skips zero values), orders the memory and memsw writes only when
// both are positive, and its Delete and Freeze use fixed sleeps or wait
// without bound.

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Hierarchy returns containerd's subsystems for the controllers mounted
// below root, by name. A controller counts as mounted when
// root/<name>/cgroup.procs exists.
func v1Hierarchy(root string) map[string]cgroup1.Subsystem {
	subs := map[string]cgroup1.Subsystem{}
	for _, name := range v1Controllers {
		if !exists(filepath.Join(root, name, "cgroup.procs")) {
			continue
		}
		var s cgroup1.Subsystem
		switch name {
		case "memory":
			s = cgroup1.NewMemory(root)
		case "cpu":
			s = cgroup1.NewCpu(root)
		case "cpuacct":
			s = cgroup1.NewCpuacct(root)
		case "cpuset":
			s = cgroup1.NewCpuset(root)
		case "pids":
			s = cgroup1.NewPids(root)
		case "devices":
			s = cgroup1.NewDevices(root)
		case "freezer":
			s = cgroup1.NewFreezer(root)
		case "blkio":
			s = cgroup1.NewBlkio(root)
		case "net_cls":
			s = cgroup1.NewNetCls(root)
		case "net_prio":
			s = cgroup1.NewNetPrio(root)
		case "perf_event":
			s = cgroup1.NewPerfEvent(root)
		case "rdma":
			s = cgroup1.NewRdma(root)
		case "hugetlb":
			h, err := cgroup1.NewHugetlb(root)
			if err != nil {
				continue // no huge page sizes: nothing to account
			}
			s = h
		default:
			continue
		}
		subs[name] = s
	}
	return subs
}

func hierarchyOf(subs map[string]cgroup1.Subsystem) cgroup1.InitOpts {
	list := make([]cgroup1.Subsystem, 0, len(subs))
	for _, name := range slices.Sorted(maps.Keys(subs)) {
		list = append(list, subs[name])
	}
	return cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) { return list, nil })
}

// checkLegacyControllers reports a controller r needs but the host lacks.
func checkLegacyControllers(p string, mounted func(string) bool, r Resources) error {
	need := map[string]bool{
		"memory":  r.MemoryLimit > 0,
		"cpu":     r.CPUShares > 0,
		"pids":    r.PidsMax > 0,
		"devices": r.Devices,
	}
	for _, name := range slices.Sorted(maps.Keys(need)) {
		if need[name] && !mounted(name) {
			return fmt.Errorf("cgroups: %s: the %s controller is not mounted: %w", p, name, errors.ErrUnsupported)
		}
	}
	return nil
}

func newLegacy(cfg config, p string, r Resources) (_ *Cgroup, retErr error) {
	subs := v1Hierarchy(cfg.root)
	if len(subs) == 0 {
		return nil, fmt.Errorf("cgroups: create %s: no cgroup v1 controller mounted below %s: %w", p, cfg.root, errors.ErrUnsupported)
	}
	if err := checkLegacyControllers(p, func(n string) bool { _, ok := subs[n]; return ok }, r); err != nil {
		return nil, err
	}
	c := &Cgroup{cfg: cfg, path: p, dirs: map[string]string{}}
	existed := map[string]bool{}
	for name := range subs {
		dir := filepath.Join(cfg.root, name, p)
		c.dirs[name] = dir
		existed[name] = exists(dir)
	}
	defer func() {
		if retErr == nil {
			return
		}
		deadline := time.Now().Add(deleteTimeout)
		for name, dir := range c.dirs {
			if !existed[name] {
				if err := c.removeDir(dir, deadline); err != nil {
					retErr = errors.Join(retErr, fmt.Errorf("cgroups: roll back %s (%s): %w", p, name, err))
				}
			}
		}
	}()
	// Limits are not passed to cgroup1: they are written below by the same
	// code as Update.
	if _, err := cgroup1.New(cgroup1.StaticPath(p), &specs.LinuxResources{}, hierarchyOf(subs)); err != nil {
		return nil, fmt.Errorf("cgroups: create %s: %w", p, err)
	}
	if err := c.updateLegacy(r); err != nil {
		return nil, err
	}
	return c, nil
}

func loadLegacy(cfg config, p string) (*Cgroup, error) {
	c := &Cgroup{cfg: cfg, path: p, dirs: map[string]string{}}
	for name := range v1Hierarchy(cfg.root) {
		dir := filepath.Join(cfg.root, name, p)
		if exists(dir) {
			c.dirs[name] = dir
		}
	}
	if len(c.dirs) == 0 {
		return nil, fmt.Errorf("cgroups: load %s: %w", p, ErrNotExist)
	}
	return c, nil
}

// v1Cgroup returns containerd's view of this cgroup, limited to the
// controllers it is in.
func (c *Cgroup) v1Cgroup() (cgroup1.Cgroup, error) {
	subs := v1Hierarchy(c.cfg.root)
	for name := range subs {
		if _, ok := c.dirs[name]; !ok {
			delete(subs, name)
		}
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(c.path), hierarchyOf(subs))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	return cg, err
}

func (c *Cgroup) addLegacy(pid int) error {
	cg, err := c.v1Cgroup()
	if err == nil {
		err = cg.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, c.path, err)
	}
	return nil
}

func (c *Cgroup) updateLegacy(r Resources) error {
	mounted := func(n string) bool { _, ok := c.dirs[n]; return ok }
	if err := checkLegacyControllers(c.path, mounted, r); err != nil {
		return err
	}
	var err error
	if d, ok := c.dirs["memory"]; ok {
		err = setV1Memory(d, r.MemoryLimit)
	}
	if d, ok := c.dirs["cpu"]; ok && err == nil && r.CPUShares > 0 {
		err = writeFile(filepath.Join(d, "cpu.shares"), strconv.FormatUint(r.CPUShares, 10))
	}
	if d, ok := c.dirs["pids"]; ok && err == nil {
		err = writeFile(filepath.Join(d, "pids.max"), pidsMaxValue(r.PidsMax))
	}
	if d, ok := c.dirs["devices"]; ok && err == nil {
		err = setV1Devices(d, r.Devices)
	}
	if err != nil {
		return fmt.Errorf("cgroups: update %s: %w", c.path, err)
	}
	return nil
}

func pidsMaxValue(n int64) string {
	if n == 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// setV1Memory sets memory.limit_in_bytes and, when swap is accounted,
// memory.memsw.limit_in_bytes to the same value (-1 for no limit). The
// kernel rejects a memory limit above the memsw limit, so when raising
// the limit memsw goes first, when lowering it goes second.
func setV1Memory(dir string, limit int64) error {
	val := "-1"
	if limit > 0 {
		val = strconv.FormatInt(limit, 10)
	}
	memFile := filepath.Join(dir, "memory.limit_in_bytes")
	swFile := filepath.Join(dir, "memory.memsw.limit_in_bytes")
	if !exists(swFile) {
		return writeFile(memFile, val)
	}
	cur, err := readUintFile(memFile)
	if err != nil {
		return err
	}
	order := []string{memFile, swFile}
	if limit == 0 || uint64(limit) > cur {
		order = []string{swFile, memFile}
	}
	for _, f := range order {
		if err := writeFile(f, val); err != nil {
			return err
		}
	}
	return nil
}

// setV1Devices applies or lifts the default device allowlist. It writes
// only on a change, since rewriting the list denies everything for a
// moment. Lifting applies only to our own allowlist: a list inherited from
// a restricted parent cannot be widened and is left alone.
func setV1Devices(dir string, restrict bool) error {
	list, err := readFile(filepath.Join(dir, "devices.list"))
	if err != nil {
		return err
	}
	ours := slices.Equal(sortedLines(list), sortedCopy(defaultAllowList()))
	switch {
	case restrict && !ours:
		for _, rule := range defaultDeviceRules {
			file := "devices.deny"
			if rule.allow {
				file = "devices.allow"
			}
			if err := writeFile(filepath.Join(dir, file), rule.rule); err != nil {
				return err
			}
		}
	case !restrict && ours:
		return writeFile(filepath.Join(dir, "devices.allow"), "a")
	}
	return nil
}

func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// defaultAllowList is devices.list after defaultDeviceRules.
func defaultAllowList() []string {
	var out []string
	for _, r := range defaultDeviceRules {
		if r.allow {
			out = append(out, r.rule)
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func (c *Cgroup) statsLegacy() (*Stats, error) {
	s := &Stats{}
	if d, ok := c.dirs["memory"]; ok {
		raw, err := readFlatKeyed(filepath.Join(d, "memory.stat"))
		if err != nil {
			return nil, err
		}
		s.Memory.Raw = raw
		s.Memory.MemoryCounters = v1MemoryCounters(raw, "")
		s.Memory.Total = v1MemoryCounters(raw, "total_")
		if s.Memory.Usage, err = readUintFile(filepath.Join(d, "memory.usage_in_bytes")); err != nil {
			return nil, err
		}
		if s.Memory.Limit, err = readLimitFile(filepath.Join(d, "memory.limit_in_bytes")); err != nil {
			return nil, err
		}
		if s.Memory.OOMKill, err = readOOMKill(filepath.Join(d, "memory.oom_control")); err != nil {
			return nil, err
		}
	}
	if d, ok := c.dirs["cpuacct"]; ok {
		var err error
		if s.CPU.UsageNS, err = readUintFile(filepath.Join(d, "cpuacct.usage")); err != nil {
			return nil, err
		}
		user, uerr := readUintFile(filepath.Join(d, "cpuacct.usage_user"))
		sys, serr := readUintFile(filepath.Join(d, "cpuacct.usage_sys"))
		if uerr == nil && serr == nil {
			s.CPU.UserNS, s.CPU.SystemNS = user, sys
		} else {
			m, err := readFlatKeyed(filepath.Join(d, "cpuacct.stat"))
			if err != nil {
				return nil, err
			}
			s.CPU.UserNS, s.CPU.SystemNS = v1CPUTicks(m)
		}
	}
	if d, ok := c.dirs["pids"]; ok {
		var err error
		if s.Pids.Current, err = readUintFile(filepath.Join(d, "pids.current")); err != nil {
			return nil, err
		}
		if s.Pids.Limit, err = readLimitFile(filepath.Join(d, "pids.max")); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// killLegacy freezes the cgroup (when the freezer is mounted) so that no
// process forks while the others are killed, sends SIGKILL to all, thaws
// it so the signals are delivered, and waits for it to empty.
func (c *Cgroup) killLegacy() error {
	fdir, ok := c.dirs["freezer"]
	if ok && exists(fdir) {
		state := filepath.Join(fdir, "freezer.state")
		if err := writeFile(state, "FROZEN"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// A task stuck in the kernel can keep the cgroup FREEZING; kill
		// anyway after freezeTimeout.
		_ = poll(time.Now().Add(freezeTimeout), func() (bool, error) {
			s, err := readFile(state)
			return err != nil || strings.TrimSpace(s) == "FROZEN", nil
		})
		pids, err := readProcs(fdir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errors.Join(err, thaw(state))
		}
		for _, pid := range pids {
			_ = killPid(pid)
		}
		if err := thaw(state); err != nil {
			return err
		}
	}
	return killUntilEmpty(c.procsDir())
}

func thaw(stateFile string) error {
	if err := writeFile(stateFile, "THAWED"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// watchOOMLegacy registers an eventfd for the cgroup's OOM notifications
// through cgroup.event_control.
func (c *Cgroup) watchOOMLegacy() (_ *OOMWatcher, retErr error) {
	dir, ok := c.dirs["memory"]
	if !ok {
		return nil, fmt.Errorf("memory controller not mounted: %w", errors.ErrUnsupported)
	}
	control := filepath.Join(dir, "memory.oom_control")
	last, err := readOOMKill(control)
	if err != nil {
		return nil, err
	}
	efile, efd, err := newEventfd()
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			efile.Close()
		}
	}()
	if err := registerOOMEvent(dir, control, efd); err != nil {
		return nil, err
	}
	buf := make([]byte, 8)
	src := oomSource{
		file:   efile,
		settle: v1OOMSettle,
		wait: func() (bool, error) {
			_, err := efile.Read(buf)
			return false, err
		},
		check: func() (uint64, bool, error) {
			m, err := readFlatKeyed(control)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV) {
				return 0, false, errGone
			}
			if err != nil {
				return 0, false, err
			}
			n, ok := m["oom_kill"]
			if !ok {
				return 0, false, fmt.Errorf("%s: no oom_kill counter", control)
			}
			return n, m["under_oom"] == 1, nil
		},
	}
	return startOOMWatcher(src, last), nil
}

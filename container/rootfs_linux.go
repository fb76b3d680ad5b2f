package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/capability"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

type device struct {
	name         string
	major, minor uint32
}

var devices = []device{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}

func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &os.PathError{Op: "mount " + fstype + " " + source, Path: target, Err: err}
	}
	return nil
}

// setupRootfs runs in the agent, in its new mount namespace: it mounts the
// overlay, bind mounts, /proc, /sys and /dev, masks paths, sets the host
// name and pivots into the new root.
func setupRootfs(cfg *agentConfig) error {
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	root := cfg.Rootfs
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", cfg.Lower, cfg.Upper, cfg.Work)
	if err := mount("overlay", root, "overlay", 0, opts); err != nil {
		return err
	}
	for i, m := range cfg.BindMounts {
		if err := bindMount(root, m); err != nil {
			return fmt.Errorf("bind mount %d (%s): %w", i, m.DstPath, err)
		}
	}
	if err := mountSpecial(root); err != nil {
		return err
	}
	if err := maskPaths(root, cfg.MaskedPaths, cfg.ReadonlyPaths); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return os.NewSyscallError("sethostname", err)
	}
	if err := writeEtc(root, cfg); err != nil {
		return err
	}
	st := cfg.HookState
	st.Point, st.Rootfs = HookChildBeforePivot, root
	if err := runHooks(context.Background(), cfg.ChildBeforePivot, st, os.Stderr); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	return pivotRoot(root)
}

// mountDisk mounts the container's own file system (the image quota
// backend) in the agent's mount namespace and moves the overlay's upper
// and work directories onto it. It returns the file system's root, which
// the agent keeps open for the Manager.
func mountDisk(cfg *agentConfig) (*os.File, error) {
	if err := os.Mkdir(cfg.DiskMount, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	if err := mount(cfg.DiskDevice, cfg.DiskMount, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return nil, err
	}
	cfg.Upper, cfg.Work = filepath.Join(cfg.DiskMount, "upper"), filepath.Join(cfg.DiskMount, "work")
	for _, d := range []string{cfg.Upper, cfg.Work} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	os.Remove(filepath.Join(cfg.DiskMount, "lost+found"))
	return os.Open(cfg.DiskMount)
}

// writeEtc writes the container's /etc/hostname, and its resolv.conf and
// hosts when networking gave them (through the root, so that a link in
// the stack cannot lead out).
func writeEtc(root string, cfg *agentConfig) error {
	files := map[string]string{"/etc/hostname": cfg.Hostname + "\n", "/etc/resolv.conf": cfg.ResolvConf, "/etc/hosts": cfg.Hosts}
	for name, content := range files {
		if content == "" {
			continue
		}
		p, err := securejoin.SecureJoin(root, name)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p) // a link is replaced, not followed
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp brings up lo in the agent's new network namespace.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

func bindMount(root string, m BindMount) error {
	fi, err := os.Stat(m.SrcPath)
	if err != nil {
		return err
	}
	dst, err := securejoin.SecureJoin(root, m.DstPath)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err != nil {
		return err
	}
	if err := mount(m.SrcPath, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if m.ReadOnly {
		return mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, "")
	}
	return nil
}

func mountSpecial(root string) error {
	j := func(p string) string { return filepath.Join(root, p) }
	for _, d := range []string{"proc", "sys", "dev"} {
		if err := os.MkdirAll(j(d), 0o755); err != nil {
			return err
		}
	}
	if err := mount("proc", j("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := mount("sysfs", j("sys"), "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	if err := mount("tmpfs", j("dev"), "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	for _, d := range devices {
		p := j("dev/" + d.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return &os.PathError{Op: "mknod", Path: p, Err: err}
		}
		if err := os.Chmod(p, 0o666); err != nil { // mknod is subject to umask
			return err
		}
	}
	for _, d := range []string{"pts", "shm", "mqueue"} {
		if err := os.Mkdir(j("dev/"+d), 0o755); err != nil {
			return err
		}
	}
	if err := mount("devpts", j("dev/pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	if err := mount("shm", j("dev/shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return err
	}
	if err := mount("mqueue", j("dev/mqueue"), "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	links := [][2]string{{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}}
	for _, l := range links {
		if err := os.Symlink(l[0], j("dev/"+l[1])); err != nil {
			return err
		}
	}
	return nil
}

// maskPaths hides masked (files get /dev/null bound over them,
// directories an empty read-only tmpfs) and binds readonly read-only over
// themselves.
func maskPaths(root string, masked, readonly []string) error {
	null := filepath.Join(root, "dev/null")
	// Masking binds this node: make sure it is the null device.
	var st unix.Stat_t
	if err := unix.Lstat(null, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		return fmt.Errorf("%s is not the null device", null)
	}
	for _, p := range masked {
		target := filepath.Join(root, p)
		fi, err := os.Stat(target)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.IsDir() {
			err = mount("tmpfs", target, "tmpfs", unix.MS_RDONLY, "size=0")
		} else {
			err = mount(null, target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return err
		}
	}
	for _, p := range readonly {
		target := filepath.Join(root, p)
		if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if err := mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return err
		}
	}
	return nil
}

// pivotRoot makes root the root of the mount namespace and detaches the
// old one, with the pivot_root(".", ".") idiom that needs no directory
// for the old root.
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return &os.PathError{Op: "chdir", Path: root, Err: err}
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.PathError{Op: "pivot_root", Path: root, Err: err}
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return os.NewSyscallError("mount(old root, MS_SLAVE)", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return os.NewSyscallError("umount(old root)", err)
	}
	return unix.Chdir("/")
}

// dropBoundingSet leaves the calling thread's bounding set at keep and
// clears its inheritable and ambient sets, keeping its effective set. Capabilities are per thread: the agent
// calls it on the locked thread that forks every container process, so
// root processes get exactly the bounding set and processes of other users
// get no capability, while the agent's other threads keep what they need.
func dropBoundingSet(caps []int) error {
	keep := map[capability.Cap]bool{}
	for _, c := range caps {
		keep[capability.Cap(c)] = true
	}
	last, err := capability.LastCap()
	if err != nil {
		return err
	}
	for c := capability.Cap(0); c <= last; c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return os.NewSyscallError(fmt.Sprintf("prctl(PR_CAPBSET_DROP, %s)", c), err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capget", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capset", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return os.NewSyscallError("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", err)
	}
	return nil
}

var rlimitResources = []struct {
	res int
	get func(*RLimits) **uint64
}{
	{unix.RLIMIT_AS, func(l *RLimits) **uint64 { return &l.AS }},
	{unix.RLIMIT_CORE, func(l *RLimits) **uint64 { return &l.Core }},
	{unix.RLIMIT_CPU, func(l *RLimits) **uint64 { return &l.CPU }},
	{unix.RLIMIT_DATA, func(l *RLimits) **uint64 { return &l.Data }},
	{unix.RLIMIT_FSIZE, func(l *RLimits) **uint64 { return &l.Fsize }},
	{unix.RLIMIT_LOCKS, func(l *RLimits) **uint64 { return &l.Locks }},
	{unix.RLIMIT_MEMLOCK, func(l *RLimits) **uint64 { return &l.Memlock }},
	{unix.RLIMIT_MSGQUEUE, func(l *RLimits) **uint64 { return &l.Msgqueue }},
	{unix.RLIMIT_NICE, func(l *RLimits) **uint64 { return &l.Nice }},
	{unix.RLIMIT_NOFILE, func(l *RLimits) **uint64 { return &l.Nofile }},
	{unix.RLIMIT_NPROC, func(l *RLimits) **uint64 { return &l.Nproc }},
	{unix.RLIMIT_RSS, func(l *RLimits) **uint64 { return &l.RSS }},
	{unix.RLIMIT_RTPRIO, func(l *RLimits) **uint64 { return &l.Rtprio }},
	{unix.RLIMIT_SIGPENDING, func(l *RLimits) **uint64 { return &l.Sigpending }},
	{unix.RLIMIT_STACK, func(l *RLimits) **uint64 { return &l.Stack }},
}

// applyRLimits sets the agent's own soft and hard limits, which every
// process it starts inherits. A limit above the current hard limit is
// lowered to it: raising a hard limit needs CAP_SYS_RESOURCE, which root
// lacks on some hosts.
func applyRLimits(l RLimits) error {
	for _, r := range rlimitResources {
		v := *r.get(&l)
		if v == nil {
			continue
		}
		var old syscall.Rlimit
		if err := syscall.Getrlimit(r.res, &old); err != nil {
			return os.NewSyscallError("getrlimit", err)
		}
		lim := min(*v, old.Max)
		if err := syscall.Setrlimit(r.res, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
			return os.NewSyscallError("setrlimit", err)
		}
	}
	return nil
}

// overrideRLimits sets the soft limits of l on the agent for the next fork
// and returns a function that restores them. Only soft limits change: the
// agent could not raise a hard limit back without CAP_SYS_RESOURCE. A
// value above the hard limit is refused.
func overrideRLimits(l RLimits) (restore func(), err error) {
	var saved []func()
	restore = func() {
		for _, f := range saved {
			f()
		}
	}
	for _, r := range rlimitResources {
		v := *r.get(&l)
		if v == nil {
			continue
		}
		var old syscall.Rlimit
		if err := syscall.Getrlimit(r.res, &old); err != nil {
			restore()
			return nil, os.NewSyscallError("getrlimit", err)
		}
		if *v > old.Max {
			restore()
			return nil, fmt.Errorf("%w: rlimit %s = %d is above the container's hard limit %d", ErrInvalidSpec, rlimitNames[r.res], *v, old.Max)
		}
		if err := syscall.Setrlimit(r.res, &syscall.Rlimit{Cur: *v, Max: old.Max}); err != nil {
			restore()
			return nil, os.NewSyscallError("setrlimit", err)
		}
		res := r.res
		saved = append(saved, func() { syscall.Setrlimit(res, &old) })
	}
	return restore, nil
}

var rlimitNames = map[int]string{
	unix.RLIMIT_AS: "as", unix.RLIMIT_CORE: "core", unix.RLIMIT_CPU: "cpu", unix.RLIMIT_DATA: "data",
	unix.RLIMIT_FSIZE: "fsize", unix.RLIMIT_LOCKS: "locks", unix.RLIMIT_MEMLOCK: "memlock",
	unix.RLIMIT_MSGQUEUE: "msgqueue", unix.RLIMIT_NICE: "nice", unix.RLIMIT_NOFILE: "nofile",
	unix.RLIMIT_NPROC: "nproc", unix.RLIMIT_RSS: "rss", unix.RLIMIT_RTPRIO: "rtprio",
	unix.RLIMIT_SIGPENDING: "sigpending", unix.RLIMIT_STACK: "stack",
}

package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// quotaMgr knows which backend enforces limits on this host.
type quotaMgr struct {
	backend QuotaBackend
	// reasons says why the backends before the chosen one were not.
	reasons []string
	device  string // kernel: the block device holding the depot
}

// probeQuota picks the quota backend: want, or the first that works.
func probeQuota(depot string, want QuotaBackend) (*quotaMgr, error) {
	q := &quotaMgr{}
	try := []QuotaBackend{QuotaKernel, QuotaImage, QuotaScanner}
	if want != QuotaAuto {
		try = []QuotaBackend{want}
	}
	for _, b := range try {
		var err error
		switch b {
		case QuotaKernel:
			q.device, err = probeKernelQuota(depot)
		case QuotaImage:
			err = probeImageQuota()
		case QuotaScanner:
		default:
			return nil, fmt.Errorf("container: unknown quota backend %q: %w", b, ErrInvalidSpec)
		}
		if err == nil {
			q.backend = b
			return q, nil
		}
		q.reasons = append(q.reasons, fmt.Sprintf("%s: %v", b, err))
	}
	return nil, fmt.Errorf("container: quota backend %s: %s: %w", want, strings.Join(q.reasons, "; "), errors.ErrUnsupported)
}

// mountSource returns the device of the mount that holds path.
func mountSource(path string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	best, src := "", ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		pre, post, ok := strings.Cut(s.Text(), " - ")
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if !ok || len(pf) < 5 || len(qf) < 2 {
			continue
		}
		mp := pf[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, src = mp, qf[1]
		}
	}
	if src == "" || !strings.HasPrefix(src, "/dev/") {
		return "", fmt.Errorf("%s is on no block device (mounted from %q)", path, src)
	}
	return src, nil
}

func quotactl(cmd uint32, dev string, id uint32, addr []byte) error {
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return err
	}
	var ap unsafe.Pointer
	if len(addr) > 0 {
		ap = unsafe.Pointer(&addr[0])
	}
	_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL, uintptr(cmd), uintptr(unsafe.Pointer(p)), uintptr(id), uintptr(ap), 0, 0)
	if errno != 0 {
		return os.NewSyscallError("quotactl", errno)
	}
	return nil
}

// probeKernelQuota asks for project 0's quota on the depot's device: it
// fails where the kernel or the file system has no project quota.
func probeKernelQuota(depot string) (string, error) {
	dev, err := mountSource(depot)
	if err != nil {
		return "", err
	}
	buf := make([]byte, dqblkSize)
	if err := quotactl(qcmd(qGetQuota, prjQuota), dev, 0, buf); err != nil {
		return "", fmt.Errorf("quotactl(Q_GETQUOTA, PRJQUOTA) on %s: %w", dev, err)
	}
	return dev, nil
}

func probeImageQuota() error {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		return fmt.Errorf("no mkfs.ext4 (e2fsprogs): %w", err)
	}
	f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("loop devices: %w", err)
	}
	return f.Close()
}

// openQuota sets up the Manager's quota backend.
func (m *Manager) openQuota() error {
	q, err := probeQuota(m.depot, m.opts.quota)
	if err != nil {
		return err
	}
	m.quota = q
	return nil
}

// QuotaBackend returns the backend that enforces disk limits, and why the
// ones tried before it were not taken (each "backend: reason").
func (m *Manager) QuotaBackend() (QuotaBackend, []string) {
	return m.quota.backend, m.quota.reasons
}

// diskPrepare makes a container's limited writable layer before its agent
// starts: a project-quota'd upper directory, or an image on a loop
// device. It returns the loop device's file (to be closed once the agent
// has mounted it) for the image backend.
func (c *Container) diskPrepare() (*os.File, error) {
	l := c.state.Spec.Limits
	if l.DiskBytes == 0 && l.DiskInodes == 0 {
		return nil, nil
	}
	q := c.m.quota
	d := &diskState{Backend: q.backend, LimitBytes: uint64(l.DiskBytes), LimitInodes: uint64(l.DiskInodes)}
	c.state.Disk = d
	switch q.backend {
	case QuotaKernel:
		d.ProjectID = projectID(c.m.depot, c.handle)
		return nil, q.setProject(c.dir, d)
	case QuotaImage:
		return makeImage(filepath.Join(c.dir, "disk.img"), d)
	default:
		return nil, fmt.Errorf("%w: the %s quota backend cannot enforce a disk limit (%s)", ErrInvalidSpec, q.backend, strings.Join(q.reasons, "; "))
	}
}

// setProject tags the container's upper and work directories with its
// project id (inherited by what is created below them) and sets the
// project's limits.
func (q *quotaMgr) setProject(dir string, d *diskState) error {
	for _, sub := range []string{"upper", "work"} {
		f, err := os.Open(filepath.Join(dir, sub))
		if err != nil {
			return err
		}
		buf := make([]byte, fsxattrSize)
		err = ioctlPtr(f, fsIOCFSGetXAttr, buf)
		if err == nil {
			x := decodeFsxattr(buf)
			x.ProjID, x.XFlags = d.ProjectID, x.XFlags|fsXFlagProjInherit
			err = ioctlPtr(f, fsIOCFSSetXAttr, x.encode())
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("project id on %s: %w", sub, err)
		}
	}
	return quotactl(qcmd(qSetQuota, prjQuota), q.device, d.ProjectID, (&dqblk{}).withLimits(d.LimitBytes, d.LimitInodes))
}

func (d *dqblk) withLimits(bytes, inodes uint64) []byte {
	l := limitDqblk(bytes, inodes)
	return l.encode()
}

// FS_IOC_FSGETXATTR and FS_IOC_FSSETXATTR: _IOR/_IOW('X', 31/32, struct
// fsxattr).
const (
	fsIOCFSGetXAttr = 0x801c581f
	fsIOCFSSetXAttr = 0x401c5820
)

func ioctlPtr(f *os.File, req uint, buf []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return os.NewSyscallError("ioctl", errno)
	}
	return nil
}

// makeImage makes a sparse ext4 image of LimitBytes (no journal, no
// reserved blocks, LimitInodes inodes when set) and attaches it to a free
// loop device that detaches itself once nothing holds it.
func makeImage(path string, d *diskState) (*os.File, error) {
	if d.LimitBytes == 0 {
		return nil, fmt.Errorf("%w: the image quota backend needs a byte limit", ErrInvalidSpec)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64(d.LimitBytes)); err != nil {
		return nil, err
	}
	args := []string{"-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "nodiscard,lazy_itable_init=1", "-T", "default"}
	if d.LimitInodes > 0 {
		args = append(args, "-N", strconv.FormatUint(d.LimitInodes, 10))
	}
	if out, err := exec.Command("mkfs.ext4", append(args, path)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mkfs.ext4: %w: %s", err, strings.TrimSpace(string(out)))
	}
	loop, err := attachLoop(f)
	if err != nil {
		return nil, err
	}
	d.Loop = loop.Name()
	return loop, nil
}

// attachLoop attaches f to a free loop device with autoclear, retrying
// when another process takes the device first.
func attachLoop(f *os.File) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	for range 32 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, os.NewSyscallError("ioctl(LOOP_CTL_GET_FREE)", err)
		}
		loop, err := os.OpenFile("/dev/loop"+strconv.Itoa(n), os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		if err == nil {
			return loop, nil
		}
		loop.Close()
		if !errors.Is(err, unix.EBUSY) {
			return nil, os.NewSyscallError("ioctl(LOOP_CONFIGURE)", err)
		}
	}
	return nil, errors.New("no free loop device after 32 tries")
}

// diskUsage measures the container's writable layer.
func (c *Container) diskUsage(ctx context.Context) (DiskUsage, error) {
	c.mu.Lock()
	d, pid := c.state.Disk, c.state.AgentPID
	c.mu.Unlock()
	if d == nil {
		u, err := scanUsage(ctx, filepath.Join(c.dir, "upper"))
		u.Backend = QuotaScanner
		return u, err
	}
	u := DiskUsage{Backend: d.Backend, LimitBytes: d.LimitBytes, LimitInodes: d.LimitInodes}
	switch d.Backend {
	case QuotaKernel:
		buf := make([]byte, dqblkSize)
		if err := quotactl(qcmd(qGetQuota, prjQuota), c.m.quota.device, d.ProjectID, buf); err != nil {
			return u, fmt.Errorf("container %q: disk usage: %w", c.handle, err)
		}
		q, err := decodeDqblk(buf)
		if err != nil {
			return u, err
		}
		u.Bytes, u.Inodes = q.CurSpace, q.CurInodes
	case QuotaImage:
		var st unix.Statfs_t
		if err := unix.Statfs(fmt.Sprintf("/proc/%d/fd/%d", pid, d.AgentFD), &st); err != nil {
			return u, fmt.Errorf("container %q: disk usage: %w", c.handle, os.NewSyscallError("statfs", err))
		}
		used := (st.Blocks - st.Bfree) * uint64(st.Bsize)
		u.Bytes, u.Inodes = used-min(used, d.BaseBytes), (st.Files-st.Ffree)-min(st.Files-st.Ffree, d.BaseInodes)
	}
	return u, nil
}

// imageBaseline records what the empty image file system uses, once the
// agent has mounted it.
func (c *Container) imageBaseline() error {
	d := c.state.Disk
	if d == nil || d.Backend != QuotaImage {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(fmt.Sprintf("/proc/%d/fd/%d", c.state.AgentPID, d.AgentFD), &st); err != nil {
		return os.NewSyscallError("statfs", err)
	}
	d.BaseBytes = (st.Blocks - st.Bfree) * uint64(st.Bsize)
	d.BaseInodes = st.Files - st.Ffree
	return nil
}

// scanUsage walks dir and adds up the space of its files (allocated
// blocks, each hard-linked file once) and its inodes.
func scanUsage(ctx context.Context, dir string) (DiskUsage, error) {
	var u DiskUsage
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || seen[st.Ino] {
			return nil
		}
		if st.Nlink > 1 {
			seen[st.Ino] = true
		}
		u.Inodes++
		u.Bytes += uint64(st.Blocks) * 512
		return nil
	})
	return u, err
}

// SetDiskLimit changes the container's disk limit (warden's limit_disk).
// With the kernel backend any change works, also adding a limit to a
// container created without one. With the image backend the byte limit
// may only grow (the file system is resized online, which the kernel
// allows only to a process with CAP_SYS_RESOURCE: without it the error
// says so and the limit stays) and the inode limit is fixed at create;
// other changes return a *SpecError, as does any limit with the scanner
// backend, which cannot enforce one.
func (c *Container) SetDiskLimit(ctx context.Context, bytes, inodes uint64) error {
	if err := c.check(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.state.Disk
	q := c.m.quota
	switch {
	case d == nil && q.backend == QuotaKernel:
		d = &diskState{Backend: QuotaKernel, ProjectID: projectID(c.m.depot, c.handle)}
		d.LimitBytes, d.LimitInodes = bytes, inodes
		if err := q.setProject(c.dir, d); err != nil {
			return fmt.Errorf("container %q: disk limit: %w", c.handle, err)
		}
	case d == nil:
		return specErr("disk limit", "the %s quota backend sets disk limits at create only", q.backend)
	case d.Backend == QuotaKernel:
		if err := quotactl(qcmd(qSetQuota, prjQuota), q.device, d.ProjectID, (&dqblk{}).withLimits(bytes, inodes)); err != nil {
			return fmt.Errorf("container %q: disk limit: %w", c.handle, err)
		}
		d.LimitBytes, d.LimitInodes = bytes, inodes
	case d.Backend == QuotaImage:
		if inodes != d.LimitInodes {
			return specErr("inodes", "the image backend fixes the inode limit (%d) at create", d.LimitInodes)
		}
		if bytes < d.LimitBytes {
			return specErr("bytes", "the image backend cannot shrink a disk limit (%d to %d)", d.LimitBytes, bytes)
		}
		if bytes > d.LimitBytes {
			if err := c.growImage(d, bytes); err != nil {
				return fmt.Errorf("container %q: disk limit: %w", c.handle, err)
			}
		}
	}
	c.state.Disk = d
	c.state.Spec.Limits.DiskBytes, c.state.Spec.Limits.DiskInodes = int64(d.LimitBytes), int64(d.LimitInodes)
	return c.saveState()
}

// growImage enlarges the image file, tells the loop device and resizes
// the mounted file system through the agent's descriptor of its root.
func (c *Container) growImage(d *diskState, bytes uint64) error {
	img, err := os.OpenFile(filepath.Join(c.dir, "disk.img"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer img.Close()
	if err := img.Truncate(int64(bytes)); err != nil {
		return err
	}
	loop, err := os.OpenFile(d.Loop, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer loop.Close()
	if _, err := unix.IoctlRetInt(int(loop.Fd()), unix.LOOP_SET_CAPACITY); err != nil {
		return os.NewSyscallError("ioctl(LOOP_SET_CAPACITY)", err)
	}
	root, err := os.Open(fmt.Sprintf("/proc/%d/fd/%d", c.state.AgentPID, d.AgentFD))
	if err != nil {
		return err
	}
	defer root.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(root.Fd()), &st); err != nil {
		return os.NewSyscallError("fstatfs", err)
	}
	blocks := bytes / uint64(st.Bsize)
	const ext4IOCResizeFS = 0x40086610 // _IOW('f', 16, __u64)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, root.Fd(), ext4IOCResizeFS, uintptr(unsafe.Pointer(&blocks))); errno != 0 {
		// Put the image back: the file system did not grow.
		img.Truncate(int64(d.LimitBytes))
		unix.IoctlRetInt(int(loop.Fd()), unix.LOOP_SET_CAPACITY)
		if errno == unix.EPERM {
			return fmt.Errorf("growing a file system online needs CAP_SYS_RESOURCE, which this process lacks: %w", os.NewSyscallError("ioctl(EXT4_IOC_RESIZE_FS)", errno))
		}
		return os.NewSyscallError("ioctl(EXT4_IOC_RESIZE_FS)", errno)
	}
	d.LimitBytes = bytes
	return nil
}

// QuotaReport lists, for every container of the Manager, its disk use
// and limits (warden's repquota), sorted by handle. The image and kernel
// backends cost one system call per container; containers measured by
// the scanner cost a walk of their writable layer.
func (m *Manager) QuotaReport(ctx context.Context) ([]QuotaEntry, error) {
	cs, err := m.List(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make([]QuotaEntry, len(cs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u, err := c.diskUsage(ctx)
			out[i] = QuotaEntry{Handle: c.Handle(), DiskUsage: u, Err: err}
		}()
	}
	wg.Wait()
	return out, nil
}

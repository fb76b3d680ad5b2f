package archive

import (
	"archive/tar"
	"io/fs"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openNonblock is added to the flags of the regular files Extract
// creates: O_NONBLOCK has no effect on regular files, and tells os.File
// that the descriptor need not be switched to non-blocking mode and back.
const openNonblock = unix.O_NONBLOCK

// futimes sets the access and modification times of the open file f
// (futimens(2): utimensat on the descriptor itself, with no path).
func futimes(f *os.File, atime, mtime time.Time) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	ts := [2]unix.Timespec{timespec(atime), timespec(mtime)}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return &fs.PathError{Op: "futimens", Path: f.Name(), Err: errno}
	}
	return nil
}

// mknodAt creates a device node or FIFO named base in the directory d.
// mknodat does not follow a symbolic link at base, and d is a handle
// inside the destination, so the node cannot land outside it.
func mknodAt(d *os.Root, base string, hdr *tar.Header, perm fs.FileMode) error {
	var mode uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode = unix.S_IFCHR
	case tar.TypeBlock:
		mode = unix.S_IFBLK
	default:
		mode = unix.S_IFIFO
	}
	f, err := d.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknodat(int(f.Fd()), base, mode|uint32(perm.Perm()), int(dev)); err != nil {
		return &fs.PathError{Op: "mknodat", Path: base, Err: err}
	}
	return nil
}

// timespec converts t for utimensat; the zero time leaves the file's
// time unchanged, as in os.Chtimes.
func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// lutimesAt sets the times of the symbolic link base in d without
// following it.
func lutimesAt(d *os.Root, base string, atime, mtime time.Time) error {
	f, err := d.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(int(f.Fd()), base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: base, Err: err}
	}
	return nil
}

// statInfo is what Create needs from a file's stat beyond fs.FileInfo.
type statInfo struct {
	uid, gid       int
	key            fileKey // device and inode, for hard-link detection
	nlink          uint64
	major, minor   int64
	haveOwnerAndID bool
}

// fileKey identifies an inode.
type fileKey struct{ dev, ino uint64 }

func statOf(fi fs.FileInfo) statInfo {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statInfo{}
	}
	// The conversions are needed: Stat_t's field types vary by GOARCH.
	return statInfo{
		uid:            int(st.Uid),
		gid:            int(st.Gid),
		key:            fileKey{dev: uint64(st.Dev), ino: uint64(st.Ino)},
		nlink:          uint64(st.Nlink),
		major:          int64(unix.Major(uint64(st.Rdev))),
		minor:          int64(unix.Minor(uint64(st.Rdev))),
		haveOwnerAndID: true,
	}
}

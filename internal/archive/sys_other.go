//go:build !linux

package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// openNonblock is 0 off Linux: see sys_linux.go.
const openNonblock = 0

// futimes is not implemented off Linux; the caller sets the times by name.
func futimes(*os.File, time.Time, time.Time) error { return errors.ErrUnsupported }

// mknodAt is not implemented off Linux.
func mknodAt(_ *os.Root, base string, _ *tar.Header, _ fs.FileMode) error {
	return &fs.PathError{Op: "mknodat", Path: base, Err: fmt.Errorf("archive: device nodes: %w", errors.ErrUnsupported)}
}

// lutimesAt does nothing off Linux: symbolic links keep their times.
func lutimesAt(_ *os.Root, _ string, _, _ time.Time) error { return nil }

// statInfo is what Create needs from a file's stat beyond fs.FileInfo.
// Off Linux it stays empty: no owners, no hard-link detection.
type statInfo struct {
	uid, gid       int
	key            fileKey
	nlink          uint64
	major, minor   int64
	haveOwnerAndID bool
}

// fileKey identifies an inode.
type fileKey struct{ dev, ino uint64 }

func statOf(fs.FileInfo) statInfo { return statInfo{} }

package instance

import (
	"os"

	"golang.org/x/sys/unix"
)

// diskUsage reads the block and inode usage of the file system of path.
func diskUsage(path string) (DiskUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return DiskUsage{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	var u DiskUsage
	if st.Blocks > 0 {
		u.BlockRatio = 1 - float64(st.Bavail)/float64(st.Blocks)
	}
	if st.Files > 0 {
		u.InodeRatio = 1 - float64(st.Ffree)/float64(st.Files)
	}
	return u, nil
}

package server

import (
	"fmt"
	"os"

	"github.com/paaskit/paaskit/container/server/wire"
	"golang.org/x/sys/unix"
)

// hostCapacity measures the host: its memory and the file system of the
// depot.
func hostCapacity(depot string) (wire.Capacity, error) {
	var c wire.Capacity
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return c, fmt.Errorf("server: capacity: %w", err)
	}
	defer f.Close()
	if c.MemoryBytes, err = parseMemTotal(f); err != nil {
		return c, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(depot, &st); err != nil {
		return c, fmt.Errorf("server: capacity: %w", &os.PathError{Op: "statfs", Path: depot, Err: err})
	}
	c.DiskBytes = st.Blocks * uint64(st.Bsize)
	c.DiskFreeBytes = st.Bavail * uint64(st.Bsize)
	return c, nil
}

package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

func (c *Cgroup) watchOOM() (*OOMWatcher, error) {
	var (
		w   *OOMWatcher
		err error
	)
	if c.cfg.mode == Legacy {
		w, err = c.watchOOMLegacy()
	} else {
		w, err = c.watchOOMUnified()
	}
	if err != nil {
		return nil, fmt.Errorf("cgroups: watch oom of %s: %w", c.path, err)
	}
	return w, nil
}

// newEventfd returns a non-blocking eventfd as an *os.File, so that reads
// park in the Go poller and Close wakes them, and its descriptor number
// (do not call Fd on the file: it would make the descriptor blocking).
func newEventfd() (*os.File, int, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, 0, os.NewSyscallError("eventfd", err)
	}
	return os.NewFile(uintptr(efd), "eventfd"), efd, nil
}

// registerOOMEvent asks the v1 memory controller to signal efd on OOM in
// the cgroup of dir, by writing "<eventfd> <fd of memory.oom_control>" to
// cgroup.event_control. The kernel takes its own references: the
// memory.oom_control descriptor is closed again, and the registration
// ends when the eventfd is closed.
func registerOOMEvent(dir, control string, efd int) error {
	cfd, err := unix.Open(control, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: control, Err: err}
	}
	defer unix.Close(cfd)
	return writeFile(filepath.Join(dir, "cgroup.event_control"), strconv.Itoa(efd)+" "+strconv.Itoa(cfd))
}

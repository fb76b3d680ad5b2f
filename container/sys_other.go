//go:build !linux

package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

var errUnsupported = fmt.Errorf("container: containers need Linux: %w", errors.ErrUnsupported)

// Init must be called first thing in main (and in TestMain) of every
// program that uses a Manager. On this platform it does nothing and
// returns false.
func Init() bool { return false }

func supported() error { return errUnsupported }

func (c *Container) start(ctx context.Context) error { return errUnsupported }

func dialUnix(ctx context.Context, d *net.Dialer, path string) (net.Conn, error) {
	return d.DialContext(ctx, "unix", path)
}

func procStartTime(pid int) (uint64, error) { return 0, errUnsupported }

func killPid(pid int) {}

func waitGone(pid int, startTime uint64, timeout time.Duration) error { return errUnsupported }

type reaper struct{ mu sync.Mutex }

func newReaper() *reaper { return &reaper{} }

func (r *reaper) close() {}

func follow(ctx context.Context, dir string, pio ProcessIO) (ExitStatus, error) {
	return ExitStatus{}, errUnsupported
}

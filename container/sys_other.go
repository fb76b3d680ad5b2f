//go:build !linux

package container

import (
	"context"
	"errors"
	"fmt"
	"io"
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

func killAgent(pid int, startTime uint64) {}

func waitGone(pid int, startTime uint64, timeout time.Duration) error { return errUnsupported }

type reaper struct{ mu sync.Mutex }

func newReaper() *reaper { return &reaper{} }

func (r *reaper) close() {}

func (m *Manager) follow(ctx context.Context, dir string, pio ProcessIO) (ExitStatus, error) {
	return ExitStatus{}, errUnsupported
}

type dirWatcher struct{}

func newDirWatcher() (*dirWatcher, error) { return nil, errUnsupported }

func (w *dirWatcher) close() {}

type netMgr struct{ ipam *ipam }

func (m *Manager) openNetwork() error {
	if m.opts.network != nil {
		return errUnsupported
	}
	return nil
}
func (c *Container) netPrepare() error { return nil }
func (c *Container) netAttach() error  { return nil }
func (c *Container) netRelease() error { return nil }
func (m *Manager) netReconcile() error { return nil }
func (m *Manager) closeNetwork() error { return nil }

// NetIn forwards a host port to the container; it needs Linux.
func (c *Container) NetIn(ctx context.Context, hostPort, containerPort uint16) (PortMapping, error) {
	return PortMapping{}, errUnsupported
}

// NetOut allows the container to reach a network; it needs Linux.
func (c *Container) NetOut(ctx context.Context, rule NetOutRule) error { return errUnsupported }

// LimitBandwidth shapes the container's traffic; it needs Linux.
func (c *Container) LimitBandwidth(ctx context.Context, bw Bandwidth) error { return errUnsupported }

type spares struct{}

func newSpares(ctx context.Context, r *reaper, _ any) *spares { return &spares{} }

func (m *Manager) newSpareCgroup() any { return nil }

func (m *Manager) removeSpareCgroups() error { return nil }

func (s *spares) close() {}

type quotaMgr struct{ backend QuotaBackend }

func (m *Manager) openQuota() error {
	m.quota = &quotaMgr{backend: QuotaScanner}
	return nil
}

// QuotaBackend returns the backend that enforces disk limits; on this
// platform, none.
func (m *Manager) QuotaBackend() (QuotaBackend, []string) { return QuotaScanner, nil }

func (c *Container) diskUsage(ctx context.Context) (DiskUsage, error) {
	return DiskUsage{}, errUnsupported
}

// SetDiskLimit changes the container's disk limit; it needs Linux.
func (c *Container) SetDiskLimit(ctx context.Context, bytes, inodes uint64) error {
	return errUnsupported
}

// QuotaReport lists the disk use of every container; it needs Linux.
func (m *Manager) QuotaReport(ctx context.Context) ([]QuotaEntry, error) { return nil, errUnsupported }

// StreamIn extracts a tar stream into the container; it needs Linux.
func (c *Container) StreamIn(ctx context.Context, dstPath, owner string, r io.Reader) error {
	return errUnsupported
}

// StreamOut returns a path of the container as a tar stream; it needs
// Linux.
func (c *Container) StreamOut(ctx context.Context, srcPath string) (io.ReadCloser, error) {
	return nil, errUnsupported
}

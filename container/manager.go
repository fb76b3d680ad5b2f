package container

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/paaskit/paaskit/container/internal/cgroups"
)

// Manager creates and finds the containers of one depot directory. It is
// safe for concurrent use. Containers outlive the Manager: Close releases
// only the Manager's own resources, and a Manager opened later on the same
// depot (by this or another process) finds them again.
//
// The depot holds, per container, a directory with its state file, the
// overlay's upper and work directories, the agent's socket and, per
// process, its output and exit status.
type Manager struct {
	depot string
	opts  options
	log   *slog.Logger
	ctx   context.Context // cancelled by Close; owns the followers
	stop  context.CancelFunc

	events  *dispatcher
	reaper  *reaper
	watcher *dirWatcher // wakes process followers
	spares  *spares     // agents started ahead of need
	net     *netMgr     // nil without WithNetwork
	quota   *quotaMgr   // the disk quota backend

	mu         sync.Mutex
	containers map[string]*Container
	creating   map[string]bool
	closed     bool
}

// New opens the depot directory (creating it when missing) and returns a
// Manager for it. Containers already in the depot are re-discovered: those
// whose agent still runs (same pid and same process start time as
// recorded) are taken over with their processes; the others, and anything
// left half-created by a crash, are cleaned up.
func New(depot string, opts ...Option) (*Manager, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if !filepath.IsAbs(o.cgroupParent) {
		return nil, fmt.Errorf("container: cgroup parent %q is not absolute", o.cgroupParent)
	}
	if o.stopTimeout < 0 || o.setupTimeout <= 0 {
		return nil, fmt.Errorf("container: negative stop timeout %v or setup timeout %v: %w", o.stopTimeout, o.setupTimeout, ErrInvalidSpec)
	}
	if err := o.hooks.validate(); err != nil {
		return nil, err
	}
	if err := supported(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(depot)
	if err != nil {
		return nil, fmt.Errorf("container: depot %q: %w", depot, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, "containers"), filepath.Join(abs, "stacks")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("container: depot: %w", err)
		}
	}
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		depot:      abs,
		opts:       o,
		log:        log.With("depot", abs),
		ctx:        ctx,
		stop:       cancel,
		events:     newDispatcher(o.onEvent),
		reaper:     newReaper(),
		containers: map[string]*Container{},
		creating:   map[string]bool{},
	}
	if m.watcher, err = newDirWatcher(); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.openQuota(); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.openNetwork(); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.rediscover(); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.netReconcile(); err != nil {
		m.Close()
		return nil, fmt.Errorf("container: network: %w", err)
	}
	// After re-discovery, which removes the spares' cgroups left behind.
	m.spares = newSpares(ctx, m.reaper, m.newSpareCgroup)
	return m, nil
}

// Depot returns the Manager's depot directory, absolute.
func (m *Manager) Depot() string { return m.depot }

// Close releases the Manager's resources (timers, watchers, goroutines).
// Containers and their processes keep running. Close is idempotent; other
// methods return ErrClosed afterwards.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cs := slices.Collect(maps.Values(m.containers))
	m.mu.Unlock()
	for _, c := range cs {
		c.release()
	}
	m.stop()
	if m.spares != nil {
		m.spares.close()
	}
	if m.watcher != nil {
		m.watcher.close()
	}
	m.reaper.close()
	m.events.close()
	return m.closeNetwork()
}

func (m *Manager) containerDir(handle string) string {
	return filepath.Join(m.depot, "containers", handle)
}

// depotHash names what the Manager makes outside the depot (cgroups,
// the bridge, the firewall table), so that Managers of two depots do not
// collide.
func (m *Manager) depotHash() string {
	sum := sha256.Sum256([]byte(m.depot))
	return hex.EncodeToString(sum[:4])
}

// cgroupPath is unique per depot and handle, so two Managers on two
// depots may use the same handles.
func (m *Manager) cgroupPath(handle string) string {
	return filepath.Join(m.opts.cgroupParent, m.depotHash()+"-"+handle)
}

// Create makes and starts a container as spec says and returns it once its
// agent runs. An invalid spec returns a *SpecError; a taken handle
// ErrAlreadyExists. On any failure nothing is left behind.
func (m *Manager) Create(ctx context.Context, spec Spec) (_ *Container, retErr error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	for i, b := range spec.BindMounts {
		if _, err := os.Stat(b.SrcPath); err != nil {
			return nil, &SpecError{Field: fmt.Sprintf("BindMounts[%d].SrcPath", i), Reason: err.Error()}
		}
	}
	if fi, err := os.Stat(spec.RootFS); err != nil {
		return nil, &SpecError{Field: "RootFS", Reason: err.Error()}
	} else if !fi.IsDir() && !isTarball(spec.RootFS) {
		return nil, specErr("RootFS", "%q is neither a directory nor a .tar, .tar.gz or .tgz file", spec.RootFS)
	}
	if spec.Handle == "" {
		spec.Handle = randomID()
	}
	if spec.Hostname == "" {
		spec.Hostname = defaultHostname(spec.Handle)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := m.containers[spec.Handle]; ok || m.creating[spec.Handle] {
		m.mu.Unlock()
		return nil, fmt.Errorf("container %q: %w", spec.Handle, ErrAlreadyExists)
	}
	m.creating[spec.Handle] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.creating, spec.Handle)
		m.mu.Unlock()
	}()

	dir := m.containerDir(spec.Handle)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", spec.Handle, ErrAlreadyExists)
		}
		return nil, fmt.Errorf("container %q: %w", spec.Handle, err)
	}
	c := &Container{
		m:      m,
		handle: spec.Handle,
		dir:    dir,
		log:    m.log.With("handle", spec.Handle),
		state: containerState{
			Version:    stateVersion,
			Handle:     spec.Handle,
			Phase:      phaseCreating,
			Spec:       spec,
			CgroupPath: m.cgroupPath(spec.Handle),
			CreatedAt:  time.Now().UTC(),
		},
	}
	defer func() {
		if retErr != nil {
			// Roll back even when ctx is cancelled.
			if err := c.teardown(); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("roll back: %w", err))
			}
		}
	}()
	if err := c.saveState(); err != nil {
		return nil, err
	}
	stack, err := m.resolveStack(ctx, spec.RootFS)
	if err != nil {
		return nil, fmt.Errorf("container %q: stack: %w", spec.Handle, err)
	}
	c.state.Stack = stack
	if err := c.netPrepare(); err != nil {
		return nil, fmt.Errorf("container %q: %w", spec.Handle, err)
	}
	if err := c.start(ctx); err != nil {
		return nil, fmt.Errorf("container %q: %w", spec.Handle, err)
	}
	if err := c.netAttach(); err != nil {
		return nil, fmt.Errorf("container %q: %w", spec.Handle, err)
	}
	if err := c.runHooks(ctx, HookAfterStart, m.opts.hooks.AfterStart); err != nil {
		return nil, err
	}
	c.state.Phase = phaseActive
	if err := c.saveState(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.containers[spec.Handle] = c
	m.mu.Unlock()
	c.armGrace()
	return c, nil
}

// Lookup returns the container with that handle, or an error wrapping
// ErrNotFound. It counts as activity for the grace time.
func (m *Manager) Lookup(handle string) (*Container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	c, ok := m.containers[handle]
	if !ok {
		return nil, fmt.Errorf("container %q: %w", handle, ErrNotFound)
	}
	c.touch()
	return c, nil
}

// List returns the containers whose properties include every key and
// value of filter (all containers for a nil or empty filter), sorted by
// handle.
func (m *Manager) List(ctx context.Context, filter map[string]string) ([]*Container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var out []*Container
	for _, c := range m.containers {
		c.mu.Lock()
		props := c.state.Spec.Properties
		c.mu.Unlock()
		match := true
		for k, v := range filter {
			if pv, ok := props[k]; !ok || pv != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *Container) int {
		if a.handle < b.handle {
			return -1
		}
		if a.handle > b.handle {
			return 1
		}
		return 0
	})
	return out, nil
}

// Destroy destroys the container with that handle (see Container.Destroy).
// A handle the Manager does not know returns an error wrapping ErrNotFound.
func (m *Manager) Destroy(ctx context.Context, handle string) error {
	m.mu.Lock()
	c, ok := m.containers[handle]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if !ok {
		return fmt.Errorf("container %q: %w", handle, ErrNotFound)
	}
	return c.Destroy(ctx)
}

func (m *Manager) forget(c *Container) {
	m.mu.Lock()
	if m.containers[c.handle] == c {
		delete(m.containers, c.handle)
	}
	m.mu.Unlock()
}

// rediscover loads the containers of the depot, keeping those whose agent
// is alive and cleaning up the rest.
func (m *Manager) rediscover() error {
	ents, err := os.ReadDir(filepath.Join(m.depot, "containers"))
	if err != nil {
		return fmt.Errorf("container: depot: %w", err)
	}
	var errs []error
	errs = append(errs, m.removeSpareCgroups())
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		handle := e.Name()
		c := &Container{m: m, handle: handle, dir: m.containerDir(handle), log: m.log.With("handle", handle)}
		st, err := loadState(c.dir)
		if err == nil {
			c.state = *st
		}
		if err == nil && st.Phase != phaseCreating && c.agentAlive() {
			if err := c.reattach(); err == nil {
				m.containers[handle] = c
				c.armGrace()
				continue
			}
		}
		c.log.Info("cleaning up container whose agent is gone", "phase", c.state.Phase)
		if err := c.teardown(); err != nil {
			errs = append(errs, fmt.Errorf("container %q: clean up: %w", handle, err))
		}
	}
	return errors.Join(errs...)
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func defaultHostname(handle string) string {
	var out []byte
	for i := 0; i < len(handle) && len(out) < 63; i++ {
		ch := handle[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
			out = append(out, ch)
		case len(out) > 0:
			out = append(out, '-')
		}
	}
	for len(out) > 0 && out[len(out)-1] == '-' {
		out = out[:len(out)-1]
	}
	if len(out) == 0 {
		return "container"
	}
	return string(out)
}

// cgroupResources converts the spec's limits.
func cgroupResources(l Limits) cgroups.Resources {
	return cgroups.Resources{MemoryLimit: l.MemoryBytes, CPUShares: l.CPUShares, PidsMax: l.PidsMax, Devices: true}
}

package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Manager runs the instances of one DEA: it creates, starts, stops and
// resumes them, delivers their transitions to listeners, keeps the
// snapshot and runs the reapers. It is safe for concurrent use.
//
// Lifetimes: New starts the event dispatcher, the snapshot writer and the
// reapers; Close stops them, waits for the Manager's goroutines and
// writes a last snapshot, leaving instances and their containers
// running, so that a new Manager on the same BaseDir resumes them;
// Shutdown stops every instance first.
type Manager struct {
	cfg   Config
	opts  options
	log   *slog.Logger
	reg   *Registry
	res   *ResourceManager
	disp  *dispatcher
	snap  *snapshotter
	paths paths

	fetches        singleflight.Group
	dropletFetches atomic.Int64

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	createSem chan struct{} // bounds concurrent container creation; nil: none

	mu        sync.Mutex
	closed    bool
	restarts  map[*time.Timer]struct{}
	suspects  map[string]bool // orphaned container handles seen once
	diskUsage func(path string) (DiskUsage, error)
}

type paths struct {
	instances, crashes, db, tmp string
}

func (p paths) snapshot() string { return filepath.Join(p.db, "instances.json") }

// New returns a Manager for cfg. It creates BaseDir's subdirectories,
// starts the dispatcher, the snapshot writer and the reapers, and does
// not read the snapshot: call Resume for that.
func New(cfg Config, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.localIP == "" {
		o.localIP = localIPv4()
	}
	if !o.uidSet || o.uid < 0 {
		o.uid, o.gid = -1, -1
		if len(cfg.Stacks) == 1 {
			for _, root := range cfg.Stacks {
				if uid, gid, ok := lookupUser(root, o.user); ok {
					o.uid, o.gid = uid, gid
				}
			}
		}
	}
	base, err := filepath.Abs(cfg.BaseDir)
	if err != nil {
		return nil, err
	}
	cfg.BaseDir = base
	p := paths{
		instances: filepath.Join(base, "instances"),
		crashes:   filepath.Join(base, "crashes"),
		db:        filepath.Join(base, "db"),
		tmp:       filepath.Join(base, "tmp"),
	}
	for _, d := range []string{p.instances, p.crashes, p.db, p.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("instance: %w", err)
		}
	}
	reg := NewRegistry()
	res, err := NewResourceManager(reg, o.resources)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, opts: o, log: o.logger, reg: reg, res: res, paths: p,
		ctx: ctx, cancel: cancel,
		restarts:  make(map[*time.Timer]struct{}),
		suspects:  make(map[string]bool),
		diskUsage: diskUsage,
	}
	if o.createLimit > 0 {
		m.createSem = make(chan struct{}, o.createLimit)
	}
	m.disp = newDispatcher()
	m.snap = newSnapshotter(m)
	m.startReapers()
	return m, nil
}

func (o *options) validate() error {
	switch {
	case o.healthTimeout <= 0:
		return specErr("HealthCheckTimeout", "must be positive")
	case o.stopTimeout <= 0:
		return specErr("StopTimeout", "must be positive")
	case o.nproc < 0:
		return specErr("NprocLimit", "negative")
	case o.launcher == nil:
		return specErr("Launcher", "required")
	case o.user == "":
		return specErr("User", "required")
	}
	if err := o.reapers.validate(); err != nil {
		return err
	}
	for i, b := range o.bindMounts {
		if !filepath.IsAbs(b.SrcPath) || !filepath.IsAbs(b.DstPath) {
			return specErr(fmt.Sprintf("BindMounts[%d]", i), "paths must be absolute")
		}
	}
	return nil
}

// localIPv4 returns the first non-loopback IPv4 address of the host.
func localIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// Registry returns the Manager's registry.
func (m *Manager) Registry() *Registry { return m.reg }

// Resources returns the Manager's resource manager.
func (m *Manager) Resources() *ResourceManager { return m.res }

// LocalIP returns the DEA's address given to apps (see WithLocalIP).
func (m *Manager) LocalIP() string { return m.opts.localIP }

// SnapshotPath returns the path of the snapshot file.
func (m *Manager) SnapshotPath() string { return m.paths.snapshot() }

// DropletFetches returns how many times the Manager asked its droplet
// source for a droplet (concurrent starts of one droplet share one).
func (m *Manager) DropletFetches() int64 { return m.dropletFetches.Load() }

// Listen registers f to be told of every transition's three events
// (Exiting, Transition, Entering), in order, on one goroutine, outside
// the Manager's locks. Events queue without bound: a slow listener delays
// later events but nothing else, and none is lost. The returned function
// removes f; events already being delivered may still reach it.
func (m *Manager) Listen(f func(Event)) (remove func()) { return m.disp.listen(f) }

// Flush waits until every event of the transitions made before the call
// has been delivered to the listeners, or ctx ends.
func (m *Manager) Flush(ctx context.Context) error { return m.disp.flush(ctx) }

func (m *Manager) check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Create makes a BORN instance of spec and registers it, reserving its
// memory and disk. When they are not available the instance is still
// registered, CRASHED with "Not enough memory resource available." (or
// disk), as dea_ng did so that the controller sees the crash, and Create
// returns it with a *ResourceError. An invalid spec returns a *SpecError
// and no instance; an instance id already registered, ErrAlreadyExists.
func (m *Manager) Create(spec Spec) (*Instance, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if _, err := m.stack(spec.Stack); err != nil {
		return nil, err
	}
	inst := newInstance(spec, time.Now())
	inst.m = m
	err := m.res.registerReserving(inst, false)
	re, ok := errors.AsType[*ResourceError](err)
	if !ok {
		if err != nil {
			return nil, err
		}
		return inst, nil
	}
	if err := m.res.registerReserving(inst, true); err != nil {
		return nil, err
	}
	inst.mu.Lock()
	inst.a.ExitStatus = -1
	inst.a.ExitDescription = re.Description()
	evs, terr := inst.transitionLocked(StateCrashed, time.Now())
	if terr == nil {
		m.emitLocked(inst, evs)
	}
	inst.mu.Unlock()
	return inst, re
}

func (m *Manager) stack(name string) (string, error) {
	if name == "" && len(m.cfg.Stacks) == 1 {
		for _, root := range m.cfg.Stacks {
			return root, nil
		}
	}
	root, ok := m.cfg.Stacks[name]
	if !ok {
		return "", specErr("Stack", "unknown stack %q", name)
	}
	return root, nil
}

// emitLocked queues a transition's events and marks the snapshot stale.
// The caller holds inst.mu.
func (m *Manager) emitLocked(inst *Instance, evs []Event) {
	m.disp.send(evs...)
	if len(evs) > 0 && (evs[0].From.snapshotted() || evs[0].To.snapshotted()) {
		m.snap.touch()
	}
}

// transition moves inst to state to, calling mutate (when not nil) on
// its attributes under its lock first.
func (m *Manager) transition(inst *Instance, to State, mutate func(a *Attributes)) error {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return m.transitionLocked(inst, to, mutate)
}

func (m *Manager) transitionLocked(inst *Instance, to State, mutate func(a *Attributes)) error {
	if !inst.a.State.CanTransitionTo(to) {
		return &TransitionError{InstanceID: inst.a.InstanceID, From: inst.a.State, To: to}
	}
	if mutate != nil {
		mutate(&inst.a)
	}
	evs, err := inst.transitionLocked(to, time.Now())
	if err != nil {
		return err
	}
	m.emitLocked(inst, evs)
	return nil
}

// removeLocked moves a STOPPED or CRASHED instance to DELETED and takes
// it out of the registry. The caller holds inst.mu.
func (m *Manager) removeLocked(inst *Instance) error {
	if err := m.transitionLocked(inst, StateDeleted, nil); err != nil {
		return err
	}
	if r := inst.reg; r != nil {
		r.mu.Lock()
		if e := r.byID[inst.a.InstanceID]; e != nil && e.inst == inst {
			r.removeLocked(e)
		}
		r.mu.Unlock()
	}
	return nil
}

func (m *Manager) homeDir(id string) string  { return filepath.Join(m.paths.instances, id) }
func (m *Manager) crashDir(id string) string { return filepath.Join(m.paths.crashes, id) }

// Evacuate moves every BORN, STARTING, RESUMING and RUNNING instance to
// EVACUATING (dea_ng's first evacuation pass) and returns them. They keep
// running and stay routable until stopped.
func (m *Manager) Evacuate() []*Instance {
	var out []*Instance
	for _, inst := range m.reg.ByState(StateBorn, StateStarting, StateResuming, StateRunning) {
		if m.transition(inst, StateEvacuating, nil) == nil {
			out = append(out, inst)
		}
	}
	return out
}

// CanShutdown reports whether an evacuating DEA may exit: every
// instance is STOPPING, STOPPED, CRASHED or DELETED (dea_ng's
// dea_can_shutdown?, without the staging tasks, which the caller
// checks).
func (m *Manager) CanShutdown() bool {
	n := m.reg.CountByState()
	return n[StateBorn]+n[StateStarting]+n[StateRunning]+n[StateResuming]+n[StateEvacuating] == 0
}

// Update applies a dea.update to the RUNNING and EVACUATING instances of
// an app: their URIs become uris, and when version differs from theirs
// it becomes their version and each gets a new instance id (dea_ng's
// change_instance_id!). It returns the instances updated with their
// attributes before the update, for router (un)registration.
func (m *Manager) Update(appID string, uris []string, version string) []Attributes {
	var before []Attributes
	for _, inst := range m.reg.ByApp(appID) {
		inst.mu.Lock()
		if s := inst.a.State; s != StateRunning && s != StateEvacuating {
			inst.mu.Unlock()
			continue
		}
		old := inst.a
		inst.a.ApplicationURIs = uris
		if version != "" && version != old.ApplicationVersion {
			inst.a.ApplicationVersion = version
			inst.a.InstanceID = randomHex(16)
		}
		inst.specJSON = nil
		if r := inst.reg; r != nil {
			if err := r.renamed(inst, old.InstanceID); err != nil {
				inst.a = old
				inst.mu.Unlock()
				continue
			}
		}
		inst.mu.Unlock()
		before = append(before, old)
	}
	if len(before) > 0 {
		m.snap.touch()
	}
	return before
}

// Close stops the reapers, pending restarts, liveness checks and the
// goroutines that wait for processes, writes a last snapshot and
// delivers the events queued. Instances and their containers keep
// running: a new Manager resumes them. Close is idempotent; other
// methods return ErrClosed afterwards. It returns the snapshot's error.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for t := range m.restarts {
		t.Stop()
	}
	clear(m.restarts)
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	err := m.snap.close()
	m.disp.close()
	return err
}

// Shutdown stops every instance (in parallel), then closes the Manager.
// It returns the stop errors joined with Close's.
func (m *Manager) Shutdown(ctx context.Context) error {
	insts := m.reg.ByState(StateBorn, StateStarting, StateRunning, StateStopping, StateResuming, StateEvacuating)
	errs := make([]error, len(insts))
	var wg sync.WaitGroup
	for i, inst := range insts {
		wg.Go(func() {
			if err := m.Stop(ctx, inst); err != nil && !errors.Is(err, ErrIllegalTransition) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, m.Close())...)
}

// goTracked runs f on a goroutine that Close waits for; it returns false
// (and runs nothing) after Close.
func (m *Manager) goTracked(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Go(f)
	return true
}

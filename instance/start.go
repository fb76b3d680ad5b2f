package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/paaskit/paaskit/container"
	"golang.org/x/sync/errgroup"
)

// Container properties set on every instance's container.
const (
	PropertyOwner    = "paaskit.owner" // value OwnerInstance
	PropertyInstance = "paaskit.instance"
	PropertyApp      = "paaskit.app"
	OwnerInstance    = "instance"
)

// CPUShares returns the cpu shares of an instance with mem MB of memory:
// mem / MemoryToCPUShareRatio within MinCPUShares..MaxCPUShares, as
// dea_ng. (The kernel's least weight is 2: a share of 1 is given to the
// container as 2.)
func CPUShares(mem int64) uint64 {
	return uint64(min(max(mem/MemoryToCPUShareRatio, MinCPUShares), MaxCPUShares))
}

// Start starts a BORN instance and returns once it is RUNNING (its health
// check passed) or not: BORN → STARTING; then, in parallel, the droplet
// is fetched (one download shared with other starts of it) and extracted
// on the host into the instance's home directory, and the container is
// created with the instance's limits (memory, cpu shares, pids; disk is
// accounted, not enforced) and a port mapped for the app; then the start
// command runs through the launcher with the Cloud Foundry environment,
// and the health check decides: STARTING → RUNNING. Any failure makes the
// instance CRASHED with a user-facing description and returns a
// *StartError carrying it; the container is destroyed and the logs kept.
//
// ctx bounds the start: when it ends first, the instance crashes with
// "failed to start". Stop may be called meanwhile: Start then returns a
// *StartError wrapping context.Canceled and the instance ends STOPPED.
// Starting an instance that is not BORN returns a *TransitionError.
func (m *Manager) Start(ctx context.Context, inst *Instance) error {
	if err := m.check(); err != nil {
		return err
	}
	if inst.m != m {
		return fmt.Errorf("instance %q: not an instance of this manager: %w", inst.ID(), ErrNotFound)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(m.ctx, cancel)
	defer stopOnClose()

	inst.mu.Lock()
	if err := m.transitionLocked(inst, StateStarting, nil); err != nil {
		inst.mu.Unlock()
		return err
	}
	inst.cancel = cancel
	inst.began = true
	inst.mu.Unlock()
	defer close(inst.started)

	err := m.setUp(sctx, inst)
	if err == nil {
		err = m.awaitHealthy(sctx, inst)
	}
	if err != nil {
		return m.startFailed(ctx, inst, err)
	}
	inst.op.Lock()
	defer inst.op.Unlock()
	inst.mu.Lock()
	defer inst.mu.Unlock()
	switch inst.a.State {
	case StateStarting:
		if err := m.transitionLocked(inst, StateRunning, nil); err != nil {
			return err
		}
	case StateEvacuating:
		// Started while the DEA evacuates: it runs, and stays EVACUATING.
	default:
		return &StartError{InstanceID: inst.a.InstanceID, Description: "stopped while starting", Err: context.Canceled}
	}
	m.startLivenessLocked(inst)
	return nil
}

// startFailed crashes an instance whose start failed, unless it was
// stopped, or crashed by its process's exit, meanwhile.
func (m *Manager) startFailed(ctx context.Context, inst *Instance, err error) error {
	if m.ctx.Err() != nil {
		// Closing: leave the instance as it is; a resume makes a STARTING
		// instance CRASHED.
		return fmt.Errorf("instance %q: %w", inst.ID(), ErrClosed)
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = errors.Join(err, ctx.Err())
	}
	desc := describe(err)
	m.crash(inst, -1, desc, nil)
	a := inst.Attributes()
	switch a.State {
	case StateCrashed:
		return &StartError{InstanceID: a.InstanceID, Description: a.ExitDescription, Err: err}
	case StateStopping, StateStopped, StateDeleted:
		return &StartError{InstanceID: a.InstanceID, Description: "stopped while starting", Err: context.Canceled}
	}
	return &StartError{InstanceID: a.InstanceID, Description: desc, Err: err}
}

// setUp gets the droplet and the container ready and runs the process.
func (m *Manager) setUp(ctx context.Context, inst *Instance) error {
	a := inst.Attributes()
	home := m.homeDir(a.InstanceID)
	if err := mkdir(home); err != nil {
		return err
	}
	inst.mu.Lock()
	inst.a.InstancePath = home
	inst.mu.Unlock()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		path, err := m.fetchDroplet(gctx, a.DropletSHA1, a.DropletURI)
		if err != nil {
			return err
		}
		return m.extractDroplet(gctx, path, home)
	})
	g.Go(func() error { return m.createContainer(gctx, inst, a, home) })
	if err := g.Wait(); err != nil {
		return err
	}

	cmd, legacy, err := resolveCommand(home, a.StartCommand)
	if err != nil {
		return err
	}
	a = inst.Attributes()
	spec, err := m.opts.launcher(Launch{
		Attributes: a,
		Command:    cmd,
		Legacy:     legacy,
		Env:        Environment(EnvInput{Attributes: a, LocalIP: m.opts.localIP}),
		User:       m.opts.user,
	})
	if err != nil {
		return err
	}
	inst.mu.Lock()
	ctr := inst.ctr
	inst.mu.Unlock()
	proc, err := ctr.Run(ctx, spec)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	inst.mu.Lock()
	inst.proc = proc
	inst.a.WardenJobID = proc.ID()
	inst.a.ProcessPID = proc.PID()
	inst.mu.Unlock()
	m.watch(inst, proc)

	info, err := ctr.Info(ctx)
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	inst.mu.Lock()
	inst.a.WardenContainerPath = info.ContainerPath
	if info.HostIP.IsValid() {
		inst.a.WardenHostIP = info.HostIP.String()
	}
	if info.ContainerIP.IsValid() {
		inst.a.WardenContainerIP = info.ContainerIP.String()
	}
	inst.mu.Unlock()
	m.snap.touch()
	return nil
}

// createContainer creates the instance's container, maps its port and
// applies its egress rules. The container is recorded in inst as soon as
// it exists, so that a later failure destroys it.
func (m *Manager) createContainer(ctx context.Context, inst *Instance, a Attributes, home string) error {
	root, err := m.stack(a.Stack)
	if err != nil {
		return err
	}
	spec := container.Spec{
		Handle:     a.WardenHandle,
		RootFS:     root,
		BindMounts: append([]container.BindMount{{SrcPath: home, DstPath: HomeDir}}, m.opts.bindMounts...),
		Limits: container.Limits{
			MemoryBytes: a.Limits.Mem << 20,
			CPUShares:   max(CPUShares(a.Limits.Mem), 2),
			PidsMax:     m.opts.nproc,
		},
		Properties: map[string]string{
			PropertyOwner:    OwnerInstance,
			PropertyInstance: a.InstanceID,
			PropertyApp:      a.ApplicationID,
		},
		User: m.opts.user,
	}
	if m.createSem != nil {
		select {
		case m.createSem <- struct{}{}:
			defer func() { <-m.createSem }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ctr, err := m.cfg.Containers.Create(ctx, spec)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	inst.mu.Lock()
	inst.ctr = ctr
	inst.mu.Unlock()
	pm, err := ctr.NetIn(ctx, 0, 0)
	if err != nil {
		return fmt.Errorf("net in: %w", err)
	}
	for i, r := range a.EgressRules {
		if err := ctr.NetOut(ctx, r); err != nil {
			return fmt.Errorf("net out rule %d: %w", i, err)
		}
	}
	inst.mu.Lock()
	inst.a.InstanceHostPort = int(pm.HostPort)
	inst.a.InstanceContainerPort = int(pm.ContainerPort)
	inst.mu.Unlock()
	m.snap.touch()
	return nil
}

// watch waits, on a goroutine the Manager owns, for the process to exit,
// and crashes the instance when it was STARTING, RUNNING, RESUMING or
// EVACUATING. Closing the Manager stops the wait, not the process.
func (m *Manager) watch(inst *Instance, proc Process) {
	m.goTracked(func() {
		st, err := proc.Status(m.ctx)
		if m.ctx.Err() != nil {
			return
		}
		m.processExited(inst, st, err)
	})
}

// processExited records a process's exit and crashes the instance when
// it was meant to run.
func (m *Manager) processExited(inst *Instance, st container.ExitStatus, err error) {
	inst.mu.Lock()
	if !inst.exitedLocked() {
		inst.exit, inst.exitErr = st, err
		close(inst.exited)
	}
	state := inst.a.State
	inst.mu.Unlock()
	if !crashable(state) {
		return // stopped, or already crashed
	}
	code, desc := st.Code, DescExited
	switch {
	case err != nil && !errors.Is(err, container.ErrOutOfMemory):
		code, desc = -1, DescUnknown
	case st.OOMKilled || errors.Is(err, container.ErrOutOfMemory) || m.containerSaysOOM(inst):
		desc = DescOutOfMemory
	}
	m.crash(inst, code, desc, nil)
}

// containerSaysOOM reports whether the instance's container recorded an
// "out of memory" event.
func (m *Manager) containerSaysOOM(inst *Instance) bool {
	inst.mu.Lock()
	ctr := inst.ctr
	inst.mu.Unlock()
	if ctr == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 10*time.Second)
	defer cancel()
	info, err := ctr.Info(ctx)
	if err != nil {
		return false
	}
	for _, e := range info.Events {
		if e == DescOutOfMemory {
			return true
		}
	}
	return false
}

// crashable reports whether an instance in s crashes when its process
// dies or its start fails.
func crashable(s State) bool {
	switch s {
	case StateStarting, StateRunning, StateResuming, StateEvacuating:
		return true
	}
	return false
}

// crash makes the instance CRASHED when its state allows, after cleaning
// up: the container's processes are killed, their output and the app's
// logs/ are kept in the crash directory, the container is destroyed and
// the home directory removed, so that a CRASHED instance holds disk (its
// logs) but no memory. ran is how long it had been running (for the
// restart policy); it returns whether it crashed the instance.
func (m *Manager) crash(inst *Instance, code int, desc string, mutate func(*Attributes)) bool {
	inst.op.Lock()
	defer inst.op.Unlock()
	if !crashable(inst.State()) {
		return false
	}
	m.stopLiveness(inst)
	crashDir := m.cleanUpCrash(inst)
	inst.mu.Lock()
	defer inst.mu.Unlock()
	var ran time.Duration
	if !inst.a.StateRunningTimestamp.IsZero() {
		ran = time.Since(inst.a.StateRunningTimestamp.Time)
	}
	err := m.transitionLocked(inst, StateCrashed, func(a *Attributes) {
		a.ExitStatus, a.ExitDescription = code, desc
		a.InstancePath = crashDir
		a.CrashCount = m.opts.restart.CrashCount(a.CrashCount, ran)
		if mutate != nil {
			mutate(a)
		}
	})
	if err != nil {
		return false
	}
	m.scheduleRestartLocked(inst)
	return true
}

// cleanUpCrash kills what is left of the instance, keeps its output and
// logs, destroys its container and removes its home directory. It
// returns the crash directory. Failures are logged: a crash is recorded
// whatever happens to the cleanup, and the reapers finish it.
func (m *Manager) cleanUpCrash(inst *Instance) string {
	inst.mu.Lock()
	id, ctr, home, jobID, cancelStart := inst.a.InstanceID, inst.ctr, m.homeDir(inst.a.InstanceID), inst.a.WardenJobID, inst.cancel
	inst.mu.Unlock()
	if cancelStart != nil {
		cancelStart()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), m.opts.stopTimeout)
	defer cancel()
	log := m.log.With("instance", id)
	dir := m.crashDir(id)
	if err := mkdir(dir); err != nil {
		log.Warn("crash directory", "err", err)
	}
	if err := os.Rename(home+"/logs", dir+"/logs"); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("keep logs", "err", err)
	}
	if ctr != nil {
		if err := ctr.Stop(ctx, true); err != nil && !errors.Is(err, container.ErrNotFound) {
			log.Warn("kill container", "err", err)
		}
		if jobID != "" {
			if err := m.copyOutput(ctx, ctr, jobID, dir); err != nil {
				log.Warn("keep output", "err", err)
			}
		}
		if err := ctr.Destroy(ctx); err != nil && !errors.Is(err, container.ErrNotFound) {
			log.Warn("destroy container", "err", err)
		}
	}
	if err := os.RemoveAll(home); err != nil {
		log.Warn("remove home", "err", err)
	}
	return dir
}

// copyOutput writes a process's stdout and stderr, as kept by its
// container, to dir/stdout.log and dir/stderr.log.
func (m *Manager) copyOutput(ctx context.Context, ctr Container, jobID, dir string) error {
	out, err := os.OpenFile(dir+"/stdout.log", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	errf, err := os.OpenFile(dir+"/stderr.log", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer errf.Close()
	p, err := ctr.Attach(ctx, jobID, out, errf)
	if err != nil {
		return err
	}
	_, err = p.Status(ctx)
	if errors.Is(err, container.ErrOutOfMemory) {
		err = nil
	}
	return err
}

// scheduleRestartLocked starts a new instance of the crashed one's spec
// when the restart policy says so. The caller holds inst.mu.
func (m *Manager) scheduleRestartLocked(inst *Instance) {
	delay, ok := m.opts.restart.Delay(inst.a.CrashCount)
	if !ok {
		return
	}
	spec := inst.a.Spec
	spec.InstanceID = ""
	crashes := inst.a.CrashCount
	restart := func() {
		next, err := m.Create(spec)
		if err != nil {
			m.log.Warn("restart", "app", spec.ApplicationID, "index", spec.InstanceIndex, "err", err)
			return
		}
		next.mu.Lock()
		next.a.CrashCount = crashes
		next.mu.Unlock()
		if err := m.Start(m.ctx, next); err != nil {
			m.log.Info("restart failed", "instance", next.ID(), "err", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		m.mu.Lock()
		_, pending := m.restarts[t]
		delete(m.restarts, t)
		m.mu.Unlock()
		if pending {
			m.goTracked(restart)
		}
	})
	m.restarts[t] = struct{}{}
}

// PendingRestarts returns how many restarts the restart policy has
// scheduled and not yet begun.
func (m *Manager) PendingRestarts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.restarts)
}

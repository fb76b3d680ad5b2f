package instance

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/paaskit/paaskit/container"
)

// Stop stops an instance: STARTING, RUNNING, RESUMING or EVACUATING →
// STOPPING; the STOPPING events are delivered to the listeners before
// anything else happens (so routes are unregistered first); a start in
// progress is cancelled; the container's processes get TERM, the
// container's grace time, then KILL; the container is destroyed and the
// home directory removed; STOPPING → STOPPED, and the instance leaves
// the registry (→ DELETED). A BORN instance goes to STOPPED at once.
//
// When the container does not stop within the stop timeout (see
// WithStopTimeout) or ctx ends first, Stop returns the error and the
// instance stays STOPPING; calling Stop again (as the stopping reaper
// does) retries. Stopping a STOPPED, CRASHED or DELETED instance returns
// a *TransitionError.
func (m *Manager) Stop(ctx context.Context, inst *Instance) error {
	if err := m.check(); err != nil {
		return err
	}
	inst.op.Lock()
	inst.mu.Lock()
	switch s := inst.a.State; s {
	case StateBorn:
		err := m.transitionLocked(inst, StateStopped, nil)
		if err == nil {
			err = m.removeLocked(inst)
		}
		inst.mu.Unlock()
		inst.op.Unlock()
		return err
	case StateStopping:
	default:
		if err := m.transitionLocked(inst, StateStopping, nil); err != nil {
			inst.mu.Unlock()
			inst.op.Unlock()
			return err
		}
	}
	cancelStart, began := inst.cancel, inst.began
	inst.mu.Unlock()
	inst.op.Unlock()
	m.stopLiveness(inst)
	if cancelStart != nil {
		cancelStart()
	}
	// Routes first: the listeners see STOPPING before the app gets TERM.
	if err := m.disp.flush(ctx); err != nil {
		return err
	}
	if began {
		select {
		case <-inst.started:
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	inst.op.Lock()
	defer inst.op.Unlock()
	inst.mu.Lock()
	state, ctr, id := inst.a.State, inst.ctr, inst.a.InstanceID
	inst.mu.Unlock()
	if state != StateStopping {
		return nil // another Stop finished it
	}
	if ctr == nil {
		// Resumed, or never got a container: find it by its handle.
		if c, err := m.cfg.Containers.Lookup(ctx, inst.Attributes().WardenHandle); err == nil {
			ctr = c
		}
	}
	if ctr != nil {
		sctx, cancel := context.WithTimeout(ctx, m.opts.stopTimeout)
		defer cancel()
		if err := ctr.Stop(sctx, false); err != nil && !errors.Is(err, container.ErrNotFound) {
			return fmt.Errorf("instance %q: stop: %w", id, err)
		}
		if err := ctr.Destroy(sctx); err != nil && !errors.Is(err, container.ErrNotFound) {
			return fmt.Errorf("instance %q: destroy: %w", id, err)
		}
	}
	if err := os.RemoveAll(m.homeDir(id)); err != nil {
		return fmt.Errorf("instance %q: %w", id, err)
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if err := m.transitionLocked(inst, StateStopped, func(a *Attributes) { a.InstancePath = "" }); err != nil {
		return err
	}
	return m.removeLocked(inst)
}

// Delete removes a CRASHED instance (its crash directory with the logs)
// or a STOPPED one from the registry: → DELETED. This is what the crash
// reapers do. Other states return a *TransitionError.
func (m *Manager) Delete(ctx context.Context, inst *Instance) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	inst.op.Lock()
	defer inst.op.Unlock()
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if !inst.a.State.CanTransitionTo(StateDeleted) {
		return &TransitionError{InstanceID: inst.a.InstanceID, From: inst.a.State, To: StateDeleted}
	}
	if inst.a.State == StateCrashed {
		if err := os.RemoveAll(m.crashDir(inst.a.InstanceID)); err != nil {
			return fmt.Errorf("instance %q: %w", inst.a.InstanceID, err)
		}
	}
	return m.removeLocked(inst)
}

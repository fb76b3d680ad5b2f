package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// resumeParallelism bounds the instances re-linked at once.
const resumeParallelism = 32

// Resume rebuilds the registry from the snapshot a previous Manager on the
// same BaseDir wrote (a missing snapshot resumes nothing). Each saved
// instance is registered (its resources reserved whatever the capacity:
// it runs already) and goes BORN → RESUMING, then back to its saved
// state:
//
//   - RUNNING (or EVACUATING): its container is looked up and its process
//     re-attached (Containers.Attach): the process is not restarted. When
//     the container or the process is gone, the instance becomes CRASHED.
//   - STARTING becomes CRASHED: the start cannot be resumed (dea_ng left
//     such instances STARTING forever, dea_ng#152).
//   - STOPPING: re-attached, then stopped (on a goroutine of the Manager).
//   - CRASHED stays CRASHED, with its logs.
//
// Saved timestamps are kept. Resume returns the instances resumed and
// the problems of those it could not (joined); it may be called once,
// before any Create.
func (m *Manager) Resume(ctx context.Context) ([]*Instance, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	f, err := os.Open(m.paths.snapshot())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	release := m.snap.hold()
	defer release()

	// The snapshot is decoded as a stream and each instance resumed by a
	// pool of workers as soon as it is read: decoding, re-linking (I/O
	// with the container agents) and registering overlap.
	type result struct {
		inst *Instance
		err  error
	}
	work := make(chan jsontext.Value, resumeParallelism)
	results := make(chan result, resumeParallelism)
	var wg sync.WaitGroup
	for range resumeParallelism {
		wg.Go(func() {
			for raw := range work {
				var a Attributes
				if err := jsonv2.Unmarshal(raw, &a); err != nil {
					results <- result{err: fmt.Errorf("instance: read snapshot: %w", err)}
					continue
				}
				inst, err := m.resumeOne(ctx, a)
				results <- result{inst, err}
			}
		})
	}
	var insts []*Instance
	var errs []error
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for r := range results {
			if r.inst != nil {
				insts = append(insts, r.inst)
			}
			if r.err != nil {
				errs = append(errs, r.err)
			}
		}
	}()
	readErr := streamSnapshot(f, func(raw jsontext.Value) { work <- raw })
	close(work)
	wg.Wait()
	close(results)
	<-collected
	if readErr != nil {
		errs = append(errs, readErr)
	}
	m.snap.touch()
	release()
	return insts, errors.Join(errs...)
}

// streamSnapshot reads a snapshot document and calls f with (a copy of)
// each raw instance, in order.
func streamSnapshot(r io.Reader, f func(jsontext.Value)) error {
	dec := jsontext.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	bad := func(err error) error { return fmt.Errorf("instance: read snapshot: %w", err) }
	if tok, err := dec.ReadToken(); err != nil {
		return bad(err)
	} else if tok.Kind() != '{' {
		return bad(fmt.Errorf("not an object"))
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return bad(err)
		}
		if name.String() != "instances" || dec.PeekKind() != '[' {
			if err := dec.SkipValue(); err != nil {
				return bad(err)
			}
			continue
		}
		if _, err := dec.ReadToken(); err != nil { // [
			return bad(err)
		}
		for dec.PeekKind() != ']' {
			v, err := dec.ReadValue()
			if err != nil {
				return bad(err)
			}
			f(v.Clone())
		}
		if _, err := dec.ReadToken(); err != nil { // ]
			return bad(err)
		}
	}
	_, err := dec.ReadToken() // }
	if err != nil {
		return bad(err)
	}
	return nil
}

func (m *Manager) resumeOne(ctx context.Context, saved Attributes) (*Instance, error) {
	want := saved.State
	if !want.snapshotted() {
		return nil, fmt.Errorf("instance %q: resume: saved state %s is not one a snapshot holds: %w", saved.InstanceID, want, ErrInvalidSpec)
	}
	if saved.InstanceID == "" || saved.ApplicationID == "" {
		return nil, fmt.Errorf("instance: resume: an instance has no instance_id or application_id: %w", ErrInvalidSpec)
	}
	inst := &Instance{m: m, a: saved, exited: make(chan struct{}), started: make(chan struct{})}
	inst.a.State = StateBorn
	if inst.a.WardenHandle == "" {
		inst.a.WardenHandle = handleOf(saved.InstanceID)
	}
	close(inst.started)
	if err := m.res.registerReserving(inst, true); err != nil {
		return nil, err
	}
	if err := m.transition(inst, StateResuming, nil); err != nil {
		return nil, err
	}
	restore := func() {
		inst.mu.Lock()
		inst.a.StateTimestamp = saved.StateTimestamp
		inst.a.StateRunningTimestamp = saved.StateRunningTimestamp
		inst.a.StateCrashedTimestamp = saved.StateCrashedTimestamp
		inst.mu.Unlock()
	}

	switch want {
	case StateCrashed:
		if err := m.transition(inst, StateCrashed, nil); err != nil {
			return nil, err
		}
		restore()
		return inst, nil
	case StateStarting:
		m.adopt(ctx, inst)
		m.crash(inst, -1, DescResumedStarting, nil)
		return inst, nil
	case StateStopping:
		m.adopt(ctx, inst)
		if err := m.transition(inst, StateStopping, nil); err != nil {
			return nil, err
		}
		m.goTracked(func() {
			sctx, cancel := context.WithTimeout(m.ctx, m.opts.stopTimeout)
			defer cancel()
			if err := m.Stop(sctx, inst); err != nil {
				m.log.Warn("stop resumed instance", "instance", saved.InstanceID, "err", err)
			}
		})
		return inst, nil
	}

	// RUNNING or EVACUATING: re-link to the process.
	ctr := m.adopt(ctx, inst)
	if ctr == nil {
		m.crash(inst, -1, DescResumedGone, nil)
		return inst, nil
	}
	jobID := saved.WardenJobID
	if jobID == "" {
		jobID = ProcessID
	}
	info, err := ctr.Info(ctx)
	if err != nil {
		m.crash(inst, -1, DescResumedGone, nil)
		return inst, nil
	}
	proc, err := ctr.Attach(ctx, jobID, nil, nil)
	if err != nil {
		m.crash(inst, -1, DescResumedGone, nil)
		return inst, nil
	}
	inst.mu.Lock()
	inst.proc = proc
	if pid := proc.PID(); pid != 0 {
		inst.a.ProcessPID = pid
	}
	inst.mu.Unlock()
	if !slices.Contains(info.ProcessIDs, jobID) {
		// It exited while nobody watched: crash with its status.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := proc.Status(sctx)
		cancel()
		m.processExited(inst, st, err)
		return inst, nil
	}
	inst.mu.Lock()
	err = m.transitionLocked(inst, want, nil)
	if err == nil {
		m.startLivenessLocked(inst)
	}
	inst.mu.Unlock()
	if err != nil {
		return nil, err
	}
	restore()
	m.watch(inst, proc)
	return inst, nil
}

// adopt finds the instance's container by its handle and records it;
// nil when it is gone.
func (m *Manager) adopt(ctx context.Context, inst *Instance) Container {
	inst.mu.Lock()
	handle := inst.a.WardenHandle
	inst.mu.Unlock()
	ctr, err := m.cfg.Containers.Lookup(ctx, handle)
	if err != nil {
		return nil
	}
	inst.mu.Lock()
	inst.ctr = ctr
	inst.mu.Unlock()
	return ctr
}

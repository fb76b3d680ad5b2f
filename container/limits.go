package container

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// SetLimits changes the cgroup limits of a running container (warden's
// limit_memory and limit_cpu; garden dropped them, paaskit keeps them) and
// records them, so Limits and a re-opened Manager see the new values.
// Zero fields lift the limit (CPUShares: back to the kernel's default).
// Lowering memory below what the container uses makes the kernel reclaim
// first; when it cannot, the write fails and SetLimits returns that error
// with the old limit still in force (cgroup v1), or the OOM killer acts
// (v2). An invalid value returns a *SpecError.
func (c *Container) SetLimits(ctx context.Context, l Limits) error {
	probe := Spec{RootFS: "/", Limits: l}
	if err := probe.Validate(); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cg == nil {
		return fmt.Errorf("container %q: %w: no cgroup", c.handle, ErrAgent)
	}
	res := cgroupResources(l)
	if l.CPUShares == 0 {
		res.CPUShares = 1024 // lift: the kernel's default weight
	}
	if err := c.cg.Update(res); err != nil {
		return fmt.Errorf("container %q: set limits: %w", c.handle, err)
	}
	c.state.Spec.Limits = l
	return c.saveState()
}

// Limits returns the container's current cgroup limits.
func (c *Container) Limits() Limits {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Spec.Limits
}

// Metrics are what a container uses, read without asking its agent
// (cheaper than Info).
type Metrics struct {
	Memory MemoryStat
	CPU    CPUStat
	Pids   PidsStat
	Disk   DiskUsage
	// Age is how long ago the container was created.
	Age time.Duration
}

// Metrics returns the container's resource use.
func (c *Container) Metrics(ctx context.Context) (*Metrics, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	cg, created := c.cg, c.state.CreatedAt
	c.mu.Unlock()
	if cg == nil {
		return nil, fmt.Errorf("container %q: %w: no cgroup", c.handle, ErrAgent)
	}
	st, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("container %q: metrics: %w", c.handle, err)
	}
	m := &Metrics{
		Memory: MemoryStat{
			Usage: st.Memory.Usage, Limit: st.Memory.Limit, OOMKills: st.Memory.OOMKill,
			MemoryCounters: MemoryCounters(st.Memory.MemoryCounters),
			Total:          MemoryCounters(st.Memory.Total),
		},
		CPU:  CPUStat{Usage: st.CPU.UsageNS, User: st.CPU.UserNS, System: st.CPU.SystemNS},
		Pids: PidsStat{Current: st.Pids.Current, Max: st.Pids.Limit},
		Age:  time.Since(created),
	}
	if m.Disk, err = c.diskUsage(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// MetricsResult is one container's entry in a BulkMetrics answer.
type MetricsResult struct {
	Metrics *Metrics
	Err     error
}

// BulkMetrics returns the metrics of the containers with the given
// handles (all containers when handles is empty), read concurrently. A
// handle the Manager does not know gets an Err wrapping ErrNotFound.
func (m *Manager) BulkMetrics(ctx context.Context, handles []string) (map[string]MetricsResult, error) {
	if len(handles) == 0 {
		cs, err := m.List(ctx, nil)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			handles = append(handles, c.Handle())
		}
	}
	handles = slices.Compact(slices.Sorted(slices.Values(handles)))
	out := make(map[string]MetricsResult, len(handles))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, h := range handles {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var r MetricsResult
			c, err := m.Lookup(h)
			if err == nil {
				r.Metrics, r.Err = c.Metrics(ctx)
			} else {
				r.Err = err
			}
			mu.Lock()
			out[h] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, nil
}

// SetProperty sets one of the container's properties (labels matched by
// Manager.List), kept in its state. An empty key is a *SpecError.
func (c *Container) SetProperty(ctx context.Context, key, value string) error {
	if key == "" {
		return specErr("Properties", "empty key")
	}
	if err := c.check(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Spec.Properties == nil {
		c.state.Spec.Properties = map[string]string{}
	}
	c.state.Spec.Properties[key] = value
	return c.saveState()
}

// RemoveProperty removes one of the container's properties; a missing
// key is no error.
func (c *Container) RemoveProperty(ctx context.Context, key string) error {
	if err := c.check(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.state.Spec.Properties, key)
	return c.saveState()
}

// SetGraceTime changes the container's grace time (see Container); zero
// turns it off. The new grace time counts from now.
func (c *Container) SetGraceTime(ctx context.Context, d time.Duration) error {
	if d < 0 {
		return specErr("GraceTime", "%v is negative", d)
	}
	if err := c.check(); err != nil {
		return err
	}
	c.mu.Lock()
	c.state.Spec.GraceTime = d
	err := c.saveState()
	if c.grace != nil {
		c.grace.Stop()
		c.grace = nil
	}
	c.mu.Unlock()
	c.armGrace()
	return err
}

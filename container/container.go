package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/paaskit/paaskit/container/internal/cgroups"
)

// Container is one container of a Manager. Its methods are safe for
// concurrent use. A Container value stays usable after its Manager is
// closed only for Handle; the others return ErrClosed.
//
// Grace time: when the spec has a GraceTime, every method call on the
// container or its processes counts as activity, and so does every
// process being streamed or waited on; the Manager destroys the container
// when GraceTime passes with no activity and nothing streamed or waited.
type Container struct {
	m      *Manager
	handle string
	dir    string
	log    *slog.Logger

	mu        sync.Mutex
	state     containerState
	cg        *cgroups.Cgroup
	oom       *cgroups.OOMWatcher
	grace     *time.Timer
	busy      int // processes being streamed or waited on
	destroyed bool
}

// Handle returns the container's handle.
func (c *Container) Handle() string { return c.handle }

// Path returns the container's directory in the depot.
func (c *Container) Path() string { return c.dir }

func (c *Container) socketPath() string { return filepath.Join(c.dir, "agent.sock") }

func (c *Container) processesDir() string { return filepath.Join(c.dir, "processes") }

func (c *Container) saveState() error {
	return writeState(c.dir, &c.state)
}

// check returns an error when the container may not be used.
func (c *Container) check() error {
	c.m.mu.Lock()
	closed := c.m.closed
	c.m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed {
		return fmt.Errorf("container %q: %w", c.handle, ErrNotFound)
	}
	c.touchLocked()
	return nil
}

// call sends one request to the agent and reads its response.
func (c *Container) call(ctx context.Context, req agentRequest) (*agentResponse, net.Conn, error) {
	var d net.Dialer
	conn, err := dialUnix(ctx, &d, c.socketPath())
	if err != nil {
		return nil, nil, fmt.Errorf("container %q: %w: %v", c.handle, ErrAgent, err)
	}
	stopDeadline := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stopDeadline()
	if err := writeMessage(conn, req); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("container %q: %w: %v", c.handle, ErrAgent, err)
	}
	var resp agentResponse
	if err := readMessage(newMessageReader(conn), &resp); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("container %q: %w: %v", c.handle, ErrAgent, err)
	}
	if err := resp.err(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("container %q: %w", c.handle, err)
	}
	return &resp, conn, nil
}

// ping reports whether the agent answers.
func (c *Container) ping(ctx context.Context) error {
	_, conn, err := c.call(ctx, agentRequest{Op: opPing})
	if err == nil {
		conn.Close()
	}
	return err
}

// Stop stops every process of the container: SIGTERM, then SIGKILL after
// the Manager's stop timeout (at once when kill is true). It returns when
// no process is left, or when ctx ends. Afterwards the container runs no
// new process (Run returns ErrStopped) but its files and the output of
// its processes stay until Destroy. Stop may be repeated.
func (c *Container) Stop(ctx context.Context, kill bool) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := c.runHooks(ctx, HookBeforeStop, c.m.opts.hooks.BeforeStop); err != nil {
		return err
	}
	_, conn, err := c.call(ctx, agentRequest{Op: opStop, Kill: kill, Grace: jsonDuration(c.m.opts.stopTimeout)})
	if err != nil {
		return err
	}
	conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.Phase = phaseStopped
	return c.saveState()
}

// Destroy kills every process of the container including its agent and
// releases everything it holds: its mounts (they live in the container's
// mount namespace and go with it), its cgroups in every controller and its
// directory in the depot. It runs to the end even when ctx is cancelled.
// Destroying a container that is already destroyed returns an error
// wrapping ErrNotFound; after the Manager was closed, ErrClosed (open a
// new Manager on the depot to destroy it).
func (c *Container) Destroy(ctx context.Context) error {
	c.m.mu.Lock()
	closed := c.m.closed
	c.m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	c.mu.Lock()
	if c.destroyed {
		c.mu.Unlock()
		return fmt.Errorf("container %q: %w", c.handle, ErrNotFound)
	}
	c.destroyed = true
	c.mu.Unlock()
	c.release()
	c.m.forget(c)
	if err := c.teardown(); err != nil {
		return fmt.Errorf("container %q: destroy: %w", c.handle, err)
	}
	// The container is gone whatever the hook says.
	return c.runHooks(context.WithoutCancel(ctx), HookAfterDestroy, c.m.opts.hooks.AfterDestroy)
}

// hookState is what the container's hooks learn of it.
func (c *Container) hookState(point string) HookState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return HookState{Point: point, Handle: c.handle, Spec: c.state.Spec, Pid: c.state.AgentPID, Rootfs: filepath.Join(c.dir, "rootfs"), Dir: c.dir}
}

// runHooks runs host hooks, their program output going to agent.log
// while the container's directory exists.
func (c *Container) runHooks(ctx context.Context, point string, hooks []Hook) error {
	if len(hooks) == 0 {
		return nil
	}
	log, err := os.OpenFile(filepath.Join(c.dir, "agent.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		log = nil // after destroy: the output is dropped
	} else {
		defer log.Close()
	}
	if err := runHooks(ctx, hooks, c.hookState(point), log); err != nil {
		return fmt.Errorf("container %q: %w", c.handle, err)
	}
	return nil
}

// release stops the container's timers and watchers (not its processes).
func (c *Container) release() {
	c.mu.Lock()
	if c.grace != nil {
		c.grace.Stop()
		c.grace = nil
	}
	oom := c.oom
	c.oom = nil
	c.mu.Unlock()
	if oom != nil {
		oom.Close()
	}
}

// teardown kills everything in the container's cgroup, waits for the
// agent to be gone, removes the cgroup and the depot directory. It works
// from whatever state is on disk, so it also cleans up half-created
// containers.
func (c *Container) teardown() error {
	var errs []error
	// The agent first, so that it starts no new process, then the
	// container's processes, all in its cgroup.
	if c.state.AgentPID > 0 {
		killAgent(c.state.AgentPID, c.state.AgentStartTime)
	}
	var cg *cgroups.Cgroup
	if c.state.CgroupPath != "" {
		loaded, err := cgroups.Load(c.state.CgroupPath)
		if err == nil {
			cg = loaded
		} else if !errors.Is(err, cgroups.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if cg != nil {
		if err := cg.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.state.AgentPID > 0 {
		if err := waitGone(c.state.AgentPID, c.state.AgentStartTime, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if cg != nil {
		if err := cg.Delete(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.netRelease(); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(c.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// agentAlive reports whether the recorded agent process still runs: same
// pid and same start time, so a recycled pid is not taken for it.
func (c *Container) agentAlive() bool {
	if c.state.AgentPID <= 0 {
		return false
	}
	st, err := procStartTime(c.state.AgentPID)
	return err == nil && st == c.state.AgentStartTime
}

// reattach takes over a running container found in the depot.
func (c *Container) reattach() error {
	ctx, cancel := context.WithTimeout(c.m.ctx, 5*time.Second)
	defer cancel()
	if err := c.ping(ctx); err != nil {
		return err
	}
	cg, err := cgroups.Load(c.state.CgroupPath)
	if err != nil {
		return err
	}
	c.cg = cg
	return c.watchOOM()
}

// watchOOM follows the cgroup's OOM kill counter: each rise records an
// "out of memory" event and tells the event handler.
func (c *Container) watchOOM() error {
	w, err := c.cg.WatchOOM()
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return nil
		}
		return err
	}
	c.oom = w
	// Kills that happened while no Manager watched.
	if n, err := c.cg.OOMKillCount(); err == nil {
		c.noteOOM(n)
	}
	go func() {
		for n := range w.C() {
			c.noteOOM(n)
		}
	}()
	return nil
}

func (c *Container) noteOOM(count uint64) {
	c.mu.Lock()
	if count <= c.state.OOMKills || c.destroyed {
		c.mu.Unlock()
		return
	}
	c.state.OOMKills = count
	c.state.Events = append(c.state.Events, EventOutOfMemory.String())
	if err := c.saveState(); err != nil {
		c.log.Warn("save state", "err", err)
	}
	c.mu.Unlock()
	c.m.events.send(Event{Handle: c.handle, Type: EventOutOfMemory, Time: time.Now()})
}

func (c *Container) touch() {
	c.mu.Lock()
	c.touchLocked()
	c.mu.Unlock()
}

func (c *Container) touchLocked() {
	if c.grace != nil && c.busy == 0 {
		c.grace.Reset(c.state.Spec.GraceTime)
	}
}

// armGrace starts the grace timer when the spec has a grace time.
func (c *Container) armGrace() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Spec.GraceTime <= 0 || c.destroyed {
		return
	}
	c.grace = time.AfterFunc(c.state.Spec.GraceTime, c.graceExpired)
}

func (c *Container) graceExpired() {
	c.mu.Lock()
	if c.busy > 0 || c.destroyed || c.grace == nil {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Destroy(ctx); err != nil && !errors.Is(err, ErrNotFound) {
		c.log.Warn("destroy after grace time", "err", err)
		return
	}
	c.m.events.send(Event{Handle: c.handle, Type: EventGraceExpired, Time: time.Now()})
}

// hold marks a process as streamed or waited on: the grace timer does not
// run until the returned function is called.
func (c *Container) hold() (unhold func()) {
	c.mu.Lock()
	c.busy++
	if c.grace != nil {
		c.grace.Stop()
	}
	c.mu.Unlock()
	return sync.OnceFunc(func() {
		c.mu.Lock()
		c.busy--
		if c.busy == 0 && c.grace != nil && !c.destroyed {
			c.grace.Reset(c.state.Spec.GraceTime)
		}
		c.mu.Unlock()
	})
}

// Info describes a container at one moment.
type Info struct {
	Handle        string
	State         string   // "active" or "stopped"
	Events        []string // e.g. "out of memory", oldest first
	ContainerPath string   // the container's directory in the depot
	ProcessIDs    []string // processes still running, sorted
	Properties    map[string]string
	CreatedAt     time.Time
	AgentPID      int // the agent's pid on the host
	// ContainerIP and HostIP (the gateway) are set with networking;
	// MappedPorts lists the NetIn mappings.
	ContainerIP, HostIP netip.Addr
	MappedPorts         []PortMapping
	HostInterface       string // the host end of the container's veth
	Memory              MemoryStat
	CPU                 CPUStat
	Pids                PidsStat
}

// MemoryStat is the memory use of a container, in bytes.
type MemoryStat struct {
	Usage    uint64 // memory charged to the container
	Limit    uint64 // its limit; 0: none
	OOMKills uint64 // processes the OOM killer killed in it
	// MemoryCounters are the container's own counters (memory.stat).
	MemoryCounters
	// Total are the hierarchical counters (memory.stat's total_* on
	// cgroup v1; the same as MemoryCounters on v2).
	Total MemoryCounters
}

// MemoryCounters are the counters of a cgroup's memory.stat, in bytes
// except the page fault counts.
type MemoryCounters struct {
	Cache, RSS, MappedFile, Swap                       uint64
	PgFault, PgMajFault                                uint64
	InactiveAnon, ActiveAnon, InactiveFile, ActiveFile uint64
	Unevictable                                        uint64
}

// CPUStat is the CPU time a container used, in nanoseconds.
type CPUStat struct{ Usage, User, System uint64 }

// PidsStat is the number of processes (and threads) of a container and
// its limit (0: none).
type PidsStat struct{ Current, Max uint64 }

// Info returns what the container is doing and what it uses.
func (c *Container) Info(ctx context.Context) (*Info, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	info := &Info{
		Handle:        c.handle,
		State:         c.state.Phase,
		Events:        slices.Clone(c.state.Events),
		ContainerPath: c.dir,
		Properties:    maps.Clone(c.state.Spec.Properties),
		CreatedAt:     c.state.CreatedAt,
		AgentPID:      c.state.AgentPID,
	}
	if ns := c.state.Net; ns != nil {
		info.ContainerIP = ns.IP
		info.HostInterface = ns.Veth
		info.MappedPorts = slices.Clone(ns.Mappings)
		if c.m.net != nil {
			info.HostIP = c.m.net.ipam.gateway()
		}
	}
	cg := c.cg
	c.mu.Unlock()
	resp, conn, err := c.call(ctx, agentRequest{Op: opList})
	if err != nil {
		return nil, err
	}
	conn.Close()
	for _, p := range resp.Processes {
		info.ProcessIDs = append(info.ProcessIDs, p.ID)
	}
	slices.Sort(info.ProcessIDs)
	if cg != nil {
		st, err := cg.Stats()
		if err != nil {
			return nil, fmt.Errorf("container %q: stats: %w", c.handle, err)
		}
		info.Memory = MemoryStat{
			Usage: st.Memory.Usage, Limit: st.Memory.Limit, OOMKills: st.Memory.OOMKill,
			MemoryCounters: MemoryCounters(st.Memory.MemoryCounters),
			Total:          MemoryCounters(st.Memory.Total),
		}
		info.CPU = CPUStat{Usage: st.CPU.UsageNS, User: st.CPU.UserNS, System: st.CPU.SystemNS}
		info.Pids = PidsStat{Current: st.Pids.Current, Max: st.Pids.Limit}
	}
	return info, nil
}

// Properties returns a copy of the container's properties.
func (c *Container) Properties() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.state.Spec.Properties)
}

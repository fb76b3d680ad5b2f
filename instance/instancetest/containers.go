// Package instancetest has fakes for testing code that uses package
// instance without root or real containers: Containers, a container
// backend that records every call and lets a test make processes exit,
// be OOM-killed or serve HTTP; Droplets, a droplet source that counts its
// downloads; and NewDroplet, which builds droplet tarballs in memory.
//
// The fakes are safe for concurrent use. They outlive an instance
// Manager: a second Manager given the same fakes finds the containers
// and processes of the first, as a restarted DEA finds its containers.
package instancetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/instance"
)

// Call is one call made to the fake backend.
type Call struct {
	Op     string // "create", "lookup", "list", "netin", "netout", "run", "attach", "info", "stop", "destroy", "signal"
	Handle string
	// Detail: the process id (run, attach, signal), "kill" (stop with
	// kill), the signal number.
	Detail string
}

// Containers is a fake instance.Containers. Its zero value is not
// usable; use NewContainers.
type Containers struct {
	mu         sync.Mutex
	containers map[string]*Container
	calls      []Call
	nextPort   uint16
	nextPID    int
	fail       map[string]error
	recording  bool
	handler    http.Handler
	onRun      func(c *Container, p *Process)
	hangStop   bool
}

// SetHandler sets a handler served over HTTP on each process's mapped
// host port (on 127.0.0.1) while the process runs, so that port and HTTP
// health checks can pass. Without one nothing listens. It applies to
// processes run afterwards.
func (f *Containers) SetHandler(h http.Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
}

// SetOnRun sets a function called (outside the fake's lock) after each
// process started, for example to make it exit at once.
func (f *Containers) SetOnRun(fn func(c *Container, p *Process)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onRun = fn
}

// SetHangStop makes Stop without kill block until its context ends (a
// container that will not stop), or work again.
func (f *Containers) SetHangStop(hang bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangStop = hang
}

// NewContainers returns an empty fake backend that records calls.
func NewContainers() *Containers {
	return &Containers{
		containers: make(map[string]*Container),
		nextPort:   61000,
		nextPID:    100,
		fail:       make(map[string]error),
		recording:  true,
	}
}

// SetRecording turns the recording of calls on (the default) or off (for
// benchmarks with many instances).
func (f *Containers) SetRecording(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recording = on
}

// FailNext makes the next call of op ("create", "netin", "run", "info",
// "stop", "destroy", "lookup", "attach") return err.
func (f *Containers) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = err
}

// Calls returns the calls made so far, in order.
func (f *Containers) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Ops returns the Op of each call made to the container with that
// handle, in order.
func (f *Containers) Ops(handle string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.Handle == handle {
			out = append(out, c.Op)
		}
	}
	return out
}

// Container returns the container with that handle, destroyed ones
// included, or nil.
func (f *Containers) Container(handle string) *Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.containers[handle]
}

// Live returns the handles of the containers not destroyed, sorted.
func (f *Containers) Live() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for h, c := range f.containers {
		if !c.destroyed {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// Add makes a running container with that handle and properties, as if
// made by another program (to test the orphaned containers reaper).
func (f *Containers) Add(handle string, props map[string]string) *Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.newContainerLocked(container.Spec{Handle: handle, Properties: props})
	return c
}

// record notes a call and returns the error FailNext set for op.
func (f *Containers) record(op, handle, detail string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recording {
		f.calls = append(f.calls, Call{Op: op, Handle: handle, Detail: detail})
	}
	if err, ok := f.fail[op]; ok {
		delete(f.fail, op)
		return err
	}
	return nil
}

func (f *Containers) newContainerLocked(spec container.Spec) *Container {
	c := &Container{f: f, spec: spec, processes: make(map[string]*Process), created: time.Now()}
	f.containers[spec.Handle] = c
	return c
}

// Create implements instance.Containers.
func (f *Containers) Create(ctx context.Context, spec container.Spec) (instance.Container, error) {
	if err := f.record("create", spec.Handle, ""); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[spec.Handle]; ok && !c.destroyed {
		return nil, fmt.Errorf("container %q: %w", spec.Handle, container.ErrAlreadyExists)
	}
	spec.Properties = maps.Clone(spec.Properties)
	return f.newContainerLocked(spec), nil
}

// Lookup implements instance.Containers.
func (f *Containers) Lookup(_ context.Context, handle string) (instance.Container, error) {
	if err := f.record("lookup", handle, ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[handle]
	if !ok || c.destroyed {
		return nil, fmt.Errorf("container %q: %w", handle, container.ErrNotFound)
	}
	return c, nil
}

// List implements instance.Containers.
func (f *Containers) List(_ context.Context, filter map[string]string) ([]string, error) {
	if err := f.record("list", "", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for h, c := range f.containers {
		if c.destroyed {
			continue
		}
		match := true
		for k, v := range filter {
			if c.spec.Properties[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Container is a fake container.
type Container struct {
	f       *Containers
	spec    container.Spec
	created time.Time

	// guarded by f.mu
	processes map[string]*Process
	ports     []container.PortMapping
	netOut    []container.NetOutRule
	events    []string
	stopped   bool
	destroyed bool
	memory    container.MemoryStat
	cpu       container.CPUStat
}

// Handle implements instance.Container.
func (c *Container) Handle() string { return c.spec.Handle }

// Spec returns the spec the container was created with.
func (c *Container) Spec() container.Spec { return c.spec }

// Destroyed reports whether Destroy was called.
func (c *Container) Destroyed() bool {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return c.destroyed
}

// Stopped reports whether Stop was called.
func (c *Container) Stopped() bool {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return c.stopped
}

// Process returns the process with that id, or nil.
func (c *Container) Process(id string) *Process {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return c.processes[id]
}

// NetOutRules returns the egress rules applied.
func (c *Container) NetOutRules() []container.NetOutRule {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return slices.Clone(c.netOut)
}

// SetUsage sets the memory and CPU figures Info reports.
func (c *Container) SetUsage(mem container.MemoryStat, cpu container.CPUStat) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.memory, c.cpu = mem, cpu
}

func (c *Container) check() error {
	if c.destroyed {
		return fmt.Errorf("container %q: %w", c.spec.Handle, container.ErrNotFound)
	}
	return nil
}

// NetIn implements instance.Container: a host port of 0 takes a free
// port of the host's loopback (so that Handler can listen on it), a
// container port of 0 means the host port.
func (c *Container) NetIn(ctx context.Context, hostPort, containerPort uint16) (container.PortMapping, error) {
	if err := c.f.record("netin", c.spec.Handle, ""); err != nil {
		return container.PortMapping{}, err
	}
	if hostPort == 0 {
		p, err := freePort()
		if err != nil {
			return container.PortMapping{}, err
		}
		hostPort = p
	}
	if containerPort == 0 {
		containerPort = hostPort
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if err := c.check(); err != nil {
		return container.PortMapping{}, err
	}
	pm := container.PortMapping{HostPort: hostPort, ContainerPort: containerPort}
	c.ports = append(c.ports, pm)
	return pm, nil
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() (uint16, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// NetOut implements instance.Container.
func (c *Container) NetOut(ctx context.Context, rule container.NetOutRule) error {
	if err := c.f.record("netout", c.spec.Handle, ""); err != nil {
		return err
	}
	if err := rule.Validate(); err != nil {
		return err
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if err := c.check(); err != nil {
		return err
	}
	c.netOut = append(c.netOut, rule)
	return nil
}

// Run implements instance.Container. The process runs until Exit, OOM,
// Stop or Destroy.
func (c *Container) Run(ctx context.Context, spec container.ProcessSpec) (instance.Process, error) {
	if err := c.f.record("run", c.spec.Handle, spec.ID); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	c.f.mu.Lock()
	if err := c.check(); err != nil {
		c.f.mu.Unlock()
		return nil, err
	}
	if c.stopped {
		c.f.mu.Unlock()
		return nil, fmt.Errorf("container %q: %w", c.spec.Handle, container.ErrStopped)
	}
	if _, ok := c.processes[spec.ID]; ok {
		c.f.mu.Unlock()
		return nil, fmt.Errorf("container %q: process %q: %w", c.spec.Handle, spec.ID, container.ErrAlreadyExists)
	}
	c.f.nextPID++
	p := &Process{c: c, spec: spec, pid: c.f.nextPID, done: make(chan struct{})}
	c.processes[spec.ID] = p
	handler, onRun := c.f.handler, c.f.onRun
	var port uint16
	if len(c.ports) > 0 {
		port = c.ports[0].HostPort
	}
	c.f.mu.Unlock()
	if handler != nil && port != 0 {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			srv := &http.Server{Handler: handler}
			go srv.Serve(l)
			go func() { <-p.done; srv.Close() }()
		}
	}
	if onRun != nil {
		onRun(c, p)
	}
	return p, nil
}

// Attach implements instance.Container: it copies the process's output
// to the writers once it has exited (the fake does not stream).
func (c *Container) Attach(ctx context.Context, id string, stdout, stderr io.Writer) (instance.Process, error) {
	if err := c.f.record("attach", c.spec.Handle, id); err != nil {
		return nil, err
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if err := c.check(); err != nil {
		return nil, err
	}
	p, ok := c.processes[id]
	if !ok {
		return nil, fmt.Errorf("container %q: process %q: %w", c.spec.Handle, id, container.ErrNotFound)
	}
	if stdout == nil && stderr == nil {
		return p, nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-p.done
		c.f.mu.Lock()
		o, e := bytes.Clone(p.stdout.Bytes()), bytes.Clone(p.stderr.Bytes())
		c.f.mu.Unlock()
		if stdout != nil {
			stdout.Write(o)
		}
		if stderr != nil {
			stderr.Write(e)
		}
	}()
	return &attached{Process: p, done: done}, nil
}

// Info implements instance.Container.
func (c *Container) Info(ctx context.Context) (*container.Info, error) {
	if err := c.f.record("info", c.spec.Handle, ""); err != nil {
		return nil, err
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if err := c.check(); err != nil {
		return nil, err
	}
	info := &container.Info{
		Handle:        c.spec.Handle,
		State:         "active",
		Events:        slices.Clone(c.events),
		ContainerPath: "/fake/depot/" + c.spec.Handle,
		Properties:    maps.Clone(c.spec.Properties),
		CreatedAt:     c.created,
		MappedPorts:   slices.Clone(c.ports),
		Memory:        c.memory,
		CPU:           c.cpu,
	}
	if c.stopped {
		info.State = "stopped"
	}
	for id, p := range c.processes {
		if !p.exitedLocked() {
			info.ProcessIDs = append(info.ProcessIDs, id)
		}
	}
	slices.Sort(info.ProcessIDs)
	return info, nil
}

// Stop implements instance.Container: running processes exit with 143
// (TERM), or 137 with kill. With SetHangStop it blocks until ctx ends.
func (c *Container) Stop(ctx context.Context, kill bool) error {
	detail := ""
	if kill {
		detail = "kill"
	}
	if err := c.f.record("stop", c.spec.Handle, detail); err != nil {
		return err
	}
	c.f.mu.Lock()
	hang := c.f.hangStop
	c.f.mu.Unlock()
	if hang && !kill {
		<-ctx.Done()
		return ctx.Err()
	}
	c.f.mu.Lock()
	if err := c.check(); err != nil {
		c.f.mu.Unlock()
		return err
	}
	c.stopped = true
	procs := slices.Collect(maps.Values(c.processes))
	c.f.mu.Unlock()
	code, sig := 143, syscall.SIGTERM
	if kill {
		code, sig = 137, syscall.SIGKILL
	}
	for _, p := range procs {
		p.exit(container.ExitStatus{Code: code, Signal: int(sig)})
	}
	return nil
}

// Destroy implements instance.Container.
func (c *Container) Destroy(ctx context.Context) error {
	if err := c.f.record("destroy", c.spec.Handle, ""); err != nil {
		return err
	}
	c.f.mu.Lock()
	if err := c.check(); err != nil {
		c.f.mu.Unlock()
		return err
	}
	c.destroyed = true
	procs := slices.Collect(maps.Values(c.processes))
	c.f.mu.Unlock()
	for _, p := range procs {
		p.exit(container.ExitStatus{Code: 137, Signal: int(syscall.SIGKILL)})
	}
	return nil
}

// Process is a fake process. It runs until Exit, OOM, or its container
// is stopped or destroyed.
type Process struct {
	c    *Container
	spec container.ProcessSpec
	pid  int
	done chan struct{}

	// guarded by c.f.mu
	status         container.ExitStatus
	exited         bool
	stdout, stderr bytes.Buffer
}

// ID implements instance.Process.
func (p *Process) ID() string { return p.spec.ID }

// PID implements instance.Process.
func (p *Process) PID() int { return p.pid }

// Spec returns the spec the process was run with.
func (p *Process) Spec() container.ProcessSpec { return p.spec }

// Env returns the process's environment as a map.
func (p *Process) Env() map[string]string {
	env := make(map[string]string)
	for _, kv := range p.spec.Env {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				env[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	return env
}

// Write appends to the process's kept output.
func (p *Process) Write(stdout, stderr string) {
	p.c.f.mu.Lock()
	defer p.c.f.mu.Unlock()
	p.stdout.WriteString(stdout)
	p.stderr.WriteString(stderr)
}

// Exit makes the process exit with code.
func (p *Process) Exit(code int) { p.exit(container.ExitStatus{Code: code}) }

// OOM makes the process die as killed by the OOM killer: status 137,
// OOMKilled, and an "out of memory" event on its container.
func (p *Process) OOM() {
	p.c.f.mu.Lock()
	p.c.events = append(p.c.events, "out of memory")
	p.c.f.mu.Unlock()
	p.exit(container.ExitStatus{Code: 137, Signal: int(syscall.SIGKILL), OOMKilled: true})
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	p.c.f.mu.Lock()
	defer p.c.f.mu.Unlock()
	return p.exitedLocked()
}

func (p *Process) exitedLocked() bool { return p.exited }

func (p *Process) exit(st container.ExitStatus) {
	p.c.f.mu.Lock()
	defer p.c.f.mu.Unlock()
	if p.exited {
		return
	}
	st.ExitedAt = time.Now()
	p.status, p.exited = st, true
	close(p.done)
}

// Status implements instance.Process.
func (p *Process) Status(ctx context.Context) (container.ExitStatus, error) {
	select {
	case <-p.done:
		p.c.f.mu.Lock()
		defer p.c.f.mu.Unlock()
		return p.status, nil
	case <-ctx.Done():
		return container.ExitStatus{}, ctx.Err()
	}
}

// Signal implements instance.Process: TERM, KILL and INT end the
// process with 128 + the signal.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	if err := p.c.f.record("signal", p.c.spec.Handle, fmt.Sprint(int(sig))); err != nil {
		return err
	}
	if p.Exited() {
		return fmt.Errorf("process %q: %w", p.spec.ID, container.ErrNotFound)
	}
	switch sig {
	case syscall.SIGTERM, syscall.SIGKILL, syscall.SIGINT:
		p.exit(container.ExitStatus{Code: 128 + int(sig), Signal: int(sig)})
	}
	return nil
}

// attached is a Process whose Status also waits for the output to be
// copied.
type attached struct {
	*Process
	done chan struct{}
}

func (a *attached) Status(ctx context.Context) (container.ExitStatus, error) {
	st, err := a.Process.Status(ctx)
	if err != nil {
		return st, err
	}
	select {
	case <-a.done:
		return st, nil
	case <-ctx.Done():
		return container.ExitStatus{}, ctx.Err()
	}
}

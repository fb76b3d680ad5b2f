package instance

import (
	"context"
	"io"
	"syscall"

	"github.com/paaskit/paaskit/container"
)

// ContainerBackend adapts a *container.Manager to Containers. It is safe
// for concurrent use, like the Manager.
type ContainerBackend struct {
	m *container.Manager
}

// NewContainerBackend returns the Containers of m. It does not take
// ownership: close m yourself after the instance Manager.
func NewContainerBackend(m *container.Manager) *ContainerBackend {
	return &ContainerBackend{m: m}
}

// Create implements Containers.
func (b *ContainerBackend) Create(ctx context.Context, spec container.Spec) (Container, error) {
	c, err := b.m.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return backendContainer{c}, nil
}

// Lookup implements Containers.
func (b *ContainerBackend) Lookup(_ context.Context, handle string) (Container, error) {
	c, err := b.m.Lookup(handle)
	if err != nil {
		return nil, err
	}
	return backendContainer{c}, nil
}

// List implements Containers.
func (b *ContainerBackend) List(ctx context.Context, filter map[string]string) ([]string, error) {
	cs, err := b.m.List(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Handle()
	}
	return out, nil
}

type backendContainer struct{ c *container.Container }

func (b backendContainer) Handle() string { return b.c.Handle() }

func (b backendContainer) NetIn(ctx context.Context, hostPort, containerPort uint16) (container.PortMapping, error) {
	return b.c.NetIn(ctx, hostPort, containerPort)
}

func (b backendContainer) NetOut(ctx context.Context, rule container.NetOutRule) error {
	return b.c.NetOut(ctx, rule)
}

func (b backendContainer) Run(ctx context.Context, spec container.ProcessSpec) (Process, error) {
	p, err := b.c.Run(ctx, spec, container.ProcessIO{})
	if err != nil {
		return nil, err
	}
	return backendProcess{p}, nil
}

func (b backendContainer) Attach(ctx context.Context, id string, stdout, stderr io.Writer) (Process, error) {
	p, err := b.c.Attach(ctx, id, container.ProcessIO{Stdout: stdout, Stderr: stderr})
	if err != nil {
		return nil, err
	}
	return backendProcess{p}, nil
}

func (b backendContainer) Info(ctx context.Context) (*container.Info, error) { return b.c.Info(ctx) }

func (b backendContainer) Stop(ctx context.Context, kill bool) error { return b.c.Stop(ctx, kill) }

func (b backendContainer) Destroy(ctx context.Context) error { return b.c.Destroy(ctx) }

type backendProcess struct{ p *container.Process }

func (b backendProcess) ID() string { return b.p.ID() }

func (b backendProcess) PID() int { return b.p.PID() }

func (b backendProcess) Status(ctx context.Context) (container.ExitStatus, error) {
	return b.p.Status(ctx)
}

func (b backendProcess) Signal(ctx context.Context, sig syscall.Signal) error {
	return b.p.Signal(ctx, sig)
}

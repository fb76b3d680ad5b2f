package instance

import (
	"context"
	"io"
	"syscall"

	"github.com/paaskit/paaskit/container"
)

// Containers is what an instance Manager needs of a container manager.
// NewContainerBackend adapts a *container.Manager; package instancetest
// has a fake. The value types (container.Spec, container.ProcessSpec,
// container.Info, …) are package container's.
type Containers interface {
	// Create makes and starts a container. On failure nothing is left.
	Create(ctx context.Context, spec container.Spec) (Container, error)
	// Lookup finds a container by handle, also one created before the
	// program restarted. An unknown handle returns an error wrapping
	// container.ErrNotFound.
	Lookup(ctx context.Context, handle string) (Container, error)
	// List returns the handles of the containers whose properties
	// include every key and value of filter.
	List(ctx context.Context, filter map[string]string) ([]string, error)
}

// Container is one container.
type Container interface {
	Handle() string
	// NetIn forwards a host port to a container port (0, 0: a port of the
	// pool, the same number on both sides).
	NetIn(ctx context.Context, hostPort, containerPort uint16) (container.PortMapping, error)
	// NetOut allows egress (see container.NetOutRule).
	NetOut(ctx context.Context, rule container.NetOutRule) error
	// Run starts a process and returns at once; its output is kept by
	// the container (see Attach).
	Run(ctx context.Context, spec container.ProcessSpec) (Process, error)
	// Attach finds a process by id, running or exited, also one started
	// before the program restarted, and copies its output from the start
	// to stdout and stderr (nil discards) until it exits. An unknown id
	// returns an error wrapping container.ErrNotFound.
	Attach(ctx context.Context, id string, stdout, stderr io.Writer) (Process, error)
	// Info describes the container; Events holds "out of memory" after an
	// OOM kill, ProcessIDs the processes still running.
	Info(ctx context.Context) (*container.Info, error)
	// Stop sends TERM to every process, then KILL after the container's
	// grace time (at once with kill), and returns when none is left.
	Stop(ctx context.Context, kill bool) error
	// Destroy removes the container and everything it holds. A container
	// already gone returns an error wrapping container.ErrNotFound.
	Destroy(ctx context.Context) error
}

// Process is a process in a container.
type Process interface {
	ID() string
	// PID is the process's pid in the container, or 0 when unknown.
	PID() int
	// Status waits for the process to exit and returns how it ended;
	// ctx bounds only the wait.
	Status(ctx context.Context) (container.ExitStatus, error)
	// Signal sends sig to the process.
	Signal(ctx context.Context, sig syscall.Signal) error
}

// DropletSource is what an instance Manager needs of a droplet registry:
// the local path of a droplet's tarball. package droplet's Registry
// does this (download with the SHA-1 verified, one transfer shared by
// concurrent requests); package instancetest has a fake. The Manager
// shares one Fetch between concurrent starts of the same droplet anyway.
type DropletSource interface {
	// Fetch makes the droplet with that SHA-1 (hex) available on local
	// disk, downloading it from uri when needed, and returns the path of
	// its gzip tarball. The file stays until Remove.
	Fetch(ctx context.Context, sha1, uri string) (path string, err error)
}

// DropletStore is a DropletSource that can also list and remove its
// droplets; when the Manager's source is one, the unreferenced droplets
// reaper removes droplets no instance or staging task uses.
type DropletStore interface {
	DropletSource
	// SHA1s returns the droplets on local disk.
	SHA1s(ctx context.Context) ([]string, error)
	// Remove deletes a droplet; removing one that is not there succeeds.
	Remove(ctx context.Context, sha1 string) error
}

package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
)

// Create a container on a warden daemon, run a command in it and
// destroy it. Needs a running daemon, so it has no output to check.
func Example() {
	ctx := context.Background()
	cl, err := client.New("/run/warden.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	c, err := cl.Create(ctx, container.Spec{RootFS: "base", Limits: container.Limits{MemoryBytes: 256 << 20}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy(ctx)
	p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/echo", Args: []string{"hello"}},
		container.ProcessIO{Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	code, err := p.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit status", code)
}

// Code written against a small interface of its own works with an
// in-process Manager's containers and with a daemon's.
func Example_interface() {
	type stopper interface {
		Handle() string
		Stop(ctx context.Context, kill bool) error
		Destroy(ctx context.Context) error
	}
	retire := func(ctx context.Context, c stopper) error {
		if err := c.Stop(ctx, false); err != nil && !errors.Is(err, container.ErrNotFound) {
			return fmt.Errorf("retire %s: %w", c.Handle(), err)
		}
		return c.Destroy(ctx)
	}
	var _ stopper = (*container.Container)(nil) // in process
	var _ stopper = (*client.Container)(nil)    // through a daemon
	_ = retire
}

// Survive a daemon restart: re-attach from where the output stopped.
func ExampleProcess_Reattach() {
	ctx := context.Background()
	cl, err := client.New("/run/warden.sock", client.WithReattach(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	c, err := cl.Lookup(ctx, "web-0")
	if err != nil {
		log.Fatal(err)
	}
	p, err := c.Attach(ctx, "app", container.ProcessIO{Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	code, err := p.Wait(ctx)
	for errors.Is(err, client.ErrDetached) { // without WithReattach: by hand
		if p, err = p.Reattach(ctx); err == nil {
			code, err = p.Wait(ctx)
		}
	}
	fmt.Println(code, err)
}

package container_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/paaskit/paaskit/container"
)

// Create a container with limits, run a process in it and wait for it.
// Needs Linux and root, so it has no output to check.
func Example() {
	// First thing in main: the container agent is this program re-executed.
	if container.Init() {
		return
	}
	ctx := context.Background()
	m, err := container.New("/var/lib/myruntime/depot")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // containers keep running

	c, err := m.Create(ctx, container.Spec{
		RootFS:     "/var/lib/myruntime/stacks/base",
		Limits:     container.Limits{MemoryBytes: 256 << 20, PidsMax: 512},
		Properties: map[string]string{"app": "web"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy(ctx)

	p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/sh", Args: []string{"-c", "echo hello"}, User: "vcap"},
		container.ProcessIO{Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	code, err := p.Wait(ctx)
	if errors.Is(err, container.ErrOutOfMemory) {
		fmt.Println("killed for memory")
	}
	fmt.Println("exit status", code)
}

// After a restart, a new Manager on the same depot finds the containers
// and re-attaches to a process by its id, getting all of its output.
func ExampleContainer_Attach() {
	ctx := context.Background()
	m, err := container.New("/var/lib/myruntime/depot")
	if err != nil {
		log.Fatal(err)
	}
	c, err := m.Lookup("web-0")
	if err != nil {
		log.Fatal(err)
	}
	p, err := c.Attach(ctx, "app", container.ProcessIO{Stdout: os.Stdout})
	if err != nil {
		log.Fatal(err)
	}
	code, _ := p.Wait(ctx)
	fmt.Println("exit status", code)
}

// Spec validation needs neither Linux nor root.
func ExampleSpec_Validate() {
	err := (&container.Spec{RootFS: "/stacks/base", Handle: "../escape"}).Validate()
	var se *container.SpecError
	if errors.As(err, &se) {
		fmt.Println(se.Field)
	}
	fmt.Println(errors.Is(err, container.ErrInvalidSpec))
	// Output:
	// Handle
	// true
}

// Package client is the Go client of a warden server (package
// container/server): it drives the containers of a daemon on another
// process, or another host's unix socket forwarded, with the same methods
// and the same errors as an in-process container.Manager.
//
//	cl, err := client.New("/run/warden.sock")
//	c, err := cl.Create(ctx, container.Spec{RootFS: "/var/lib/stacks/base"})
//	p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/echo", Args: []string{"hi"}},
//		container.ProcessIO{Stdout: os.Stdout})
//	code, err := p.Wait(ctx)
//
// # Mirroring the container package
//
// Client mirrors container.Manager, Container mirrors container.Container
// and Process mirrors container.Process, so that code written against a
// small interface of its own (the style of this project: consumers declare
// what they need) works with either. Methods that only read memory in the
// container package ask the server here and so take a context and return
// an error: Client.Lookup and Container.Limits. Errors are the container
// package's sentinels and typed errors, rebuilt from the codes the server
// sends (errors.Is(err, container.ErrNotFound), errors.As into a
// *container.SpecError, errors.Is(err, fs.ErrNotExist) for a missing path,
// errors.Is(err, syscall.ENOSPC) …), plus ErrUnavailable when the server
// cannot be reached, ErrDetached when a process stream ends early and
// ErrProtocol when an answer makes no sense.
//
// # Process streams
//
// Run and Attach hold one connection per process, carrying its stdin to
// the server and its stdout, stderr and exit status back (see package
// wire for the framing). When the server shuts down or restarts, the
// stream ends early: Wait returns ErrDetached, the process runs on, and
// Process.Reattach (or Container.Attach from Process.Offsets) continues
// the output where it stopped; WithReattach makes streams do that by
// themselves. Standard input is not re-attached.
//
// # Concurrency and lifetimes
//
// Client, Container and Process are safe for concurrent use. A Client
// keeps a few idle connections (WithMaxIdleConns); Close releases them and
// detaches the Client's process streams. Containers are plain handles
// and need no closing; a Process needs none either once Wait returned.
package client

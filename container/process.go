package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// ProcessIO connects a process's streams. Every field is optional.
type ProcessIO struct {
	// Stdin is copied to the process's standard input, which is closed
	// when Stdin returns EOF. Only Run uses it; without it the process
	// reads /dev/null.
	Stdin io.Reader
	// Stdout and Stderr receive the process's output, from the offsets
	// below, following it live until the process has exited and all its
	// output was delivered.
	Stdout, Stderr io.Writer
	// StdoutOffset and StderrOffset skip that many bytes of the kept
	// output (Attach; Run starts at 0).
	StdoutOffset, StderrOffset int64
}

// Process is a process started by Run or found by Attach.
type Process struct {
	c    *Container
	id   string
	pid  int
	done chan struct{}
	st   ExitStatus
	err  error
}

// ID returns the process's id.
func (p *Process) ID() string { return p.id }

// PID returns the process's pid in the container's pid namespace, or 0
// when it was not known (a process found by Attach after it exited).
func (p *Process) PID() int { return p.pid }

// Run starts a process in the container and returns at once. Its output
// is kept in the depot (see WithOutputLimit) and streamed to pio's writers;
// Wait returns its exit status. ctx bounds the start only: the process
// runs until it exits or is signalled, whatever happens to ctx, to the
// Manager or to the program that owns the Manager.
//
// Errors: a *SpecError for an invalid spec (also a program that does not
// exist in the container, or an unknown user); ErrAlreadyExists when the
// ID is taken (by a running or an exited process); ErrStopped after Stop.
func (c *Container) Run(ctx context.Context, spec ProcessSpec, pio ProcessIO) (*Process, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	if spec.ID == "" {
		spec.ID = randomID()
	}
	req := agentRequest{Op: opRun, Process: &agentProc{
		ID: spec.ID, Path: spec.Path, Args: spec.Args, Env: spec.Env, Dir: spec.Dir,
		User: spec.User, Limits: spec.Limits, Stdin: pio.Stdin != nil, TTY: spec.TTY,
	}}
	resp, conn, err := c.call(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("run %q: %w", spec.ID, err)
	}
	if pio.Stdin != nil {
		go func() {
			io.Copy(conn, pio.Stdin)
			conn.(*net.UnixConn).CloseWrite()
			conn.Close()
		}()
	} else {
		conn.Close()
	}
	pio.StdoutOffset, pio.StderrOffset = 0, 0
	return c.startFollow(spec.ID, resp.PID, pio), nil
}

// Attach finds a process of the container by id, running or exited, also
// one started before the Manager was restarted, and streams its output to
// pio's writers from the given offsets: what it printed so far, then live.
// An unknown id returns an error wrapping ErrNotFound.
func (c *Container) Attach(ctx context.Context, id string, pio ProcessIO) (*Process, error) {
	if err := validName("ID", id); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.processesDir(), id, "stdout")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("container %q: process %q: %w", c.handle, id, ErrNotFound)
		}
		return nil, err
	}
	pid := 0
	if resp, conn, err := c.call(ctx, agentRequest{Op: opList}); err == nil {
		conn.Close()
		for _, p := range resp.Processes {
			if p.ID == id {
				pid = p.PID
			}
		}
	}
	return c.startFollow(id, pid, pio), nil
}

func (c *Container) startFollow(id string, pid int, pio ProcessIO) *Process {
	p := &Process{c: c, id: id, pid: pid, done: make(chan struct{})}
	unhold := c.hold()
	go func() {
		defer close(p.done)
		defer unhold()
		p.st, p.err = c.m.follow(c.m.ctx, filepath.Join(c.processesDir(), id), pio)
	}()
	return p
}

// Wait waits until the process has exited and its output was delivered to
// the ProcessIO writers, and returns its exit code (128 + signal number
// when a signal killed it). A process killed by the OOM killer returns 137
// and an error wrapping ErrOutOfMemory. Wait may be called many times and
// from many goroutines; ctx bounds only this call.
func (p *Process) Wait(ctx context.Context) (int, error) {
	st, err := p.Status(ctx)
	if err != nil {
		return -1, err
	}
	if st.OOMKilled {
		return st.Code, fmt.Errorf("container %q: process %q: %w", p.c.handle, p.id, ErrOutOfMemory)
	}
	return st.Code, nil
}

// Status is Wait with the whole ExitStatus.
func (p *Process) Status(ctx context.Context) (ExitStatus, error) {
	select {
	case <-p.done:
		return p.st, p.err
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// Signal sends sig to the process. A process that already exited returns
// an error wrapping ErrNotFound.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	if err := p.c.check(); err != nil {
		return err
	}
	_, conn, err := p.c.call(ctx, agentRequest{Op: opSignal, ID: p.id, Signal: int(sig)})
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

// exitFile is the name of a process's exit status file, written by the
// agent (atomically, after the process's output) when the process exits.
const exitFile = "exit.json"

// SetTTY changes the window size of the process's terminal; the process
// gets SIGWINCH. A process without a terminal returns an error wrapping
// ErrInvalidSpec, one
// that exited an error wrapping ErrNotFound.
func (p *Process) SetTTY(ctx context.Context, ts TTYSpec) error {
	if err := p.c.check(); err != nil {
		return err
	}
	_, conn, err := p.c.call(ctx, agentRequest{Op: opResize, ID: p.id, TTY: &ts})
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

// readExit reads a process's exit status file; fs.ErrNotExist while it
// runs.
func readExit(dir string) (ExitStatus, error) {
	var st ExitStatus
	b, err := os.ReadFile(filepath.Join(dir, exitFile))
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(b, &st)
	return st, err
}

// drain copies what f has past its offset to w (discarding when w is nil).
func drain(f *os.File, w io.Writer) error {
	if w == nil {
		w = io.Discard
	}
	_, err := io.Copy(w, f)
	return err
}

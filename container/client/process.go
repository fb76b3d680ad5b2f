package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
)

// Process is a process started by Container.Run or found by
// Container.Attach. Its methods mirror those of container.Process; it is
// safe for concurrent use.
//
// A Process reads its stream on a goroutine of its own until the process
// exits, the stream breaks (see WithReattach) or Close is called.
type Process struct {
	ct  *Container
	id  string
	pid int
	pio container.ProcessIO

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when st and err are final
	st     container.ExitStatus
	err    error

	mu   sync.Mutex
	conn net.Conn // the current stream
	wmu  sync.Mutex
	off  [2]int64 // absolute offsets of stdout and stderr delivered
}

func (c *Client) startProcess(ct *Container, id string, pid int, pio container.ProcessIO, conn net.Conn, br *bufio.Reader) *Process {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Process{
		ct: ct, id: id, pid: pid, pio: pio,
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}),
		conn: conn,
		off:  [2]int64{pio.StdoutOffset, pio.StderrOffset},
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
	} else {
		c.procs[p] = struct{}{}
		c.mu.Unlock()
	}
	if pio.Stdin != nil {
		go p.copyStdin(conn, pio.Stdin)
	}
	go p.follow(conn, br)
	return p
}

// ID returns the process's id.
func (p *Process) ID() string { return p.id }

// PID returns the process's pid in the container's pid namespace, or 0
// when it was not known.
func (p *Process) PID() int { return p.pid }

// Offsets returns how many bytes of the process's stdout and stderr were
// delivered to the writers so far, counted from the start of its output
// (so an Attach from these offsets continues without loss or repetition).
func (p *Process) Offsets() (stdout, stderr int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.off[0], p.off[1]
}

// Wait waits until the process has exited and its output was delivered
// to the writers, and returns its exit code, like container.Process.Wait:
// a process killed by the OOM killer returns 137 and an error wrapping
// container.ErrOutOfMemory. A stream that ends early returns an error
// wrapping ErrDetached; a writer's error ends the stream and is returned.
// Wait may be called many times and from many goroutines; ctx bounds
// only this call.
func (p *Process) Wait(ctx context.Context) (int, error) {
	st, err := p.Status(ctx)
	if err != nil {
		return -1, err
	}
	if st.OOMKilled {
		return st.Code, fmt.Errorf("container %q: process %q: %w", p.ct.handle, p.id, container.ErrOutOfMemory)
	}
	return st.Code, nil
}

// Status is Wait with the whole ExitStatus.
func (p *Process) Status(ctx context.Context) (container.ExitStatus, error) {
	select {
	case <-p.done:
		return p.st, p.err
	case <-ctx.Done():
		return container.ExitStatus{}, ctx.Err()
	}
}

// Signal sends sig to the process. A process that already exited returns
// an error wrapping container.ErrNotFound.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	return p.ct.c.do(ctx, http.MethodPut, p.route("/signal"), nil, wire.SignalRequest{Signal: int(sig)}, nil)
}

// SetTTY changes the window size of the process's terminal. A process
// without a terminal returns an error wrapping container.ErrInvalidSpec,
// one that exited an error wrapping container.ErrNotFound.
func (p *Process) SetTTY(ctx context.Context, ts container.TTYSpec) error {
	return p.ct.c.do(ctx, http.MethodPut, p.route("/tty"), nil, ts, nil)
}

func (p *Process) route(suffix string) string {
	return p.ct.route("/processes/" + url.PathEscape(p.id) + suffix)
}

// Close detaches from the process: the stream is closed (and with it the
// process's stdin) and Wait returns an error wrapping ErrDetached unless
// the process had already exited. The process keeps running. Close is
// idempotent.
func (p *Process) Close() error {
	p.cancel()
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	return nil
}

// Reattach attaches again to the process after its stream ended early
// (Wait returned ErrDetached), with the same writers, from the offsets
// delivered so far, and returns the new Process. Called while the stream
// still runs, it returns an error.
func (p *Process) Reattach(ctx context.Context) (*Process, error) {
	select {
	case <-p.done:
	default:
		return nil, fmt.Errorf("client: process %q: reattach: the stream is still attached", p.id)
	}
	pio := p.pio
	pio.Stdin = nil
	pio.StdoutOffset, pio.StderrOffset = p.Offsets()
	return p.ct.Attach(ctx, p.id, pio)
}

// copyStdin sends pio.Stdin as stdin frames, then a stdin close.
func (p *Process) copyStdin(conn net.Conn, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := p.writeFrame(conn, wire.FrameStdin, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			p.writeFrame(conn, wire.FrameStdinClose, nil)
			return
		}
	}
}

func (p *Process) writeFrame(conn net.Conn, t wire.FrameType, b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return wire.WriteFrame(conn, t, b)
}

// writerError is an error of one of the caller's writers: it ends the
// stream for good.
type writerError struct{ err error }

func (e writerError) Error() string { return e.err.Error() }

// follow reads the stream until the exit frame; when the stream breaks it
// re-attaches (WithReattach) or gives up with ErrDetached.
func (p *Process) follow(conn net.Conn, br *bufio.Reader) {
	defer func() {
		p.cancel()
		c := p.ct.c
		c.mu.Lock()
		delete(c.procs, p)
		c.mu.Unlock()
		close(p.done)
	}()
	for {
		err := p.readFrames(br)
		conn.Close()
		var we writerError
		switch {
		case err == nil:
			return
		case errors.As(err, &we):
			p.err = we.err
			return
		case errors.Is(err, ErrProtocol):
			p.err = fmt.Errorf("container %q: process %q: %w", p.ct.handle, p.id, err)
			return
		case p.ctx.Err() != nil:
			p.err = fmt.Errorf("container %q: process %q: %w (closed)", p.ct.handle, p.id, ErrDetached)
			return
		}
		p.ct.c.log.Info("process stream broke", "handle", p.ct.handle, "process", p.id, "err", err)
		var rerr error
		conn, br, rerr = p.reattach()
		if rerr != nil {
			p.err = rerr
			return
		}
		p.mu.Lock()
		p.conn = conn
		p.mu.Unlock()
		if p.ctx.Err() != nil { // closed while re-attaching
			conn.Close()
			p.err = fmt.Errorf("container %q: process %q: %w (closed)", p.ct.handle, p.id, ErrDetached)
			return
		}
	}
}

// reattach opens a new stream from the delivered offsets, retrying for
// the WithReattach time; without it, or when time is up, it returns an
// error wrapping ErrDetached.
func (p *Process) reattach() (net.Conn, *bufio.Reader, error) {
	detached := fmt.Errorf("container %q: process %q: %w", p.ct.handle, p.id, ErrDetached)
	limit := p.ct.c.opts.reattach
	if limit <= 0 {
		return nil, nil, detached
	}
	ctx, cancel := context.WithTimeout(p.ctx, limit)
	defer cancel()
	pause := 20 * time.Millisecond
	for {
		pio := p.pio
		pio.StdoutOffset, pio.StderrOffset = p.Offsets()
		conn, br, _, _, err := p.ct.c.openStream(ctx, http.MethodGet, p.route(""), attachQuery(pio), nil)
		if err == nil {
			p.ct.c.log.Info("process stream re-attached", "handle", p.ct.handle, "process", p.id)
			return conn, br, nil
		}
		if !errors.Is(err, ErrUnavailable) && !errors.Is(err, container.ErrClosed) && ctx.Err() == nil {
			return nil, nil, err // the server answered: container or process gone
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%w (re-attach for %v failed: %v)", detached, limit, err)
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// readFrames delivers output frames until the exit frame (nil), a broken
// stream or a writer's error (writerError).
func (p *Process) readFrames(br *bufio.Reader) error {
	fr := wire.NewFrameReader(br)
	for {
		t, payload, err := fr.Next()
		if err != nil {
			return err
		}
		switch t {
		case wire.FrameStdout, wire.FrameStderr:
			i, w := 0, p.pio.Stdout
			if t == wire.FrameStderr {
				i, w = 1, p.pio.Stderr
			}
			if w == nil {
				return fmt.Errorf("client: %w: unexpected %v frame", ErrProtocol, t)
			}
			n, werr := w.Write(payload)
			p.mu.Lock()
			p.off[i] += int64(n)
			p.mu.Unlock()
			if werr == nil && n < len(payload) {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return writerError{werr}
			}
		case wire.FrameExit:
			var e wire.Exit
			if err := json.Unmarshal(payload, &e); err != nil {
				return fmt.Errorf("client: %w: exit frame: %v", ErrProtocol, err)
			}
			if e.Error != nil {
				p.err = e.Error
			} else {
				p.st = e.Status
			}
			return nil
		default:
			return fmt.Errorf("client: %w: unexpected %v frame", ErrProtocol, t)
		}
	}
}

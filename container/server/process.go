package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
)

// noDeadline clears a connection's deadlines.
var noDeadline time.Time

// errDetached ends the writes of a stream whose connection is gone.
var errDetached = errors.New("server: stream detached")

// stream is one process stream: a hijacked connection carrying frames
// (see package wire). Its output writers are given to the container
// package before the connection exists, and block until it does (or
// until the stream is abandoned).
type stream struct {
	ready chan struct{} // closed once conn is set: output may be written
	dead  chan struct{} // closed when the stream is over: writes fail

	wmu  sync.Mutex // serialises frames
	conn net.Conn
	bw   *bufio.Writer

	stdin    *io.PipeWriter // nil without stdin
	deadOnce sync.Once
	cancel   context.CancelFunc // ends the handler's wait
}

func newStream() *stream {
	return &stream{ready: make(chan struct{}), dead: make(chan struct{}), cancel: func() {}}
}

// writer returns the io.Writer of one output stream, sending frames of
// type t.
func (st *stream) writer(t wire.FrameType) io.Writer { return frameWriter{st, t} }

type frameWriter struct {
	st *stream
	t  wire.FrameType
}

func (w frameWriter) Write(p []byte) (int, error) {
	select {
	case <-w.st.ready:
	case <-w.st.dead:
		return 0, errDetached
	}
	if err := w.st.writeFrames(w.t, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrames sends p as frames of type t (split at wire.MaxFrame) and
// flushes them.
func (st *stream) writeFrames(t wire.FrameType, p []byte) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	select {
	case <-st.dead:
		return errDetached
	default:
	}
	for first := true; first || len(p) > 0; first = false {
		n := min(len(p), wire.MaxFrame)
		var hdr [wire.FrameHeaderLen]byte
		hdr[0] = byte(t)
		hdr[1], hdr[2], hdr[3], hdr[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		st.bw.Write(hdr[:])
		st.bw.Write(p[:n])
		p = p[n:]
	}
	if err := st.bw.Flush(); err != nil {
		st.detach()
		return fmt.Errorf("%w: %v", errDetached, err)
	}
	return nil
}

// detach ends the stream: writes fail from now on, the connection is
// closed, the process's stdin is closed and the handler stops waiting.
// The process keeps running. detach may be called many times.
func (st *stream) detach() {
	st.deadOnce.Do(func() {
		close(st.dead)
		if st.conn != nil {
			st.conn.Close()
		}
		if st.stdin != nil {
			st.stdin.Close()
		}
		st.cancel()
	})
}

// readInput reads the client's frames: stdin data and stdin close. It
// returns when the connection ends or sends something invalid.
func (st *stream) readInput(r io.Reader) error {
	fr := wire.NewFrameReader(r)
	for {
		t, payload, err := fr.Next()
		if err != nil {
			return err
		}
		switch t {
		case wire.FrameStdin:
			if st.stdin == nil {
				return fmt.Errorf("server: stdin frame on a stream without stdin: %w", wire.ErrBadRequest)
			}
			// A process that no longer reads gets its input dropped.
			st.stdin.Write(payload)
		case wire.FrameStdinClose:
			if st.stdin != nil {
				st.stdin.Close()
			}
		default:
			return fmt.Errorf("server: unexpected %v frame from the client: %w", t, wire.ErrBadRequest)
		}
	}
}

// run starts a process (POST /containers/{handle}/processes) and streams
// it.
func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	var req wire.RunRequest
	if err := s.decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkUpgrade(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.lookup(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := newStream()
	pio := container.ProcessIO{}
	if req.Stdin {
		pr, pw := io.Pipe()
		pio.Stdin, st.stdin = pr, pw
	}
	if req.Stdout {
		pio.Stdout = st.writer(wire.FrameStdout)
	}
	if req.Stderr {
		pio.Stderr = st.writer(wire.FrameStderr)
	}
	p, err := c.Run(r.Context(), req.Spec, pio)
	if err != nil {
		st.detach()
		s.writeError(w, r, err)
		return
	}
	s.procs.add(c.Handle(), p)
	s.serveStream(w, r, st, p)
}

// attach streams a process found by id (GET
// /containers/{handle}/processes/{id}).
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	if err := checkUpgrade(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	pio, st, err := attachIO(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.lookup(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := c.Attach(r.Context(), r.PathValue("id"), pio)
	if err != nil {
		st.detach()
		s.writeError(w, r, err)
		return
	}
	s.procs.add(c.Handle(), p)
	s.serveStream(w, r, st, p)
}

// attachIO reads an attach request's offsets and streams.
func attachIO(r *http.Request) (container.ProcessIO, *stream, error) {
	var pio container.ProcessIO
	q := r.URL.Query()
	for _, o := range []struct {
		name string
		dst  *int64
	}{{wire.QueryStdoutOffset, &pio.StdoutOffset}, {wire.QueryStderrOffset, &pio.StderrOffset}} {
		if v := q.Get(o.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return pio, nil, fmt.Errorf("server: query parameter %s=%q is not a byte offset: %w", o.name, v, wire.ErrBadRequest)
			}
			*o.dst = n
		}
	}
	st := newStream()
	for _, o := range []struct {
		name string
		t    wire.FrameType
		dst  *io.Writer
	}{{wire.QueryStdout, wire.FrameStdout, &pio.Stdout}, {wire.QueryStderr, wire.FrameStderr, &pio.Stderr}} {
		on, err := queryBool(r, o.name)
		if err != nil {
			return pio, nil, err
		}
		if on {
			*o.dst = st.writer(o.t)
		}
	}
	return pio, st, nil
}

func checkUpgrade(r *http.Request) error {
	if !strings.EqualFold(r.Header.Get("Upgrade"), wire.Upgrade) {
		return fmt.Errorf("server: a process stream needs the header Upgrade: %s: %w", wire.Upgrade, wire.ErrBadRequest)
	}
	return nil
}

// serveStream switches the connection to frames, streams the process's
// output and its exit status, and feeds its stdin. It returns when the
// process has exited and everything was sent, or when the stream was
// detached (client gone, Shutdown).
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, st *stream, p *container.Process) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		st.detach()
		s.log.Warn("hijack", "err", err)
		return
	}
	conn.SetDeadline(noDeadline)
	fmt.Fprintf(brw.Writer, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s: %s\r\n%s: %d\r\n\r\n",
		wire.Upgrade, wire.HeaderProcessID, p.ID(), wire.HeaderProcessPID, p.PID())
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	st.conn, st.bw, st.cancel = conn, brw.Writer, cancel
	if err := brw.Writer.Flush(); err != nil {
		st.detach()
		return
	}
	if !s.track(st) {
		// Stopping: the client has the id and attaches again later.
		st.detach()
		return
	}
	defer s.untrack(st)
	close(st.ready)

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		// The client's end of the stream (EOF or garbage) detaches.
		st.readInput(brw.Reader)
		st.detach()
	}()
	defer func() {
		st.detach()
		<-readDone
	}()

	status, err := p.Status(ctx)
	select {
	case <-st.dead:
		return // detached: no exit frame
	default:
	}
	if err != nil && (errors.Is(err, errDetached) || errors.Is(err, context.Canceled)) {
		// The stream broke, or the Manager was closed: the process
		// runs on and the client attaches again.
		return
	}
	b, merr := json.Marshal(wire.Exit{Status: status, Error: wire.FromError(err)})
	if merr != nil {
		return
	}
	st.writeFrames(wire.FrameExit, b)
}

// signal sends a signal to a process (PUT …/processes/{id}/signal).
func (s *Server) signal(r *http.Request) (any, error) {
	var req wire.SignalRequest
	if err := s.decode(r, &req); err != nil {
		return nil, err
	}
	if req.Signal <= 0 || req.Signal > 64 {
		return nil, fmt.Errorf("server: signal %d: %w", req.Signal, wire.ErrBadRequest)
	}
	p, err := s.process(r)
	if err != nil {
		return nil, err
	}
	if err := p.Signal(r.Context(), syscall.Signal(req.Signal)); err != nil {
		return nil, err
	}
	return wire.Empty{}, nil
}

// setTTY resizes a process's terminal (PUT …/processes/{id}/tty).
func (s *Server) setTTY(r *http.Request) (any, error) {
	var ts container.TTYSpec
	if err := s.decode(r, &ts); err != nil {
		return nil, err
	}
	p, err := s.process(r)
	if err != nil {
		return nil, err
	}
	if err := p.SetTTY(r.Context(), ts); err != nil {
		return nil, err
	}
	return wire.Empty{}, nil
}

// process finds the process the request names: one the Server streams,
// or else found with Attach (streaming nothing).
func (s *Server) process(r *http.Request) (*container.Process, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if p := s.procs.get(c.Handle(), id); p != nil {
		return p, nil
	}
	// Offsets past any output (1 TiB; far more would make lseek fail on
	// some file systems): the follower sends nothing and only waits for
	// the exit, which the registry watches.
	p, err := c.Attach(r.Context(), id, container.ProcessIO{StdoutOffset: 1 << 40, StderrOffset: 1 << 40})
	if err != nil {
		return nil, err
	}
	s.procs.add(c.Handle(), p)
	return p, nil
}

// registry keeps the processes the Server knows by handle and id, for
// signals and terminal resizes, until they exit.
type registry struct {
	s  *Server
	mu sync.Mutex
	m  map[string]*container.Process
}

func newRegistry(s *Server) *registry {
	return &registry{s: s, m: map[string]*container.Process{}}
}

func regKey(handle, id string) string { return handle + "\x00" + id }

func (g *registry) get(handle, id string) *container.Process {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[regKey(handle, id)]
}

// add keeps p until it exits (or the Server stops).
func (g *registry) add(handle string, p *container.Process) {
	k := regKey(handle, p.ID())
	g.mu.Lock()
	if _, ok := g.m[k]; ok {
		g.mu.Unlock()
		return
	}
	g.m[k] = p
	g.mu.Unlock()
	forget := func() {
		g.mu.Lock()
		if g.m[k] == p {
			delete(g.m, k)
		}
		g.mu.Unlock()
	}
	if !g.s.goTracked(func() {
		p.Status(g.s.ctx)
		forget()
	}) {
		forget()
	}
}

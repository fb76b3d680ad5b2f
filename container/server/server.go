package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/paaskit/paaskit/container"
)

// Server serves a container.Manager over HTTP on unix sockets. Its
// methods are safe for concurrent use. The zero value is not usable; make
// one with New.
//
// A Server does not own its Manager: Shutdown and Close leave the Manager
// open and its containers and processes running. Close the Manager after
// the Server.
type Server struct {
	m    *container.Manager
	opts options
	log  *slog.Logger
	hs   *http.Server

	// ctx is cancelled by Close and at the end of Shutdown: it ends the
	// stream handlers and the process registry's watchers.
	ctx    context.Context
	cancel context.CancelFunc

	procs *registry
	// limitsMu serialises the read-modify-write of a container's cgroup
	// limits (limit_memory, limit_cpu).
	limitsMu sync.Mutex

	mu        sync.Mutex
	listeners map[net.Listener]*socketFile
	streams   map[*stream]struct{}
	stopping  bool // Shutdown or Close was called
	wg        sync.WaitGroup
}

// New returns a Server for m. It does not listen yet: call Serve or
// ListenAndServe. Invalid options (a socket mode granting others access,
// a default stack that is not among the stacks, a non-positive request
// limit) return an error.
func New(m *container.Manager, opts ...Option) (*Server, error) {
	if m == nil {
		return nil, errors.New("server: nil Manager")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.socketMode&^0o660 != 0 {
		return nil, fmt.Errorf("server: socket mode %#o grants more than 0660", o.socketMode)
	}
	if o.maxRequestBytes <= 0 {
		return nil, fmt.Errorf("server: max request bytes %d is not positive", o.maxRequestBytes)
	}
	if o.defaultStack != "" {
		if _, ok := o.stacks[o.defaultStack]; !ok {
			return nil, fmt.Errorf("server: default stack %q is not one of the stacks", o.defaultStack)
		}
	}
	for name, dir := range o.stacks {
		if name == "" || name[0] == '/' {
			return nil, fmt.Errorf("server: stack name %q is empty or starts with /", name)
		}
		if dir == "" || dir[0] != '/' {
			return nil, fmt.Errorf("server: stack %q: %q is not an absolute path", name, dir)
		}
	}
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		m:         m,
		opts:      o,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]*socketFile{},
		streams:   map[*stream]struct{}{},
	}
	s.procs = newRegistry(s)
	s.hs = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// ListenAndServe creates the unix socket path (see Listen) with the
// Server's socket mode and group and serves on it until Shutdown or Close,
// after which it returns ErrServerClosed; the socket file is removed
// then. Any other error is returned at once.
func (s *Server) ListenAndServe(path string) error {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return ErrServerClosed
	}
	l, err := Listen(path, s.opts.socketMode, s.opts.socketGID)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l and serves them until Shutdown or Close,
// after which it returns ErrServerClosed. It closes l when it returns. A
// listener made by Listen has its socket file removed then.
func (s *Server) Serve(l net.Listener) error {
	var file *socketFile
	if sl, ok := l.(*socketListener); ok {
		file = sl.file
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		l.Close()
		if file != nil {
			file.remove()
		}
		return ErrServerClosed
	}
	s.listeners[l] = file
	s.mu.Unlock()
	s.log.Info("serving", "addr", l.Addr().String())
	err := s.hs.Serve(l)
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
	if file != nil {
		file.remove()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops the Server gracefully: it stops accepting connections
// (removing the socket files it created, so a new server may take the
// path), detaches every process stream (the client sees the stream end
// without an exit frame; the processes keep running and can be attached
// again, by a restarted server too), waits for the requests in flight to
// finish and then returns. When ctx ends first it returns ctx's error
// with requests still running: call Close then. Shutdown may be called
// more than once; Serve returns ErrServerClosed afterwards.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	err := s.hs.Shutdown(ctx)
	s.cancel()
	if werr := s.waitStreams(ctx); err == nil {
		err = werr
	}
	return err
}

// Close stops the Server at once: it closes the listeners and every
// connection, detaches the process streams and waits for their handlers
// to return. Processes keep running. Close is idempotent.
func (s *Server) Close() error {
	s.stop()
	s.cancel()
	err := s.hs.Close()
	s.waitStreams(context.Background())
	return err
}

// stop marks the Server as stopping, removes its socket files and
// detaches its streams.
func (s *Server) stop() {
	s.mu.Lock()
	s.stopping = true
	streams := make([]*stream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	files := make([]*socketFile, 0, len(s.listeners))
	for _, f := range s.listeners {
		if f != nil {
			files = append(files, f)
		}
	}
	s.mu.Unlock()
	for _, f := range files {
		f.remove()
	}
	for _, st := range streams {
		st.detach()
	}
}

func (s *Server) waitStreams(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// track registers a stream so that Shutdown detaches it; false when the
// Server is stopping.
func (s *Server) track(st *stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(st *stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	s.wg.Done()
}

// goTracked runs f on a goroutine that Close and Shutdown wait for; false
// (and f not run) when the Server is stopping.
func (s *Server) goTracked(f func()) bool {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// depot is the Manager's depot, for the capacity answer.
func (s *Server) depot() string { return s.m.Depot() }

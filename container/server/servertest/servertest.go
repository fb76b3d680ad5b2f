// Package servertest runs a warden server for one test: a
// container/server.Server on a unix socket in a temporary directory, with
// clients connected to it, all shut down when the test ends. It is for
// downstream tests of code that talks to a warden daemon through package
// container/client.
//
// The server serves a container.Manager: a real one needs Linux and root
// (see container/containertest, whose NewManager skips the test
// otherwise, and whose Main the test binary must use as its TestMain).
package servertest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/server"
)

// Server is a warden server started for a test.
type Server struct {
	*server.Server
	// Socket is the path of the server's socket.
	Socket string
	// Manager is the Manager the server serves.
	Manager *container.Manager

	done chan error // Serve's result
}

// Start serves m on a socket in a new temporary directory (short enough
// for a unix socket path) and returns once the server accepts
// connections. The server is closed when the test ends; m is not.
func Start(t testing.TB, m *container.Manager, opts ...server.Option) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "warden-")
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return StartAt(t, filepath.Join(dir, "warden.sock"), m, opts...)
}

// StartAt is Start on a socket path of the caller's choice, for example
// the path of a server that was shut down, to restart it.
func StartAt(t testing.TB, socket string, m *container.Manager, opts ...server.Option) *Server {
	t.Helper()
	srv, err := server.New(m, opts...)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	l, err := server.Listen(socket, server.DefaultSocketMode, -1)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	s := &Server{Server: srv, Socket: socket, Manager: m, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-s.done; err != nil && !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("servertest: serve: %v", err)
		}
		s.done <- server.ErrServerClosed // for a Stop called after
	})
	return s
}

// Client returns a new Client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(s.Socket, opts...)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Stop shuts the server down gracefully (as a daemon does on SIGTERM:
// in-flight requests finish, process streams are detached, containers and
// processes keep running) and waits until Serve returned. The Manager
// stays open.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("servertest: shutdown: %v", err)
	}
	err := <-s.done
	s.done <- err
	if err != nil && !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("servertest: serve: %v", err)
	}
}

package server_test

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server"
)

// A warden daemon: serve a depot on a socket until SIGTERM, then drain
// and leave the containers running for the next start. Needs Linux and
// root, so it has no output to check.
func Example() {
	if container.Init() { // first thing in main: the container agent
		return
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	m, err := container.New("/var/lib/warden/depot", container.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // after the server: containers keep running

	srv, err := server.New(m,
		server.WithLogger(logger),
		server.WithStacks(map[string]string{"base": "/var/lib/warden/stacks/base"}),
		server.WithDefaultStack("base"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx) // drain requests, detach process streams
	}()
	if err := srv.ListenAndServe("/run/warden.sock"); !errors.Is(err, server.ErrServerClosed) {
		log.Fatal(err)
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
)

func main() {
	if container.Init() {
		return
	}
	configPath := flag.String("config", "stager.yml", "YAML configuration file")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*configPath, log); err != nil && !errors.Is(err, ErrServiceClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run wires the configuration to a Service and runs it until SIGTERM or
// SIGINT.
func run(configPath string, log *slog.Logger) (retErr error) {
	cfg, err := LoadConfig(configPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	url := cfg.NATS.URL
	if cfg.NATS.Embedded {
		srv, err := natsserver.Start(ctx, natsserver.WithPort(cfg.NATS.EmbeddedPort), natsserver.WithLogger(log))
		if err != nil {
			return err
		}
		defer func() { retErr = errors.Join(retErr, srv.Close()) }()
		url = srv.ClientURL()
	}
	bus, err := nats.Connect(ctx, url, nats.WithLogger(log), nats.WithName("stager"))
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, bus.Close()) }()

	depot := cfg.Container.Depot
	if depot == "" {
		depot = filepath.Join(cfg.WorkDir, "depot")
	}
	m, err := container.New(depot, container.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, m.Close()) }()

	svc, err := New(*cfg, Deps{Bus: bus, Containers: m, Logger: log})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

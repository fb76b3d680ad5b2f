package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server"
	"github.com/spf13/cobra"
)

// shutdownTimeout bounds the draining of requests in flight on SIGTERM.
const shutdownTimeout = 30 * time.Second

func newServeCmd(a *app) *cobra.Command {
	var (
		configPath  string
		c           config // from flags
		socketGroup int
		stacks      []string
		network     string
		hostPorts   string
		outputLimit int64
	)
	cmd := &cobra.Command{
		Use:   "serve --depot DIR [--socket PATH] [--config FILE]",
		Short: "Serve containers on a unix socket until SIGTERM",
		Long: `serve opens the depot (re-discovering the containers in it) and serves it on
the socket until SIGTERM or SIGINT; then it finishes the requests in flight,
detaches process streams and exits. Containers and processes keep running.
Settings come from --config (YAML, see the package documentation) and flags,
which win.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config{}
			if configPath != "" {
				var err error
				if cfg, err = loadConfig(configPath); err != nil {
					return usageError{err}
				}
			}
			f := cmd.Flags()
			set := func(name string, apply func()) {
				if f.Changed(name) {
					apply()
				}
			}
			set("depot", func() { cfg.Depot = c.Depot })
			set("socket-mode", func() { cfg.SocketMode = c.SocketMode })
			set("socket-group", func() { cfg.SocketGroup = &socketGroup })
			set("log-level", func() { cfg.LogLevel = c.LogLevel })
			set("default-stack", func() { cfg.DefaultStack = c.DefaultStack })
			set("quota", func() { cfg.Quota = c.Quota })
			set("stop-timeout", func() { cfg.StopTimeout = c.StopTimeout })
			set("output-limit", func() { cfg.OutputLimit = &outputLimit })
			set("cgroup-parent", func() { cfg.CgroupParent = c.CgroupParent })
			if cmd.Flags().Changed("socket") || cfg.Socket == "" {
				cfg.Socket = a.socket
			}
			for _, s := range stacks {
				name, dir, ok := strings.Cut(s, "=")
				if !ok || name == "" || dir == "" {
					return usagef("--stack %q: want NAME=DIR", s)
				}
				if cfg.Stacks == nil {
					cfg.Stacks = map[string]string{}
				}
				cfg.Stacks[name] = dir
			}
			if network != "" || hostPorts != "" {
				if cfg.Network == nil {
					cfg.Network = &networkConfig{}
				}
				if network != "" {
					cfg.Network.Subnet = network
				}
				if hostPorts != "" {
					hp, err := parseHostPorts(hostPorts)
					if err != nil {
						return usageError{err}
					}
					cfg.Network.HostPorts = hp
				}
			}
			return a.serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "YAML config file")
	f.StringVar(&c.Depot, "depot", "", "depot directory (containers' state, created when missing)")
	f.StringVar(&c.SocketMode, "socket-mode", "0660", "socket permissions, octal, 0660 or stricter")
	f.IntVar(&socketGroup, "socket-group", -1, "gid that owns the socket (default: the process's)")
	f.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.StringArrayVar(&stacks, "stack", nil, "a named root filesystem, NAME=DIR (repeatable)")
	f.StringVar(&c.DefaultStack, "default-stack", "", "stack of containers created without --rootfs")
	f.StringVar(&c.Quota, "quota", "auto", "disk quota backend: auto, kernel, image or scanner")
	f.DurationVar(&c.StopTimeout, "stop-timeout", container.DefaultStopTimeout, "time between SIGTERM and SIGKILL when stopping")
	f.Int64Var(&outputLimit, "output-limit", container.DefaultOutputLimit, "bytes kept of each process's stdout and stderr (0: all)")
	f.StringVar(&c.CgroupParent, "cgroup-parent", container.DefaultCgroupParent, "cgroup under which containers' cgroups are made")
	f.StringVar(&network, "network", "", "turn on networking with this container subnet (e.g. 10.254.0.0/22)")
	f.StringVar(&hostPorts, "host-ports", "", "NetIn's host port pool, FIRST-LAST (with networking)")
	return cmd
}

// serve runs the daemon until ctx ends (SIGTERM, SIGINT).
func (a *app) serve(ctx context.Context, cfg config) (retErr error) {
	if cfg.Depot == "" {
		return usagef("serve needs --depot (or depot: in --config)")
	}
	level, err := logLevel(cfg.LogLevel)
	if err != nil {
		return usageError{err}
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	mode, err := cfg.socketMode()
	if err != nil {
		return usageError{err}
	}
	mopts, err := cfg.managerOptions(log.With("component", "container"))
	if err != nil {
		return usageError{err}
	}
	sopts := []server.Option{
		server.WithLogger(log.With("component", "server")),
		server.WithSocketMode(mode),
		server.WithStacks(cfg.Stacks),
		server.WithDefaultStack(cfg.DefaultStack),
		server.WithMaxContainers(cfg.maxContainers()),
	}
	if cfg.SocketGroup != nil {
		sopts = append(sopts, server.WithSocketGroup(*cfg.SocketGroup))
	}

	m, err := container.New(cfg.Depot, mopts...)
	if err != nil {
		return err
	}
	defer func() {
		if err := m.Close(); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	cs, err := m.List(ctx, nil)
	if err != nil {
		return err
	}
	backend, tried := m.QuotaBackend()
	log.Info("depot open", "depot", m.Depot(), "containers", len(cs), "quota", backend, "quota_tried", tried,
		"stacks", slices.Sorted(maps.Keys(cfg.Stacks)))
	srv, err := server.New(m, sopts...)
	if err != nil {
		return usageError{err}
	}
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(cfg.Socket) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests, detaching streams; containers keep running")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, server.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

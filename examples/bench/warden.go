package main

// The warden suite measures the container server and client
// (container/server, container/client) against the in-process Manager:
//
//   - warden.run_local and warden.run_remote: Run /bin/true and Wait in a
//     running container, in process and through a server on a unix socket
//     (p50 and p90 over -n iterations after a warm-up, the two interleaved),
//     and their ratio warden.run_remote.vs_local (target: at most 2);
//   - warden.concurrent.*: clients (default 100) each in a loop of create,
//     run /bin/true, destroy for a duration (default 30 s): cycles, cycles
//     per second, errors, and the server process's goroutines and open
//     fds before the clients came and after they all left
//     (warden.server.goroutines_leaked and fds_leaked: 0 when all is well).
//
// BENCH_WARDEN_CLIENTS and BENCH_WARDEN_DURATION (a Go duration) change
// the load; Go's own benchmark of the same load is
// container/server's BenchmarkConcurrentClients (-warden.clients,
// -warden.duration). Needs Linux and root; everything it creates is
// removed before it returns.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/server"
	"github.com/paaskit/paaskit/internal/testutil"
)

// wardenLoad is the concurrent load, from the environment.
func wardenLoad() (clients int, d time.Duration, err error) {
	clients, d = 100, 30*time.Second
	if v := os.Getenv("BENCH_WARDEN_CLIENTS"); v != "" {
		if clients, err = strconv.Atoi(v); err != nil || clients < 1 {
			return 0, 0, fmt.Errorf("BENCH_WARDEN_CLIENTS=%q: want a positive number", v)
		}
	}
	if v := os.Getenv("BENCH_WARDEN_DURATION"); v != "" {
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("BENCH_WARDEN_DURATION=%q: want a positive Go duration", v)
		}
	}
	return clients, d, nil
}

// runWardenSuite runs the warden figures (see above).
func runWardenSuite(ctx context.Context, cfg config, r *report) (retErr error) {
	clients, duration, err := wardenLoad()
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	tmp, err := os.MkdirTemp("", "paaskit-bench-warden-")
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	cgParent := fmt.Sprintf("/paaskit-bench-warden-%d", os.Getpid())
	defer func() {
		if n := countMountsOf(tmp); n > 0 {
			retErr = errors.Join(retErr, fmt.Errorf("warden suite: %d mounts left below %s; not removing it", n, tmp))
			return
		}
		if err := os.RemoveAll(tmp); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("warden suite: %w", err))
		}
	}()
	defer func() { retErr = errors.Join(retErr, removeCgroupParents(cgParent)) }()

	stack := filepath.Join(tmp, "stack")
	r.commentf("warden: building the test stack in %s", stack)
	if err := testutil.BuildStack(stack); err != nil {
		return fmt.Errorf("warden suite: build stack: %w", err)
	}
	depot := cfg.depot
	if depot == "" {
		depot = filepath.Join(tmp, "depot")
	}
	m, err := container.New(depot, container.WithCgroupParent(cgParent))
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		cs, _ := m.List(cctx, nil)
		for _, c := range cs {
			if err := c.Destroy(cctx); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("warden suite: %w", err))
			}
		}
		m.Close()
	}()
	srv, err := server.New(m)
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	socket := filepath.Join(tmp, "warden.sock")
	l, err := server.Listen(socket, server.DefaultSocketMode, -1)
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		srv.Close()
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			retErr = errors.Join(retErr, fmt.Errorf("warden suite: serve: %w", err))
		}
	}()

	if err := wardenRun(ctx, cfg, r, m, socket, stack); err != nil {
		return err
	}
	return wardenConcurrent(ctx, r, socket, stack, clients, duration)
}

// wardenRun times Run /bin/true + Wait in one container, in process and
// through the server, interleaved.
func wardenRun(ctx context.Context, cfg config, r *report, m *container.Manager, socket, stack string) error {
	local, err := m.Create(ctx, container.Spec{RootFS: stack, Handle: fmt.Sprintf("bench-run-%d", os.Getpid())})
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	defer local.Destroy(context.WithoutCancel(ctx))
	cl, err := client.New(socket)
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	defer cl.Close()
	remote, err := cl.Lookup(ctx, local.Handle())
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	spec := container.ProcessSpec{Path: "/bin/true"}
	runLocal := func() error {
		p, err := local.Run(ctx, spec, container.ProcessIO{})
		if err == nil {
			_, err = p.Wait(ctx)
		}
		return err
	}
	runRemote := func() error {
		p, err := remote.Run(ctx, spec, container.ProcessIO{})
		if err == nil {
			_, err = p.Wait(ctx)
		}
		return err
	}
	for range 5 { // warm-up: connections, page cache
		if err := errors.Join(runLocal(), runRemote()); err != nil {
			return fmt.Errorf("warden suite: warm-up: %w", err)
		}
	}
	timed := func(f func() error, into *[]float64) error {
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("warden suite: run: %w", err)
		}
		*into = append(*into, float64(time.Since(start).Nanoseconds())/1e6)
		return nil
	}
	var localMS, remoteMS []float64
	for i := range cfg.n {
		var err error
		if i%2 == 0 { // alternate which goes first
			err = errors.Join(timed(runLocal, &localMS), timed(runRemote, &remoteMS))
		} else {
			err = errors.Join(timed(runRemote, &remoteMS), timed(runLocal, &localMS))
		}
		if err != nil {
			return err
		}
	}
	wardenPercentiles(r, "warden.run_local", localMS)
	wardenPercentiles(r, "warden.run_remote", remoteMS)
	r.addMaybe("warden.run_remote.vs_local", ratio(r.value("warden.run_remote.p50"), r.value("warden.run_local.p50")), "ratio")
	return nil
}

func wardenPercentiles(r *report, name string, samples []float64) {
	for _, p := range []float64{50, 90} {
		v, err := percentile(samples, p)
		if err != nil {
			r.addNA(fmt.Sprintf("%s.p%.0f", name, p), "ms", name, err)
			continue
		}
		r.add(fmt.Sprintf("%s.p%.0f", name, p), v, "ms")
	}
}

// openFDs counts the process's open file descriptors.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// wardenConcurrent runs the concurrent create/run/destroy load and counts
// what the server holds before and after.
func wardenConcurrent(ctx context.Context, r *report, socket, stack string, clients int, d time.Duration) error {
	// Baseline: after one cycle, with no client connected.
	warm, err := client.New(socket)
	if err != nil {
		return fmt.Errorf("warden suite: %w", err)
	}
	if err := wardenCycle(ctx, warm, stack, fmt.Sprintf("bench-warm-%d", os.Getpid())); err != nil {
		return fmt.Errorf("warden suite: warm-up: %w", err)
	}
	warm.Close()
	time.Sleep(100 * time.Millisecond)
	baseG, baseF := runtime.NumGoroutine(), openFDs()

	r.commentf("warden: %d clients in create/run/destroy loops for %v", clients, d)
	var cycles, failures atomic.Int64
	var firstErr error
	var errOnce sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			cl, err := client.New(socket, client.WithMaxIdleConns(2))
			if err != nil {
				failures.Add(1)
				errOnce.Do(func() { firstErr = err })
				return
			}
			defer cl.Close()
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				if err := wardenCycle(ctx, cl, stack, fmt.Sprintf("bench-%d-%d-%d", os.Getpid(), i, n)); err != nil {
					failures.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				cycles.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if firstErr != nil {
		r.commentf("warden: first error of %d: %v", failures.Load(), firstErr)
	}
	// After: wait for the server's goroutines and fds to settle.
	g, f := runtime.NumGoroutine(), openFDs()
	for end := time.Now().Add(15 * time.Second); (g > baseG || f > baseF) && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		g, f = runtime.NumGoroutine(), openFDs()
	}
	r.add("warden.concurrent.clients", float64(clients), "count")
	r.add("warden.concurrent.duration", elapsed.Seconds(), "s")
	r.add("warden.concurrent.cycles", float64(cycles.Load()), "count")
	r.add("warden.concurrent.cycles_per_s", float64(cycles.Load())/elapsed.Seconds(), "1/s")
	r.add("warden.concurrent.errors", float64(failures.Load()), "count")
	r.add("warden.server.goroutines_before", float64(baseG), "count")
	r.add("warden.server.goroutines_after", float64(g), "count")
	r.add("warden.server.goroutines_leaked", float64(max(0, g-baseG)), "count")
	r.add("warden.server.fds_before", float64(baseF), "count")
	r.add("warden.server.fds_after", float64(f), "count")
	r.add("warden.server.fds_leaked", float64(max(0, f-baseF)), "count")
	return nil
}

// wardenCycle creates a container, runs /bin/true in it and destroys it.
func wardenCycle(ctx context.Context, cl *client.Client, stack, handle string) error {
	c, err := cl.Create(ctx, container.Spec{RootFS: stack, Handle: handle})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
	if err == nil {
		var code int
		if code, err = p.Wait(ctx); err == nil && code != 0 {
			err = fmt.Errorf("exit status %d", code)
		}
	}
	if derr := c.Destroy(context.WithoutCancel(ctx)); derr != nil {
		err = errors.Join(err, fmt.Errorf("destroy: %w", derr))
	}
	return err
}

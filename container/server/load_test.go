package server_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/container/server/servertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	loadClients  = flag.Int("warden.clients", 100, "clients of BenchmarkConcurrentClients")
	loadDuration = flag.Duration("warden.duration", 30*time.Second, "how long BenchmarkConcurrentClients runs")
)

// loadResult is what a load run did.
type loadResult struct {
	cycles int64 // create, run /bin/true, destroy
	errs   []error
}

// load runs clients concurrent clients, each creating a container,
// running /bin/true in it and destroying it, in a loop, for d.
func load(ctx context.Context, socket, rootfs string, clients int, d time.Duration) loadResult {
	var res loadResult
	var cycles atomic.Int64
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		if len(res.errs) < 20 {
			res.errs = append(res.errs, err)
		}
		mu.Unlock()
	}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			cl, err := client.New(socket)
			if err != nil {
				fail(err)
				return
			}
			defer cl.Close()
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				if err := cycle(ctx, cl, rootfs, fmt.Sprintf("load-%d-%d-%d", os.Getpid(), i, n)); err != nil {
					fail(err)
					continue
				}
				cycles.Add(1)
			}
		})
	}
	wg.Wait()
	res.cycles = cycles.Load()
	return res
}

func cycle(ctx context.Context, cl *client.Client, rootfs, handle string) error {
	c, err := cl.Create(ctx, container.Spec{Handle: handle, RootFS: rootfs})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
	if err == nil {
		var code int
		code, err = p.Wait(ctx)
		if err == nil && code != 0 {
			err = fmt.Errorf("exit status %d", code)
		}
	}
	if derr := c.Destroy(context.WithoutCancel(ctx)); derr != nil {
		err = errors.Join(err, fmt.Errorf("destroy: %w", derr))
	}
	return err
}

// Ten clients in create/run/destroy loops for three seconds: no errors,
// and afterwards the server holds no more goroutines or fds than before.
func TestConcurrentClients(t *testing.T) {
	h := newHarness(t, nil)
	rootfs := containertest.Stack(t)
	require.NoError(t, cycle(t.Context(), h.cl, rootfs, "warm-up"))
	h.cl.Close()
	time.Sleep(50 * time.Millisecond)
	baseG, baseF := runtime.NumGoroutine(), countFds()

	res := load(t.Context(), h.srv.Socket, rootfs, 10, 3*time.Second)
	assert.Empty(t, res.errs)
	assert.Positive(t, res.cycles)
	t.Logf("%d create/run/destroy cycles by 10 clients in 3 s", res.cycles)
	settle(t, baseG, baseF)
	cs, err := h.m.List(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, cs)
}

// BenchmarkConcurrentClients is the 100-client figure: -warden.clients
// clients in create/run/destroy loops for -warden.duration (default 100
// for 30 s). It reports cycles per second, errors and what the server
// leaked (goroutines and fds above the baseline once all clients left).
func BenchmarkConcurrentClients(b *testing.B) {
	m := containertest.NewManager(b)
	srv := servertest.Start(b, m)
	rootfs := containertest.Stack(b)
	cl := srv.Client(b)
	if err := cycle(b.Context(), cl, rootfs, "warm-up"); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	time.Sleep(50 * time.Millisecond)
	baseG, baseF := runtime.NumGoroutine(), countFds()
	var res loadResult
	for b.Loop() {
		res = load(b.Context(), srv.Socket, rootfs, *loadClients, *loadDuration)
	}
	g, f := waitSettle(baseG, baseF, 15*time.Second)
	for _, err := range res.errs {
		b.Error(err)
	}
	b.ReportMetric(float64(res.cycles)/loadDuration.Seconds(), "cycles/s")
	b.ReportMetric(float64(len(res.errs)), "errors")
	b.ReportMetric(float64(max(0, g-baseG)), "leaked-goroutines")
	b.ReportMetric(float64(max(0, f-baseF)), "leaked-fds")
	b.Logf("%d clients, %v: %d cycles; goroutines %d→%d, fds %d→%d", *loadClients, *loadDuration, res.cycles, baseG, g, baseF, f)
}

// BenchmarkRun compares Run /bin/true and Wait in a running container,
// in process and through the server.
func BenchmarkRun(b *testing.B) {
	m := containertest.NewManager(b)
	local := containertest.NewContainer(b, m, container.Spec{})
	cl := servertest.Start(b, m).Client(b)
	remote, err := cl.Lookup(b.Context(), local.Handle())
	if err != nil {
		b.Fatal(err)
	}
	spec := container.ProcessSpec{Path: "/bin/true"}
	b.Run("local", func(b *testing.B) {
		for b.Loop() {
			p, err := local.Run(b.Context(), spec, container.ProcessIO{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Wait(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remote", func(b *testing.B) {
		for b.Loop() {
			p, err := remote.Run(b.Context(), spec, container.ProcessIO{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Wait(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

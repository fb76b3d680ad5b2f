package natstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
)

// Timeout bounds the helpers' waits (server start, connect, shutdown).
const Timeout = 10 * time.Second

// StartServer starts an embedded NATS server on a free loopback port for
// the test and shuts it down when the test ends. It fails the test if
// the server does not start.
func StartServer(tb testing.TB, opts ...natsserver.Option) *natsserver.Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	srv, err := natsserver.Start(ctx, opts...)
	if err != nil {
		tb.Fatalf("natstest: start server: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("natstest: shutdown server: %v", err)
		}
	})
	return srv
}

// Connect returns a Bus connected to srv (over its listener, or
// in-process for a server without one) and closes it when the test ends.
// It reconnects quickly (every 20 ms) so that tests that restart a server
// stay fast; opts come after and may override that.
func Connect(tb testing.TB, srv *natsserver.Server, opts ...nats.Option) *nats.Bus {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	all := []nats.Option{nats.WithReconnectWait(20*time.Millisecond, 5*time.Millisecond), nats.WithName(tb.Name())}
	url := srv.ClientURL()
	if url == "" {
		all = append(all, nats.WithInProcessServer(srv))
	}
	all = append(all, opts...)
	b, err := nats.Connect(ctx, url, all...)
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Errorf("natstest: close bus: %v", err)
		}
	})
	return b
}

// NewBus starts a server for the test and returns a Bus connected to it;
// both are gone when the test ends.
func NewBus(tb testing.TB, opts ...nats.Option) (*nats.Bus, *natsserver.Server) {
	tb.Helper()
	srv := StartServer(tb)
	return Connect(tb, srv, opts...), srv
}

// Recorder collects the messages published on one subject. It is safe
// for concurrent use.
type Recorder[T nats.Message] struct {
	mu   sync.Mutex
	msgs []nats.Msg[T]
	wake chan struct{} // closed and replaced on every message
	sub  *nats.Subscription
}

// Record subscribes to s on b and records every valid message until the
// test ends. Use a subject with wildcards (nats.DEAStart("*")) to record
// several subjects.
func Record[T nats.Message](tb testing.TB, b *nats.Bus, s nats.Subject[T], opts ...nats.SubscribeOption) *Recorder[T] {
	tb.Helper()
	r := &Recorder[T]{wake: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	sub, err := nats.Subscribe(ctx, b, s, func(_ context.Context, m *nats.Msg[T]) error {
		r.mu.Lock()
		r.msgs = append(r.msgs, *m)
		close(r.wake)
		r.wake = make(chan struct{})
		r.mu.Unlock()
		return nil
	}, opts...)
	if err != nil {
		tb.Fatalf("natstest: record %s: %v", s, err)
	}
	r.sub = sub
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		_ = sub.Unsubscribe(ctx)
	})
	return r
}

// Messages returns a copy of the messages recorded so far, in order.
func (r *Recorder[T]) Messages() []nats.Msg[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]nats.Msg[T](nil), r.msgs...)
}

// Len returns how many messages were recorded.
func (r *Recorder[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// Wait waits until at least n messages were recorded and returns them
// all, or returns what there is with ctx's error.
func (r *Recorder[T]) Wait(ctx context.Context, n int) ([]nats.Msg[T], error) {
	for {
		r.mu.Lock()
		if len(r.msgs) >= n {
			out := append([]nats.Msg[T](nil), r.msgs...)
			r.mu.Unlock()
			return out, nil
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return r.Messages(), ctx.Err()
		}
	}
}

// Subscription returns the recorder's subscription.
func (r *Recorder[T]) Subscription() *nats.Subscription { return r.sub }

// ErrorLog collects the errors a Bus reports to its error handler. Its
// zero value is ready; pass [ErrorLog.Option] to [Connect] or
// nats.Connect. It is safe for concurrent use.
type ErrorLog struct {
	mu   sync.Mutex
	errs []error
}

// Option returns the bus option that records into l.
func (l *ErrorLog) Option() nats.Option {
	return nats.WithErrorHandler(func(err error) {
		l.mu.Lock()
		l.errs = append(l.errs, err)
		l.mu.Unlock()
	})
}

// Errors returns a copy of the errors recorded so far, in order.
func (l *ErrorLog) Errors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// WaitFor polls until cond holds or ctx ends; it reports whether cond
// held. Use it instead of sleeping in tests.
func WaitFor(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
	return true
}

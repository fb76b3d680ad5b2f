package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// Bus is a connection to NATS that speaks the DEA protocol: typed
// [Publish], [Subscribe], [Request], [RequestMany] and [Handle] over one
// *natsgo.Conn of the official client.
//
// Handlers run on the subscription's own goroutines (see [WithWorkers]),
// never on the connection's reader, so a slow handler delays its own
// subscription only; messages waiting for it are bounded (see
// [WithPendingLimits]) and overflow is reported, not hidden.
//
// While the connection is down the client reconnects on its own (forever
// by default), keeps publishes in a buffer (see
// [WithReconnectBufferSize]) and subscribes again on reconnect; see the
// package documentation for what can still be lost.
//
// A Bus is safe for concurrent use. Close or Drain it when done.
type Bus struct {
	nc   *natsgo.Conn
	opts options
	log  *slog.Logger
	disp *dispatcher

	// ctx is the context of handlers; cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	// done is closed by Close, to wake waiting requests.
	done chan struct{}
	// connClosed is closed when the underlying connection closed.
	connClosed     chan struct{}
	connClosedOnce sync.Once

	mu       sync.Mutex
	closed   bool // no new subscriptions or requests
	shut     bool // Close has run
	subs     map[*Subscription]struct{}
	mux      *replyMux
	closeErr error

	published    atomic.Uint64
	delivered    atomic.Uint64
	invalid      atomic.Uint64
	handlerErrs  atomic.Uint64
	lateReplies  atomic.Uint64
	slowConsumer atomic.Uint64
}

// ConnEventKind says what happened to a bus's connection.
type ConnEventKind uint8

// The connection events.
const (
	// ConnConnected: the first connection was made in the background
	// (see [WithRetryOnFailedConnect]).
	ConnConnected ConnEventKind = iota + 1
	// ConnDisconnected: the connection to the server was lost; the bus
	// is reconnecting.
	ConnDisconnected
	// ConnReconnected: the bus is connected again and has subscribed
	// again.
	ConnReconnected
	// ConnClosed: the connection is closed for good (Close, Drain, or
	// reconnect attempts exhausted).
	ConnClosed
	// ConnLameDuck: the server is shutting down and asked clients to move.
	ConnLameDuck
)

// String returns "connected", "disconnected", "reconnected", "closed" or
// "lame duck".
func (k ConnEventKind) String() string {
	switch k {
	case ConnConnected:
		return "connected"
	case ConnDisconnected:
		return "disconnected"
	case ConnReconnected:
		return "reconnected"
	case ConnClosed:
		return "closed"
	case ConnLameDuck:
		return "lame duck"
	}
	return fmt.Sprintf("ConnEventKind(%d)", uint8(k))
}

// ConnEvent is a change of a bus's connection; see
// [WithConnEventHandler].
type ConnEvent struct {
	// Kind says what happened.
	Kind ConnEventKind
	// URL is the server's URL (credentials redacted), when known.
	URL string
	// Err is the cause of a disconnect, when known.
	Err error
}

// Stats are counters of a bus since it was connected.
type Stats struct {
	// Published counts messages, requests and replies sent (or buffered
	// while disconnected).
	Published uint64
	// Delivered counts received messages handed to a handler.
	Delivered uint64
	// Invalid counts received messages and replies dropped because they
	// did not decode or validate.
	Invalid uint64
	// HandlerErrors counts errors returned by handlers.
	HandlerErrors uint64
	// SlowConsumer counts the times a subscription dropped messages
	// because its pending queue was full; [Subscription.Dropped] has the
	// number of messages.
	SlowConsumer uint64
	// LateReplies counts replies that arrived after their request had
	// stopped collecting.
	LateReplies uint64
	// Reconnects counts reconnections.
	Reconnects uint64
}

// Connect connects to the NATS server at url (a comma-separated list of
// URLs for a cluster; nats.go's default URL when empty) and returns a
// Bus. ctx bounds the connection attempt, not the Bus's life. Unless
// [WithRetryOnFailedConnect] is given, a server that cannot be reached is
// an error.
func Connect(ctx context.Context, url string, opts ...Option) (*Bus, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats: connect: %w", err)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.connectTimeout <= 0 || o.reconnectWait < 0 || o.reconnectJitter < 0 || o.pingInterval <= 0 || o.maxPingsOut <= 0 {
		return nil, errors.New("nats: connect: timeouts, intervals and ping counts must be positive")
	}
	if url == "" && o.inProcess == nil {
		url = natsgo.DefaultURL
	}

	b := &Bus{
		opts:       o,
		log:        o.logger,
		done:       make(chan struct{}),
		connClosed: make(chan struct{}),
		subs:       make(map[*Subscription]struct{}),
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	} else if o.name != "" {
		b.log = b.log.With("nats", o.name)
	}
	b.disp = newDispatcher()
	b.ctx, b.cancel = context.WithCancel(context.Background())

	d := &connectDialer{ctx: ctx, timeout: o.connectTimeout}
	nopts := []natsgo.Option{
		natsgo.Name(o.name),
		natsgo.MaxReconnects(o.maxReconnects),
		natsgo.ReconnectWait(o.reconnectWait),
		natsgo.ReconnectJitter(o.reconnectJitter, o.reconnectJitter),
		natsgo.ReconnectBufSize(o.reconnectBufSize),
		natsgo.PingInterval(o.pingInterval),
		natsgo.MaxPingsOutstanding(o.maxPingsOut),
		natsgo.Timeout(o.connectTimeout),
		natsgo.RetryOnFailedConnect(o.retryOnFailedConnect),
		// Drain is bounded by the caller's ctx (see Bus.Drain).
		natsgo.DrainTimeout(24 * time.Hour),
		natsgo.SetCustomDialer(d),
		natsgo.ConnectHandler(b.onConnect),
		natsgo.DisconnectErrHandler(b.onDisconnect),
		natsgo.ReconnectHandler(b.onReconnect),
		natsgo.ClosedHandler(b.onClosed),
		natsgo.ErrorHandler(b.onAsyncError),
		natsgo.LameDuckModeHandler(b.onLameDuck),
	}
	if o.inProcess != nil {
		nopts = append(nopts, natsgo.InProcessServer(o.inProcess))
	}
	nopts = append(nopts, o.natsOptions...)

	nc, err := natsgo.Connect(url, nopts...)
	d.connected.Store(true)
	if err != nil {
		b.cancel()
		b.disp.close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("nats: connect %s: %w (%w)", url, ctxErr, err)
		}
		return nil, fmt.Errorf("nats: connect %s: %w", url, err)
	}
	b.nc = nc
	return b, nil
}

// connectDialer dials with the ctx of Connect for the first connection
// and without it for reconnects.
type connectDialer struct {
	ctx       context.Context
	timeout   time.Duration
	connected atomic.Bool
}

func (d *connectDialer) Dial(network, address string) (net.Conn, error) {
	ctx := d.ctx
	if d.connected.Load() {
		ctx = context.Background()
	}
	nd := net.Dialer{Timeout: d.timeout}
	return nd.DialContext(ctx, network, address)
}

// Conn returns the official client's connection, for what this package
// does not wrap (JetStream, headers, statistics). Closing it closes the
// bus's connection; use [Bus.Close] instead.
func (b *Bus) Conn() *natsgo.Conn { return b.nc }

// Connected reports whether the bus is connected to a server right now.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Published:     b.published.Load(),
		Delivered:     b.delivered.Load(),
		Invalid:       b.invalid.Load(),
		HandlerErrors: b.handlerErrs.Load(),
		SlowConsumer:  b.slowConsumer.Load(),
		LateReplies:   b.lateReplies.Load(),
		Reconnects:    b.nc.Stats().Reconnects,
	}
}

// Flush waits until the server has received everything published so
// far, or ctx ends. It fails while the connection is down.
func (b *Bus) Flush(ctx context.Context) error {
	if err := b.usable(); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		// nats.go wants a deadline; the caller's ctx still bounds it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 24*time.Hour)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return wrapConnErr("flush", "", err)
	}
	return nil
}

// Close closes the bus now: subscriptions stop, messages not yet handled
// are discarded, handlers see their context cancelled and requests
// waiting for replies return [ErrClosed]. Close waits for running
// handlers to return. Messages published but not yet sent (for example
// while disconnected) are lost; use [Bus.Drain] to send them. Close may
// be called more than once; later calls return what the first returned.
// Do not call Close or Drain from a handler: they wait for handlers.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.shut {
		err := b.closeErr
		b.mu.Unlock()
		return err
	}
	b.closed, b.shut = true, true
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	b.cancel()
	close(b.done)
	b.nc.Close()
	for _, s := range subs {
		s.track.close()
		_ = s.track.wait(context.Background())
	}
	// nats.go calls the closed handler asynchronously; make sure the event
	// is queued before the dispatcher stops.
	b.markConnClosed()
	b.disp.close()
	return nil
}

// Drain closes the bus gracefully: it stops receiving, lets handlers
// finish the messages already received (they can still publish and
// reply), sends everything published, and then closes. If ctx ends
// first, Drain closes the bus at once as Close does and returns ctx's
// error. Drain after Close returns nil.
func (b *Bus) Drain(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true // no new subscriptions
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	err := func() error {
		for _, s := range subs {
			if err := s.drainStart(); err != nil {
				return err
			}
		}
		for _, s := range subs {
			if err := s.drainWait(ctx); err != nil {
				return err
			}
		}
		// Then the reply mux, and everything published.
		if err := b.nc.Drain(); err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) {
			return wrapConnErr("drain", "", err)
		}
		select {
		case <-b.connClosed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("nats: drain: %w", ctx.Err())
		}
	}()
	b.Close()
	return err
}

// usable returns ErrClosed once Close or Drain was called.
func (b *Bus) usable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

func (b *Bus) markConnClosed() {
	b.connClosedOnce.Do(func() {
		close(b.connClosed)
		b.event(ConnEvent{Kind: ConnClosed})
	})
}

func (b *Bus) event(ev ConnEvent) {
	b.log.Info("nats connection "+ev.Kind.String(), "url", ev.URL, "err", ev.Err)
	if h := b.opts.eventHandler; h != nil {
		b.disp.push(func() { h(ev) })
	}
}

// report hands an error without a caller to the error handler.
func (b *Bus) report(err error) {
	b.log.Warn("nats delivery error", "err", err)
	if h := b.opts.errorHandler; h != nil {
		b.disp.push(func() { h(err) })
	}
}

func (b *Bus) onConnect(nc *natsgo.Conn) {
	b.event(ConnEvent{Kind: ConnConnected, URL: nc.ConnectedUrlRedacted()})
}

func (b *Bus) onDisconnect(nc *natsgo.Conn, err error) {
	b.event(ConnEvent{Kind: ConnDisconnected, URL: nc.ConnectedUrlRedacted(), Err: err})
}

func (b *Bus) onReconnect(nc *natsgo.Conn) {
	b.event(ConnEvent{Kind: ConnReconnected, URL: nc.ConnectedUrlRedacted()})
}

func (b *Bus) onClosed(*natsgo.Conn) { b.markConnClosed() }

func (b *Bus) onLameDuck(nc *natsgo.Conn) {
	b.event(ConnEvent{Kind: ConnLameDuck, URL: nc.ConnectedUrlRedacted()})
}

func (b *Bus) onAsyncError(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
	if sub == nil {
		b.report(fmt.Errorf("nats: connection: %w", err))
		return
	}
	if errors.Is(err, natsgo.ErrSlowConsumer) {
		b.slowConsumer.Add(1)
		err = fmt.Errorf("%w (%w)", ErrSlowConsumer, err)
	}
	b.report(&DeliveryError{Subject: sub.Subject, Queue: sub.Queue, Err: err})
}

// wrapConnErr turns an error of nats.go into one of this package's
// classes, keeping the original in the chain.
func wrapConnErr(op, subject string, err error) error {
	var class error
	switch {
	case errors.Is(err, natsgo.ErrReconnectBufExceeded):
		class = ErrBufferFull
	case errors.Is(err, natsgo.ErrConnectionClosed), errors.Is(err, natsgo.ErrConnectionDraining):
		class = ErrClosed
	case errors.Is(err, natsgo.ErrMaxPayload):
		class = ErrTooLarge
	case errors.Is(err, natsgo.ErrNoResponders):
		class = ErrNoResponders
	case errors.Is(err, natsgo.ErrBadSubject):
		class = ErrInvalidSubject
	}
	where := op
	if subject != "" {
		where = fmt.Sprintf("%s %q", op, subject)
	}
	if class == nil {
		return fmt.Errorf("nats: %s: %w", where, err)
	}
	return fmt.Errorf("nats: %s: %w (%w)", where, class, err)
}

// dispatcher runs callbacks in order on one goroutine, so that callers
// never block on them and they never run under a lock.
type dispatcher struct {
	mu     sync.Mutex
	queue  []func()
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) push(f func()) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, f)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			closed := d.closed
			d.mu.Unlock()
			if closed {
				return
			}
			<-d.wake
			continue
		}
		f := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		f()
	}
}

// close runs what is queued, then stops the goroutine.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}

// tracker counts running handler calls and lets Close wait for them.
type tracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when n drops to 0; nil when nobody waits
}

// enter registers a call; false once closed.
func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

func (t *tracker) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// wait returns when no call is running, or with ctx's error.
func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

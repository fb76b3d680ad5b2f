package nats

import (
	"log/slog"
	"net"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// Defaults of a [Bus], tuned for a DEA: never give up reconnecting (as
// the DEA did), reconnect quickly to a local server, keep publishing into
// a buffer while disconnected, and notice a dead server within a minute.
const (
	DefaultReconnectWait       = 250 * time.Millisecond
	DefaultReconnectJitter     = 100 * time.Millisecond
	DefaultMaxReconnects       = -1 // forever
	DefaultReconnectBufferSize = 8 << 20
	DefaultPingInterval        = 20 * time.Second
	DefaultMaxPingsOutstanding = 3
	DefaultConnectTimeout      = 2 * time.Second
	DefaultPendingMsgs         = 65536
	DefaultPendingBytes        = 64 << 20
)

// Option configures a [Bus]; pass them to [Connect].
type Option func(*options)

type options struct {
	name                 string
	logger               *slog.Logger
	errorHandler         func(error)
	eventHandler         func(ConnEvent)
	reconnectWait        time.Duration
	reconnectJitter      time.Duration
	maxReconnects        int
	reconnectBufSize     int
	pingInterval         time.Duration
	maxPingsOut          int
	connectTimeout       time.Duration
	retryOnFailedConnect bool
	inProcess            InProcessConnProvider
	natsOptions          []natsgo.Option
}

func defaultOptions() options {
	return options{
		reconnectWait:    DefaultReconnectWait,
		reconnectJitter:  DefaultReconnectJitter,
		maxReconnects:    DefaultMaxReconnects,
		reconnectBufSize: DefaultReconnectBufferSize,
		pingInterval:     DefaultPingInterval,
		maxPingsOut:      DefaultMaxPingsOutstanding,
		connectTimeout:   DefaultConnectTimeout,
	}
}

// InProcessConnProvider is a NATS server the bus can talk to through an
// in-memory connection, such as natsserver.Server (package
// github.com/paaskit/paaskit/nats/natsserver).
type InProcessConnProvider interface {
	InProcessConn() (net.Conn, error)
}

// WithName sets the connection name the server shows in its monitoring.
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithLogger sets the logger for connection events and delivery errors.
// Nil (the default) discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithErrorHandler sets a function told of every error that has no
// caller to go to: a received message that does not decode or validate,
// an error returned by a handler, dropped messages (all as
// [*DeliveryError]), and connection errors. It runs on one goroutine, in
// order, never holding a lock of the bus; it should not block for long,
// as later notifications wait. Nil (the default) only logs them.
func WithErrorHandler(f func(error)) Option { return func(o *options) { o.errorHandler = f } }

// WithConnEventHandler sets a function told when the connection drops,
// comes back and closes. It runs on the same goroutine as the error
// handler.
func WithConnEventHandler(f func(ConnEvent)) Option {
	return func(o *options) { o.eventHandler = f }
}

// WithReconnectWait sets the wait between reconnect attempts to one
// server, plus a random jitter of up to jitter. Defaults:
// [DefaultReconnectWait], [DefaultReconnectJitter].
func WithReconnectWait(wait, jitter time.Duration) Option {
	return func(o *options) { o.reconnectWait, o.reconnectJitter = wait, jitter }
}

// WithMaxReconnects sets how many reconnect attempts are made before the
// bus gives up and closes; negative means forever (the default).
func WithMaxReconnects(n int) Option { return func(o *options) { o.maxReconnects = n } }

// WithReconnectBufferSize sets how many bytes of published messages are
// kept while the connection is down, to be sent when it comes back. A
// publish that does not fit fails with [ErrBufferFull]. Zero uses
// nats.go's default; negative disables buffering, so that publishing
// while disconnected fails at once. Default [DefaultReconnectBufferSize].
func WithReconnectBufferSize(n int) Option { return func(o *options) { o.reconnectBufSize = n } }

// WithPing sets how often the client pings the server and how many pings
// may go unanswered before the connection is considered dead. Defaults:
// [DefaultPingInterval], [DefaultMaxPingsOutstanding].
func WithPing(interval time.Duration, maxOutstanding int) Option {
	return func(o *options) { o.pingInterval, o.maxPingsOut = interval, maxOutstanding }
}

// WithConnectTimeout bounds each attempt to connect to a server,
// including the protocol handshake. Default [DefaultConnectTimeout].
func WithConnectTimeout(d time.Duration) Option { return func(o *options) { o.connectTimeout = d } }

// WithRetryOnFailedConnect makes [Connect] succeed even when no server
// can be reached yet: the bus then connects in the background, buffering
// publishes and subscriptions as while reconnecting. Off by default:
// Connect fails with the connection error.
func WithRetryOnFailedConnect(retry bool) Option {
	return func(o *options) { o.retryOnFailedConnect = retry }
}

// WithInProcessServer connects to srv through an in-memory connection
// instead of the URL given to [Connect] (which may then be empty).
func WithInProcessServer(srv InProcessConnProvider) Option {
	return func(o *options) { o.inProcess = srv }
}

// WithNATSOptions passes options to the official client (credentials,
// TLS, a custom inbox prefix, ...). They are applied after the bus's own
// and can override them; replacing the connection handlers breaks the
// bus's events and error reporting.
func WithNATSOptions(opts ...natsgo.Option) Option {
	return func(o *options) { o.natsOptions = append(o.natsOptions, opts...) }
}

// SubscribeOption configures one subscription; pass them to [Subscribe]
// or [Handle].
type SubscribeOption func(*subOptions)

type subOptions struct {
	queue        string
	workers      int
	pendingMsgs  int
	pendingBytes int
}

func defaultSubOptions() subOptions {
	return subOptions{workers: 1, pendingMsgs: DefaultPendingMsgs, pendingBytes: DefaultPendingBytes}
}

// WithQueue joins the queue group: each message is delivered to one
// member of the group only (the old "staging" queue, or several
// controllers sharing droplet.exited).
func WithQueue(group string) SubscribeOption { return func(o *subOptions) { o.queue = group } }

// WithWorkers sets how many messages of the subscription are handled at
// once. With 1 (the default) messages are handled one at a time, in the
// order they arrived; with more, order is not kept.
func WithWorkers(n int) SubscribeOption { return func(o *subOptions) { o.workers = n } }

// WithPendingLimits bounds the messages received but not yet handled.
// Past either bound new messages are dropped and reported as
// [ErrSlowConsumer]; the connection itself never blocks on a slow
// handler. Zero or negative means no bound on that count. Defaults:
// [DefaultPendingMsgs], [DefaultPendingBytes].
func WithPendingLimits(msgs, bytes int) SubscribeOption {
	return func(o *subOptions) { o.pendingMsgs, o.pendingBytes = msgs, bytes }
}

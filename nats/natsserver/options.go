package natsserver

import "log/slog"

// Option configures a [Server]; pass them to [Start].
type Option func(*options)

type options struct {
	host       string
	port       int
	noListener bool
	name       string
	maxPayload int32
	logger     *slog.Logger
	jetStream  *JetStream
}

func defaultOptions() options {
	return options{host: "127.0.0.1"}
}

// JetStream enables NATS JetStream with explicit limits: the embedded
// server never sizes itself from the machine.
type JetStream struct {
	// MaxMemory is the most memory streams may use, in bytes. Required
	// (positive).
	MaxMemory int64
	// MaxStore is the most disk streams may use, in bytes. Required
	// (positive).
	MaxStore int64
	// StoreDir is where streams are stored. Empty means a temporary
	// directory that Shutdown removes.
	StoreDir string
}

// WithHost sets the address to listen on. Default "127.0.0.1": the
// embedded server is for this machine; listen on "0.0.0.0" only to let
// other machines in (and then consider a real cluster).
func WithHost(host string) Option { return func(o *options) { o.host = host } }

// WithPort sets the client port. Zero (the default) picks a free port;
// see [Server.Port].
func WithPort(port int) Option { return func(o *options) { o.port = port } }

// WithoutListener runs the server with no network listener at all:
// clients reach it only in-process, through [Server.InProcessConn] (pass
// the Server to nats.WithInProcessServer).
func WithoutListener() Option { return func(o *options) { o.noListener = true } }

// WithName sets the server's name (shown to clients and in logs).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithMaxPayload sets the largest message the server accepts, in bytes.
// Zero means the NATS default of 1 MiB, enough for a heartbeat of about
// 4,000 instances.
func WithMaxPayload(n int32) Option { return func(o *options) { o.maxPayload = n } }

// WithLogger sends the server's log to l (notices at Info, warnings at
// Warn, errors at Error, debug at Debug when l enables it). Nil (the
// default) discards it.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithJetStream enables JetStream with the given limits.
func WithJetStream(js JetStream) Option { return func(o *options) { o.jetStream = &js } }

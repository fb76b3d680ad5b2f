package client

import (
	"log/slog"
	"time"
)

// Option configures a Client. Options only set fields; New validates.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	reattach time.Duration
	maxIdle  int
}

// DefaultMaxIdleConns is how many idle connections a Client keeps for
// reuse by default.
const DefaultMaxIdleConns = 16

func defaultOptions() options {
	return options{maxIdle: DefaultMaxIdleConns}
}

// WithLogger sets the logger; nil (the default) logs nothing. Stream
// breaks and re-attaches are logged at info level.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithReattach makes process streams re-attach by themselves when they
// break before the process exited (the server restarted): they retry,
// with growing pauses up to a second, for up to d, then give up with
// ErrDetached. The output continues from where it stopped, without loss
// or repetition; standard input is not re-attached (it was closed with
// the stream). Default 0: no automatic re-attach.
func WithReattach(d time.Duration) Option { return func(o *options) { o.reattach = d } }

// WithMaxIdleConns sets how many idle connections the Client keeps for
// reuse (default DefaultMaxIdleConns). Raise it for heavily concurrent
// use.
func WithMaxIdleConns(n int) Option { return func(o *options) { o.maxIdle = n } }

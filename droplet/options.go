package droplet

import (
	"log/slog"
	"net/http"
	"time"
)

// Defaults of a Registry, used unless an Option says otherwise.
const (
	// DefaultInactivityTimeout is how long a download may go without
	// receiving a byte before the attempt is abandoned (dea_ng's 30 s).
	DefaultInactivityTimeout = 30 * time.Second
	// DefaultAttempts is how many times a download is tried in all.
	DefaultAttempts = 5
	// DefaultMaxDropletSize caps the size of a downloaded or imported
	// droplet: 4 GiB.
	DefaultMaxDropletSize int64 = 4 << 30
	// DefaultReapGrace is how long a droplet must have had no users
	// before Reap removes it.
	DefaultReapGrace = 10 * time.Minute
)

// Option configures a Registry. Options only set fields; OpenRegistry
// validates the result.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	client       *http.Client
	inactivity   time.Duration
	attempts     int
	minDelay     time.Duration
	maxDelay     time.Duration
	maxSize      int64
	reapInterval time.Duration
	reapGrace    time.Duration
}

func defaultOptions() options {
	return options{
		client:     http.DefaultClient,
		inactivity: DefaultInactivityTimeout,
		attempts:   DefaultAttempts,
		minDelay:   500 * time.Millisecond,
		maxDelay:   15 * time.Second,
		maxSize:    DefaultMaxDropletSize,
		reapGrace:  DefaultReapGrace,
	}
}

// WithLogger makes the Registry log what it does (downloads, retries,
// droplets found or removed on open, reaping) to l. nil, the default,
// logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithHTTPClient makes downloads use c (its transport, proxy and TLS
// settings) instead of http.DefaultClient. A Timeout set on c bounds each
// attempt as a whole, which for large droplets is rarely wanted; the
// inactivity timeout is the Registry's own.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.client = c }
}

// WithInactivityTimeout sets how long a download attempt may receive
// nothing (no response, or no byte of the body) before it is abandoned
// with ErrInactive and retried. The default is DefaultInactivityTimeout.
func WithInactivityTimeout(d time.Duration) Option {
	return func(o *options) { o.inactivity = d }
}

// WithRetry sets how many attempts a download makes in all (at least 1;
// the default is DefaultAttempts) and the exponential backoff between
// them: from minDelay (default 500 ms), doubling up to maxDelay (default
// 15 s), each randomised by ±50%.
func WithRetry(attempts int, minDelay, maxDelay time.Duration) Option {
	return func(o *options) { o.attempts, o.minDelay, o.maxDelay = attempts, minDelay, maxDelay }
}

// WithMaxDropletSize caps the size of droplets the Registry downloads or
// imports; a larger one fails with ErrLimitExceeded. The default is
// DefaultMaxDropletSize; a negative value means no limit.
func WithMaxDropletSize(n int64) Option {
	return func(o *options) { o.maxSize = n }
}

// WithReapInterval makes the Registry call Reap every d in a goroutine
// that Close stops. 0, the default, starts none: the caller reaps.
func WithReapInterval(d time.Duration) Option {
	return func(o *options) { o.reapInterval = d }
}

// WithReapGrace sets how long a droplet must have had no users before
// Reap removes it (default DefaultReapGrace). A droplet found on disk at
// OpenRegistry counts as unused since then, which gives the owners of
// instances that survived a restart time to acquire their droplets again.
func WithReapGrace(d time.Duration) Option {
	return func(o *options) { o.reapGrace = d }
}

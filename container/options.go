package container

import (
	"log/slog"
	"time"
)

// Option configures a Manager. Options only set fields; New validates.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	cgroupParent string
	outputLimit  int64
	stopTimeout  time.Duration
	onEvent      func(Event)
	network      *NetworkConfig
	quota        QuotaBackend
	hooks        Hooks
	setupTimeout time.Duration
}

// Defaults of the options.
const (
	DefaultCgroupParent = "/paaskit"
	DefaultOutputLimit  = 16 << 20
	DefaultStopTimeout  = 10 * time.Second
	DefaultSetupTimeout = 30 * time.Second
)

func defaultOptions() options {
	return options{
		cgroupParent: DefaultCgroupParent,
		outputLimit:  DefaultOutputLimit,
		stopTimeout:  DefaultStopTimeout,
		setupTimeout: DefaultSetupTimeout,
	}
}

// WithLogger sets the logger; nil (the default) logs nothing.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCgroupParent sets the cgroup under which containers' cgroups are
// made (default DefaultCgroupParent), as an absolute cgroup path.
func WithCgroupParent(p string) Option { return func(o *options) { o.cgroupParent = p } }

// WithOutputLimit caps what is kept of each process's stdout and of its
// stderr, in bytes (default DefaultOutputLimit; 0 or less: no cap). Past
// the cap a marker line is written once and the rest is counted and
// dropped (ExitStatus.StdoutDropped).
func WithOutputLimit(n int64) Option { return func(o *options) { o.outputLimit = n } }

// WithStopTimeout sets how long Stop waits after SIGTERM before it sends
// SIGKILL (default DefaultStopTimeout).
func WithStopTimeout(d time.Duration) Option { return func(o *options) { o.stopTimeout = d } }

// WithEventHandler sets a function told of every Event. It is called on
// one goroutine, in order, outside the Manager's locks; a slow handler
// delays later events but nothing else.
func WithEventHandler(f func(Event)) Option { return func(o *options) { o.onEvent = f } }

// WithNetwork gives every container of the Manager a network (see
// NetworkConfig); without it containers have only a loopback device.
// Networking enables IPv4 forwarding on the host
// (net.ipv4.ip_forward=1).
func WithNetwork(cfg NetworkConfig) Option {
	return func(o *options) { o.network = &cfg }
}

// WithQuota chooses the disk quota backend instead of probing for the
// first that works (see QuotaBackend). New fails when the chosen one does
// not work on the host.
func WithQuota(b QuotaBackend) Option { return func(o *options) { o.quota = b } }

// WithHooks adds hooks to every container's lifecycle (see Hooks).
func WithHooks(h Hooks) Option { return func(o *options) { o.hooks = h } }

// WithSetupTimeout bounds how long Create waits for a container's agent to
// set the container up, child hooks not counted (they have their own
// timeouts); default DefaultSetupTimeout. An agent that dies during setup
// fails Create at once, with what it said.
func WithSetupTimeout(d time.Duration) Option { return func(o *options) { o.setupTimeout = d } }

// EventType says what happened to a container.
type EventType int

// The event types.
const (
	// EventOutOfMemory: a process of the container was killed by the OOM
	// killer. Info().Events then has "out of memory".
	EventOutOfMemory EventType = iota + 1
	// EventGraceExpired: the container saw no activity for its grace
	// time and the Manager destroyed it.
	EventGraceExpired
)

func (t EventType) String() string {
	switch t {
	case EventOutOfMemory:
		return "out of memory"
	case EventGraceExpired:
		return "grace time expired"
	}
	return "unknown"
}

// Event is something that happened to a container.
type Event struct {
	Handle string
	Type   EventType
	Time   time.Time
}

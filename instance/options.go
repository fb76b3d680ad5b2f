package instance

import (
	"log/slog"
	"time"

	"github.com/paaskit/paaskit/container"
)

// Config holds what a Manager cannot do without. Every field is
// required.
type Config struct {
	// BaseDir is the DEA's directory: instances/<id> (each instance's
	// home directory, bind-mounted at /home/vcap), crashes/<id> (the logs
	// of crashed instances), db/instances.json (the snapshot) and tmp/.
	// Created when missing.
	BaseDir string
	// Containers creates and finds containers (NewContainerBackend for
	// package container).
	Containers Containers
	// Droplets provides droplets by SHA-1. When it is also a
	// DropletStore, unreferenced droplets are reaped.
	Droplets DropletSource
	// Stacks maps stack names (Spec.Stack) to root file systems
	// (container.Spec.RootFS). With a single stack, Spec.Stack may be
	// empty.
	Stacks map[string]string
}

// Validate reports the first missing field as a *SpecError.
func (c *Config) Validate() error {
	switch {
	case c.BaseDir == "":
		return specErr("BaseDir", "required")
	case c.Containers == nil:
		return specErr("Containers", "required")
	case c.Droplets == nil:
		return specErr("Droplets", "required")
	case len(c.Stacks) == 0:
		return specErr("Stacks", "at least one stack is required")
	}
	for name, root := range c.Stacks {
		if root == "" {
			return specErr("Stacks", "stack %q has no root file system", name)
		}
	}
	return nil
}

// Option configures a Manager. Options only set fields; New validates.
type Option func(*options)

type options struct {
	logger        *slog.Logger
	resources     ResourceConfig
	localIP       string
	user          string
	uid, gid      int
	uidSet        bool
	healthTimeout time.Duration
	restart       RestartPolicy
	reapers       ReaperConfig
	launcher      Launcher
	stopTimeout   time.Duration
	nproc         int64
	bindMounts    []container.BindMount
	createLimit   int
}

// Defaults of the options.
const (
	DefaultUser        = "vcap"
	DefaultNprocLimit  = 512 // dea_ng's instance.nproc_limit
	DefaultStopTimeout = time.Minute
	// DefaultCreateParallelism bounds the containers being created (and
	// their ports mapped) at once.
	DefaultCreateParallelism = 1
	// MemoryToCPUShareRatio, MinCPUShares and MaxCPUShares give an
	// instance's cpu shares: memory MB / 8, within 1..256, as dea_ng.
	MemoryToCPUShareRatio = 8
	MinCPUShares          = 1
	MaxCPUShares          = 256
)

func defaultOptions() options {
	return options{
		user:          DefaultUser,
		uid:           -1,
		gid:           -1,
		healthTimeout: DefaultHealthCheckTimeout,
		launcher:      DefaultLauncher,
		stopTimeout:   DefaultStopTimeout,
		nproc:         DefaultNprocLimit,
		reapers:       DefaultReaperConfig(),
		createLimit:   DefaultCreateParallelism,
	}
}

// WithLogger sets the logger; nil (the default) logs nothing.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithResources sets the DEA's capacity (default: ResourceConfig's
// defaults).
func WithResources(c ResourceConfig) Option { return func(o *options) { o.resources = c } }

// WithLocalIP sets the DEA's address, given to apps as CF_INSTANCE_IP
// and reported in Stats (default: the first non-loopback IPv4 address of
// the host, else 127.0.0.1).
func WithLocalIP(ip string) Option { return func(o *options) { o.localIP = ip } }

// WithUser sets the user apps run as (default DefaultUser) and the
// uid and gid their files are given on the host. A negative uid means:
// look the name up in the stack's /etc/passwd when the stack is a
// directory, and otherwise leave files to the DEA's user.
func WithUser(name string, uid, gid int) Option {
	return func(o *options) { o.user, o.uid, o.gid, o.uidSet = name, uid, gid, true }
}

// WithHealthCheckTimeout sets the readiness timeout of instances whose
// Spec sets none (default DefaultHealthCheckTimeout).
func WithHealthCheckTimeout(d time.Duration) Option {
	return func(o *options) { o.healthTimeout = d }
}

// WithRestartPolicy turns on restarting crashed instances (default off:
// as in the DEA, the controller decides).
func WithRestartPolicy(p RestartPolicy) Option { return func(o *options) { o.restart = p } }

// WithReapers sets the reapers' intervals and thresholds (default
// DefaultReaperConfig). A zero interval turns that reaper off.
func WithReapers(c ReaperConfig) Option {
	return func(o *options) { o.reapers = c.withDefaults() }
}

// WithLauncher sets what turns a start command into the app's process
// (default DefaultLauncher).
func WithLauncher(l Launcher) Option { return func(o *options) { o.launcher = l } }

// WithStopTimeout bounds one attempt to stop an instance's container
// (TERM, the container's grace time, KILL, destroy); an instance whose
// stop does not finish in time stays STOPPING and the stopping reaper
// tries again (default DefaultStopTimeout).
func WithStopTimeout(d time.Duration) Option { return func(o *options) { o.stopTimeout = d } }

// WithNprocLimit caps the processes and threads of each instance, with
// the container's pids cgroup (default DefaultNprocLimit). dea_ng used
// RLIMIT_NPROC, which counts every process of the uid on the host.
func WithNprocLimit(n int64) Option { return func(o *options) { o.nproc = n } }

// WithBindMounts adds host directories to every instance's container
// (dea_ng's bind_mounts).
func WithBindMounts(m ...container.BindMount) Option {
	return func(o *options) { o.bindMounts = append(o.bindMounts, m...) }
}

// WithCreateParallelism bounds how many containers the Manager creates
// (and maps ports for) at once, whatever the number of concurrent
// starts (default DefaultCreateParallelism; 0 or less: no bound).
// Container creation contends for the host's kernel (mounts, cgroups,
// netlink), so more at once is not faster, and a burst of a hundred
// starts otherwise makes the kernel drop netlink replies.
func WithCreateParallelism(n int) Option { return func(o *options) { o.createLimit = n } }

package staging

import (
	"log/slog"
	"net/http"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/droplet"
)

// Stack is a root file system buildpacks run on (cflinuxfs's role).
type Stack struct {
	// RootFS is the container's root (see container.Spec.RootFS); required.
	RootFS string
	// BindMounts are added to every staging container on this stack (see
	// HostStack).
	BindMounts []container.BindMount
	// User runs the buildpacks; default "vcap". UID and GID are its ids,
	// which own the workspace; default 10001 (the test stack's vcap).
	User     string
	UID, GID int
}

// Option configures a Stager. Options only set fields; New validates.
type Option func(*options)

type options struct {
	blobs     droplet.BlobStore
	client    *http.Client
	stacks    map[string]Stack
	adminDir  string
	workDir   string
	logger    *slog.Logger
	tailLines int
	memoryMB  int64
	diskMB    int64
	fds       uint64
}

// WithBlobStore sets the store that Source keys refer to (packages,
// buildpack zips, caches, droplets). Without it, keys are refused.
func WithBlobStore(s droplet.BlobStore) Option { return func(o *options) { o.blobs = s } }

// WithHTTPClient sets the client for Source URLs; default http.DefaultClient.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithStack makes the stack name available to requests.
func WithStack(name string, s Stack) Option {
	return func(o *options) {
		if o.stacks == nil {
			o.stacks = map[string]Stack{}
		}
		o.stacks[name] = s
	}
}

// WithAdminBuildpacks sets the directory of admin buildpacks: the buildpack
// with key K is the directory dir/K (dea_ng's admin_buildpacks).
func WithAdminBuildpacks(dir string) Option { return func(o *options) { o.adminDir = dir } }

// WithWorkDir sets where workspaces are made; default os.TempDir(). Each
// staging makes its own directory and removes it when done.
func WithWorkDir(dir string) Option { return func(o *options) { o.workDir = dir } }

// WithLogger sets the logger for the Stager's own diagnostics; nil (the
// default) logs nothing. Buildpack output goes to Stage's writer instead.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTailLines sets how many last output lines an *Error carries; default
// DefaultTailLines.
func WithTailLines(n int) Option { return func(o *options) { o.tailLines = n } }

// WithDefaultLimits sets the staging limits used when a Request gives none:
// memory and disk in MiB, open files. Defaults 1024, 2048, 16384.
func WithDefaultLimits(memoryMB, diskMB int64, fds uint64) Option {
	return func(o *options) { o.memoryMB, o.diskMB, o.fds = memoryMB, diskMB, fds }
}

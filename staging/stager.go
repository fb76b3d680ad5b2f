package staging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/paaskit/paaskit/container"
)

// Containers creates staging containers. *container.Manager satisfies it.
type Containers interface {
	// Create makes and starts a container as spec says (see
	// container.Manager.Create).
	Create(ctx context.Context, spec container.Spec) (*container.Container, error)
}

// Paths inside the staging container. The droplet is staged where it will
// run (/home/vcap, Diego's extraction point), so buildpacks that record
// absolute paths produce droplets that work.
const (
	DropletRoot   = "/home/vcap"
	ctrAppDir     = DropletRoot + "/app"
	ctrDepsDir    = DropletRoot + "/deps"
	ctrProfileDir = DropletRoot + "/profile.d"
	ctrCacheDir   = "/tmp/cache"
	ctrEnvDir     = "/tmp/env"
	ctrBPDir      = "/tmp/buildpacks"
)

// Stager stages apps: see Stage. It is safe for concurrent use; each Stage
// call has its own workspace and container.
type Stager struct {
	containers Containers
	opts       options
	log        *slog.Logger
}

// New returns a Stager that makes containers with containers (nil is
// allowed when only in-process Plugins are used).
func New(containers Containers, opts ...Option) (*Stager, error) {
	o := options{client: http.DefaultClient, tailLines: DefaultTailLines, memoryMB: 1024, diskMB: 2048, fds: 16384, workDir: os.TempDir()}
	for _, f := range opts {
		f(&o)
	}
	if o.client == nil {
		o.client = http.DefaultClient
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.tailLines <= 0 {
		o.tailLines = DefaultTailLines
	}
	for name, st := range o.stacks {
		if st.RootFS == "" {
			return nil, fmt.Errorf("staging: stack %q: RootFS required", name)
		}
		if st.User == "" {
			st.User = "vcap"
		}
		if st.UID == 0 && st.User != "root" {
			st.UID, st.GID = 10001, 10001
		}
		o.stacks[name] = st
	}
	if o.memoryMB <= 0 || o.diskMB <= 0 {
		return nil, errors.New("staging: default limits must be positive")
	}
	return &Stager{containers: containers, opts: o, log: o.logger}, nil
}

// run is the state of one Stage call.
type run struct {
	s       *Stager
	req     *Request
	stack   Stack
	ws      string // workspace on the host
	root    string // droplet contents: app/, deps/, profile.d/, logs/, tmp/
	cache   string
	envDir  string
	log     *logSink
	ctr     *container.Container
	env     []string // staging environment
	bps     []*buildpack
	timeout time.Duration
	start   time.Time
	// Phases records how long each phase took, for benchmarks.
	phases map[string]time.Duration
}

func (r *run) appDir() string     { return filepath.Join(r.root, "app") }
func (r *run) depsDir() string    { return filepath.Join(r.root, "deps") }
func (r *run) profileDir() string { return filepath.Join(r.root, "profile.d") }

// Stage stages req: it fetches and unzips the app package, restores the
// buildpack cache, runs the buildpacks in a container (created for this
// staging and always destroyed), writes staging_info.yml, packs the droplet,
// saves the cache and uploads the droplet. Every line of output goes to out
// (may be nil) as it is printed, and into the droplet's
// logs/staging_task.log.
//
// Failures are *Error values wrapping one of the sentinels (ErrNoAppDetected,
// ErrCompileFailed, …, ErrTimeout, ErrPackageInvalid,
// ErrInsufficientResources); an invalid request is a *RequestError; a
// cancelled ctx kills the container and returns ctx's error inside an
// *Error.
func (s *Stager) Stage(ctx context.Context, req Request, out io.Writer) (*Result, error) {
	res, _, err := s.stage(ctx, req, out)
	return res, err
}

// StageTimed is Stage that also reports how long each phase took
// ("download", "unzip", "cache_restore", "container", "buildpacks", "pack",
// "upload", "cache_save", "destroy"), for benchmarks.
func (s *Stager) StageTimed(ctx context.Context, req Request, out io.Writer) (*Result, map[string]time.Duration, error) {
	return s.stage(ctx, req, out)
}

func (s *Stager) stage(ctx context.Context, req Request, out io.Writer) (res *Result, phases map[string]time.Duration, retErr error) {
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	r := &run{s: s, req: &req, start: time.Now(), phases: map[string]time.Duration{}}
	r.timeout = req.Timeout
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	stack, ok := s.opts.stacks[req.Stack]
	if !ok && needsContainer(req) {
		return nil, nil, &Error{Code: CodeStagingFailed, Err: fmt.Errorf("%w: %q", ErrStackNotFound, req.Stack)}
	}
	r.stack = stack
	if !ok {
		r.stack.UID, r.stack.GID = -1, -1
	}
	ws, err := os.MkdirTemp(s.opts.workDir, "staging-"+req.AppID+"-")
	if err != nil {
		return nil, nil, fmt.Errorf("staging: workspace: %w", err)
	}
	r.ws = ws
	defer os.RemoveAll(ws)
	if err := r.prepare(out); err != nil {
		return nil, nil, err
	}
	defer r.closeLog()

	ctx, cancel := context.WithTimeoutCause(ctx, r.timeout, ErrTimeout)
	defer cancel()
	defer func() {
		if r.ctr != nil {
			t := time.Now()
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			if err := r.ctr.Destroy(dctx); err != nil && !errors.Is(err, container.ErrNotFound) {
				s.log.Warn("destroy staging container", "handle", r.ctr.Handle(), "err", err)
			}
			dcancel()
			r.phases["destroy"] = time.Since(t)
		}
		phases = r.phases
		if retErr != nil {
			retErr = r.wrapErr(ctx, retErr)
			r.log.printf("Staging failed: %v", retErr)
		}
	}()
	res, err = r.pipeline(ctx)
	return res, r.phases, err
}

// needsContainer reports whether some buildpack is a script buildpack.
func needsContainer(req Request) bool {
	if len(req.Buildpacks) == 0 {
		return true
	}
	for _, b := range req.Buildpacks {
		if b.Plugin == nil {
			return true
		}
	}
	return false
}

// wrapErr makes err an *Error with the code, and the timeout when the
// deadline passed.
func (r *run) wrapErr(ctx context.Context, err error) error {
	var se *Error
	if errors.As(err, &se) {
		if se.Output == nil {
			se.Output = r.log.lines()
		}
		return se
	}
	var re *RequestError
	if errors.As(err, &re) {
		return err
	}
	if errors.Is(context.Cause(ctx), ErrTimeout) && !errors.Is(err, ErrTimeout) {
		err = fmt.Errorf("%w after %v: %w", ErrTimeout, r.timeout, err)
	}
	return &Error{Code: codeOf(err), Err: err, Output: r.log.lines()}
}

// prepare makes the workspace and opens the log.
func (r *run) prepare(out io.Writer) error {
	r.root = filepath.Join(r.ws, "droplet")
	r.cache = filepath.Join(r.ws, "cache")
	r.envDir = filepath.Join(r.ws, "env")
	for _, d := range []string{"app", "deps", "profile.d", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(r.root, d), 0o755); err != nil {
			return fmt.Errorf("staging: workspace: %w", err)
		}
	}
	for _, d := range []string{r.cache, r.envDir, filepath.Join(r.ws, "buildpacks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("staging: workspace: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(r.root, "logs", "staging_task.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("staging: log: %w", err)
	}
	r.log = newLogSink(r.s.opts.tailLines, f, out)
	return nil
}

func (r *run) closeLog() {
	if len(r.log.outs) > 0 {
		if f, ok := r.log.outs[0].(*os.File); ok {
			f.Close()
		}
	}
}

func (r *run) timed(name string, f func() error) error {
	t := time.Now()
	err := f()
	r.phases[name] += time.Since(t)
	return err
}

// pipeline is Stage after the workspace exists.
func (r *run) pipeline(ctx context.Context) (*Result, error) {
	req := r.req
	r.log.step("Downloading app package...")
	zipPath := filepath.Join(r.ws, "app.zip")
	var size int64
	if err := r.timed("download", func() (err error) {
		size, err = r.s.fetchToFile(ctx, req.Package, zipPath)
		return err
	}); err != nil {
		return nil, &Error{Code: CodeStagingFailed, Err: fmt.Errorf("%w: download: %w", ErrPackageInvalid, err)}
	}
	r.log.step("Downloaded app package (%s)", humanSize(size))
	if err := r.timed("unzip", func() error {
		return Unzip(ctx, zipPath, r.appDir(), r.stack.UID, r.stack.GID, ZipLimits{MaxBytes: r.diskBytes()})
	}); err != nil {
		if !errors.Is(err, ErrPackageInvalid) {
			err = fmt.Errorf("%w: %w", ErrPackageInvalid, err)
		}
		return nil, err
	}
	os.Remove(zipPath)

	if err := r.timed("buildpacks_fetch", func() error { return r.resolveBuildpacks(ctx) }); err != nil {
		return nil, err
	}
	_ = r.timed("cache_restore", func() error { r.restoreCache(ctx); return nil })
	r.writeEnv()
	if err := r.chownWorkspace(); err != nil {
		return nil, err
	}
	if err := r.timed("container", func() error { return r.createContainer(ctx) }); err != nil {
		return nil, err
	}
	var out *buildOutcome
	if err := r.timed("buildpacks", func() (err error) {
		out, err = r.runBuildpacks(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	if err := r.checkDisk(); err != nil {
		return nil, err
	}
	res, err := r.finish(out)
	if err != nil {
		return nil, err
	}
	if err := r.packAndUpload(ctx, res); err != nil {
		return nil, err
	}
	if !req.CacheDest.IsZero() {
		if err := r.timed("cache_save", func() error { return r.saveCache(ctx) }); err != nil {
			return nil, &Error{Code: CodeStagingFailed, Err: fmt.Errorf("staging: save buildpack cache: %w", err)}
		}
	}
	res.Warnings = r.log.warnings()
	return res, nil
}

func (r *run) memoryMB() int64 {
	if r.req.MemoryMB > 0 {
		return r.req.MemoryMB
	}
	return r.s.opts.memoryMB
}

func (r *run) diskBytes() int64 {
	if r.req.DiskMB > 0 {
		return r.req.DiskMB << 20
	}
	return r.s.opts.diskMB << 20
}

// checkDisk enforces the disk limit on the workspace, which is bind
// mounted and so outside the container's quota.
func (r *run) checkDisk() error {
	var total int64
	_ = filepath.WalkDir(r.ws, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	if limit := r.diskBytes(); total > limit {
		return fmt.Errorf("%w: staging used %s of disk, the limit is %s", ErrInsufficientResources, humanSize(total), humanSize(limit))
	}
	return nil
}

// chownWorkspace gives the writable parts of the workspace to the stack's
// user.
func (r *run) chownWorkspace() error {
	if r.stack.UID < 0 || os.Geteuid() != 0 {
		return nil
	}
	for _, d := range []string{r.root, r.cache} {
		err := filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, r.stack.UID, r.stack.GID)
		})
		if err != nil {
			return fmt.Errorf("staging: workspace: %w", err)
		}
	}
	return nil
}

// createContainer makes the staging container when a script buildpack
// needs one.
func (r *run) createContainer(ctx context.Context) error {
	if !r.needsContainer() {
		return nil
	}
	if r.s.containers == nil {
		return errors.New("staging: script buildpacks need a container manager")
	}
	mounts := append([]container.BindMount(nil), r.stack.BindMounts...)
	mounts = append(mounts,
		container.BindMount{SrcPath: r.root, DstPath: DropletRoot},
		container.BindMount{SrcPath: r.cache, DstPath: ctrCacheDir},
		container.BindMount{SrcPath: r.envDir, DstPath: ctrEnvDir, ReadOnly: true},
	)
	for _, bp := range r.bps {
		if bp.plugin == nil {
			mounts = append(mounts, container.BindMount{SrcPath: bp.hostDir, DstPath: bp.ctrDir, ReadOnly: true})
		}
	}
	spec := container.Spec{
		Handle:     "staging-" + shortHash(r.req.AppID+r.ws),
		RootFS:     r.stack.RootFS,
		BindMounts: mounts,
		Properties: map[string]string{"app_id": r.req.AppID, "kind": "staging"},
		Limits: container.Limits{
			MemoryBytes: r.memoryMB() << 20,
			DiskBytes:   r.diskBytes(),
			PidsMax:     4096,
		},
		User: r.stack.User,
	}
	c, err := r.s.containers.Create(ctx, spec)
	if err != nil {
		return fmt.Errorf("staging: create container: %w", err)
	}
	r.ctr = c
	for _, rule := range r.req.Egress {
		if err := c.NetOut(ctx, rule); err != nil {
			if errors.Is(err, container.ErrNoNetwork) {
				r.log.warn("Warning: egress rules ignored: the container manager has no networking")
				break
			}
			return fmt.Errorf("staging: egress rule: %w", err)
		}
	}
	return nil
}

func (r *run) needsContainer() bool {
	for _, bp := range r.bps {
		if bp.plugin == nil {
			return true
		}
	}
	return false
}

// writeEnv builds the staging environment and ENV_DIR.
func (r *run) writeEnv() {
	req := r.req
	user := map[string]string{}
	for k, v := range req.StagingEnvGroup {
		user[k] = v
	}
	for k, v := range req.Env {
		user[k] = v
	}
	for k, v := range user {
		_ = os.WriteFile(filepath.Join(r.envDir, k), []byte(v), 0o644)
	}
	vcapApp, _ := json.Marshal(map[string]any{
		"application_id":   req.AppID,
		"application_name": req.AppName,
		"name":             req.AppName,
		"application_uris": []string{},
		"uris":             []string{},
		"limits":           map[string]any{"mem": r.memoryMB(), "disk": r.diskBytes() >> 20, "fds": r.fds()},
	})
	services, dbURL := vcapServices(req.Services)
	env := []string{
		"LANG=en_US.UTF-8",
		"CF_STACK=" + req.Stack,
		"STACK=" + req.Stack,
		"MEMORY_LIMIT=" + strconv.FormatInt(r.memoryMB(), 10) + "m",
		"VCAP_APPLICATION=" + string(vcapApp),
		"VCAP_SERVICES=" + services,
		"CF_INSTANCE_IP=127.0.0.1",
		"CF_INSTANCE_INTERNAL_IP=127.0.0.1",
		"CF_INSTANCE_PORTS=[]",
		"CF_INSTANCE_ADDR=",
		"CF_INSTANCE_PORT=",
		"HOME=" + DropletRoot,
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
	if dbURL != "" {
		env = append(env, "DATABASE_URL="+dbURL)
	}
	for _, k := range sortedKeys(user) {
		env = append(env, k+"="+user[k])
	}
	r.env = env
}

func (r *run) fds() uint64 {
	if r.req.FDs > 0 {
		return r.req.FDs
	}
	return r.s.opts.fds
}

// vcapServices returns VCAP_SERVICES and the DATABASE_URL derived from the
// first service whose credentials hold a database uri.
func vcapServices(svcs []Service) (string, string) {
	byLabel := map[string][]Service{}
	dbURL := ""
	for _, s := range svcs {
		label := s.Label
		if label == "" {
			label = "user-provided"
		}
		if s.Tags == nil {
			s.Tags = []string{}
		}
		byLabel[label] = append(byLabel[label], s)
		if dbURL != "" {
			continue
		}
		if uri, ok := s.Credentials["uri"].(string); ok {
			switch {
			case strings.HasPrefix(uri, "mysql://"):
				dbURL = "mysql2://" + strings.TrimPrefix(uri, "mysql://")
			case strings.HasPrefix(uri, "postgres://"), strings.HasPrefix(uri, "postgresql://"):
				dbURL = uri
			}
		}
	}
	b, _ := json.Marshal(byLabel)
	return string(b), dbURL
}

package staging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/droplet"
)

// buildpack is a resolved BuildpackSource.
type buildpack struct {
	key     string
	hash    string // cache directory name for a supply buildpack
	hostDir string // holds bin/ (script buildpacks)
	ctrDir  string // hostDir inside the container
	plugin  Plugin
}

func (bp *buildpack) has(script string) bool {
	if bp.plugin != nil {
		return script == "detect" || script == "compile" || script == "release"
	}
	fi, err := os.Stat(filepath.Join(bp.hostDir, "bin", script))
	return err == nil && fi.Mode().IsRegular()
}

// resolveBuildpacks finds, downloads or clones the buildpacks.
func (r *run) resolveBuildpacks(ctx context.Context) error {
	srcs := r.req.Buildpacks
	if len(srcs) == 0 {
		keys := r.req.AdminBuildpacks
		if len(keys) == 0 && r.s.opts.adminDir != "" {
			entries, err := os.ReadDir(r.s.opts.adminDir)
			if err != nil {
				return fmt.Errorf("%w: admin buildpacks: %w", ErrBuildpackNotFound, err)
			}
			for _, e := range entries {
				if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
					keys = append(keys, e.Name())
				}
			}
		}
		if len(keys) == 0 {
			return fmt.Errorf("%w: no buildpacks given and no admin buildpacks", ErrNoAppDetected)
		}
		for _, k := range keys {
			srcs = append(srcs, BuildpackSource{Admin: k})
		}
	}
	for i, src := range srcs {
		bp := &buildpack{key: src.key(), plugin: src.Plugin}
		bp.hash = shortHash(bp.key)
		bp.ctrDir = path.Join(ctrBPDir, fmt.Sprintf("%d-%s", i, bp.hash))
		switch {
		case src.Plugin != nil:
		case src.Dir != "":
			bp.hostDir = src.Dir
		case src.Admin != "":
			if r.s.opts.adminDir == "" {
				return fmt.Errorf("%w: admin buildpack %q: no admin buildpack directory", ErrBuildpackNotFound, src.Admin)
			}
			bp.hostDir = filepath.Join(r.s.opts.adminDir, src.Admin)
		default:
			dir := filepath.Join(r.ws, "buildpacks", fmt.Sprintf("%d", i))
			r.log.step("Downloading buildpack %s...", bp.key)
			if err := r.fetchBuildpack(ctx, src, dir); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrBuildpackNotFound, bp.key, err)
			}
			bp.hostDir = dir
		}
		if bp.plugin == nil {
			abs, err := filepath.Abs(bp.hostDir)
			if err != nil {
				return err
			}
			bp.hostDir = nestedBuildpackDir(abs)
			if fi, err := os.Stat(bp.hostDir); err != nil || !fi.IsDir() {
				return fmt.Errorf("%w: %s: not a directory", ErrBuildpackNotFound, bp.key)
			}
		}
		r.bps = append(r.bps, bp)
	}
	return nil
}

// nestedBuildpackDir returns dir, or its single subdirectory holding bin/
// when dir has no bin/ (a zip with a top-level folder), as Diego does.
func nestedBuildpackDir(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "bin")); err == nil {
		return dir
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		return dir
	}
	sub := filepath.Join(dir, entries[0].Name())
	if _, err := os.Stat(filepath.Join(sub, "bin")); err == nil {
		return sub
	}
	return dir
}

// index is Diego's zero-padded buildpack index.
func index(i, n int) string {
	width := int(math.Floor(math.Log10(float64(n)))) + 1
	return fmt.Sprintf("%0*d", width, i)
}

// exec runs bin/<script> of bp with args (container paths), its stdout to
// stdout (the log when nil) and stderr to the log, and returns its exit code.
func (r *run) exec(ctx context.Context, bp *buildpack, script string, args []string, stdout io.Writer) (int, error) {
	if stdout == nil {
		stdout = r.log
	}
	p := path.Join(bp.ctrDir, "bin", script)
	spec := container.ProcessSpec{Path: p, Args: args, Env: r.env, User: r.stack.User}
	if fi, err := os.Stat(filepath.Join(bp.hostDir, "bin", script)); err == nil && fi.Mode()&0o111 != 0o111 {
		r.log.warn("WARNING: buildpack script '/bin/%s' is not executable", script)
		spec.Path, spec.Args = "/bin/bash", append([]string{p}, args...)
	}
	nofile := r.fds()
	spec.Limits.Nofile = &nofile
	proc, err := r.ctr.Run(ctx, spec, container.ProcessIO{Stdout: stdout, Stderr: r.log})
	if err != nil {
		var specErr *container.SpecError
		if errors.As(err, &specErr) && nofile > 0 {
			// The host's hard limit may be lower: keep the container's.
			spec.Limits.Nofile = nil
			proc, err = r.ctr.Run(ctx, spec, container.ProcessIO{Stdout: stdout, Stderr: r.log})
		}
		if err != nil {
			return -1, fmt.Errorf("staging: run %s: %w", script, err)
		}
	}
	code, err := proc.Wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), container.DefaultStopTimeout)
			_ = r.ctr.Stop(kctx, true)
			cancel()
			if errors.Is(context.Cause(ctx), ErrTimeout) {
				r.log.printf("Staging timed out after %v: the buildpack's processes were killed", r.timeout)
				return -1, fmt.Errorf("%w after %v in bin/%s", ErrTimeout, r.timeout, script)
			}
			return -1, ctx.Err()
		}
		if errors.Is(err, container.ErrOutOfMemory) {
			return code, fmt.Errorf("%w: bin/%s ran out of memory (limit %d MB)", ErrInsufficientResources, script, r.memoryMB())
		}
		return code, err
	}
	return code, nil
}

// buildOutcome is what the buildpack phases produced.
type buildOutcome struct {
	final     *buildpack
	finalIdx  string
	detected  string
	release   *Release
	launchYML map[string]string // merged launch.yml process types
	metadata  []BuildpackMetadata
}

// runBuildpacks runs detect, supply, finalize/compile and release.
func (r *run) runBuildpacks(ctx context.Context) (*buildOutcome, error) {
	out := &buildOutcome{}
	bps := r.bps
	n := len(bps)
	detected := ""
	if !r.req.SkipDetect {
		var chosen *buildpack
		for _, bp := range bps {
			ok, name, err := r.detect(ctx, bp)
			if err != nil {
				return nil, err
			}
			if ok {
				chosen, detected = bp, name
				break
			}
		}
		if chosen == nil {
			r.log.printf("None of the buildpacks detected a compatible application")
			return nil, &Error{Code: CodeNoAppDetected, Err: ErrNoAppDetected}
		}
		bps, n = []*buildpack{chosen}, 1
		if detected != "" {
			r.log.step("%s app detected", detected)
		}
	}
	for i, bp := range bps[:n-1] {
		idx := index(i, n)
		if !bp.has("supply") || bp.plugin != nil {
			r.log.printf("Error: one of the buildpacks chosen to supply dependencies does not support multi-buildpack apps")
			return nil, &Error{Code: CodeSupplyFailed, Buildpack: bp.key, Err: ErrSupplyFailed}
		}
		r.log.step("Supplying dependencies with buildpack %s", bp.key)
		if err := r.supply(ctx, bp, idx, bp.hash); err != nil {
			return nil, err
		}
	}
	final := bps[n-1]
	idx := index(n-1, n)
	out.final, out.finalIdx = final, idx
	switch {
	case final.plugin != nil:
		if err := r.compilePlugin(ctx, final, idx); err != nil {
			return nil, err
		}
	case final.has("finalize"):
		if final.has("supply") {
			if err := r.supply(ctx, final, idx, "final"); err != nil {
				return nil, err
			}
		}
		if err := r.mkdirOwned(filepath.Join(r.depsDir(), idx)); err != nil {
			return nil, err
		}
		if err := r.mkdirOwned(filepath.Join(r.cache, "final")); err != nil {
			return nil, err
		}
		r.log.step("Finalizing with buildpack %s", final.key)
		code, err := r.exec(ctx, final, "finalize", []string{ctrAppDir, ctrCacheDir + "/final", ctrDepsDir, idx, ctrProfileDir}, nil)
		if err := phaseErr(err, code, final, ErrFinalizeFailed, CodeFinalizeFailed, "Failed to finalize droplet"); err != nil {
			r.log.printf("Failed to finalize droplet")
			return nil, err
		}
	case final.has("compile"):
		os.RemoveAll(filepath.Join(r.depsDir(), idx))
		if n > 1 {
			r.log.warn("Warning: the last buildpack is not compatible with multi-buildpack apps and cannot make use of any dependencies supplied by the buildpacks specified before it")
		}
		if err := r.mkdirOwned(filepath.Join(r.cache, "final")); err != nil {
			return nil, err
		}
		r.log.step("Compiling with buildpack %s", final.key)
		code, err := r.exec(ctx, final, "compile", []string{ctrAppDir, ctrCacheDir + "/final", ctrEnvDir}, nil)
		if err := phaseErr(err, code, final, ErrCompileFailed, CodeCompileFailed, ""); err != nil {
			r.log.printf("Failed to compile droplet")
			return nil, err
		}
	default:
		r.log.printf("Failed to compile droplet: buildpack %s has neither bin/finalize nor bin/compile", final.key)
		return nil, &Error{Code: CodeCompileFailed, Buildpack: final.key, Err: fmt.Errorf("%w: no bin/compile", ErrCompileFailed)}
	}

	// Process types from launch.yml of the supply buildpacks, then the
	// final buildpack's launch.yml or release.
	out.launchYML = map[string]string{}
	for i, bp := range bps {
		idx := index(i, n)
		lt, err := readLaunchYML(filepath.Join(r.depsDir(), idx, "launch.yml"))
		if err != nil {
			return nil, &Error{Code: CodeReleaseFailed, Buildpack: bp.key, Err: fmt.Errorf("%w: %w", ErrReleaseFailed, err)}
		}
		if lt != nil && i < n-1 {
			out.launchYML = mergeProcessTypes(out.launchYML, lt)
		}
		cfg := readDepsConfig(filepath.Join(r.depsDir(), idx, "config.yml"))
		md := BuildpackMetadata{Key: bp.key, Name: cfg.Name, Version: cfg.Version, Config: cfg.Config}
		if i == n-1 {
			if lt != nil {
				out.release = &Release{DefaultProcessTypes: lt}
			}
			if md.Name == "" {
				md.Name = detected
			}
			if cfg.Name != "" {
				detected = cfg.Name
			}
		}
		out.metadata = append(out.metadata, md)
	}
	if out.release == nil {
		rel, err := r.release(ctx, final)
		if err != nil {
			r.log.printf("Failed to build droplet release")
			return nil, err
		}
		out.release = rel
	}
	if detected == "" {
		detected = final.key
		if final.plugin != nil {
			detected = final.plugin.Name()
		}
	}
	out.detected = detected
	return out, nil
}

// phaseErr turns a script's result into the phase's typed error.
func phaseErr(err error, code int, bp *buildpack, sentinel error, cfCode int, _ string) error {
	if err != nil {
		if errors.Is(err, ErrTimeout) || errors.Is(err, ErrInsufficientResources) || errors.Is(err, context.Canceled) {
			return &Error{Code: codeOf(err), Buildpack: bp.key, Err: err}
		}
		return &Error{Code: cfCode, Buildpack: bp.key, Err: fmt.Errorf("%w: %w", sentinel, err)}
	}
	if code != 0 {
		return &Error{Code: cfCode, Buildpack: bp.key, Err: fmt.Errorf("%w: exit status %d", sentinel, code)}
	}
	return nil
}

func (r *run) mkdirOwned(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if r.stack.UID >= 0 && os.Geteuid() == 0 {
		return os.Lchown(dir, r.stack.UID, r.stack.GID)
	}
	return nil
}

// detect runs bin/detect and returns whether it accepted the app and the
// name it printed.
func (r *run) detect(ctx context.Context, bp *buildpack) (bool, string, error) {
	if bp.plugin != nil {
		ok, err := bp.plugin.Detect(ctx, r.build(bp, ""))
		if err != nil {
			return false, "", fmt.Errorf("staging: detect %s: %w", bp.key, err)
		}
		return ok, bp.plugin.Name(), nil
	}
	if !bp.has("detect") {
		return false, "", nil
	}
	var buf bytes.Buffer
	code, err := r.exec(ctx, bp, "detect", []string{ctrAppDir}, &limitedBuffer{b: &buf, max: 64 << 10})
	if err != nil {
		if errors.Is(err, ErrTimeout) || errors.Is(err, ErrInsufficientResources) || ctx.Err() != nil {
			return false, "", err
		}
		return false, "", nil
	}
	return code == 0, strings.TrimRight(buf.String(), "\r\n"), nil
}

// supply runs bin/supply of bp with index idx and cache subdirectory cacheSub.
func (r *run) supply(ctx context.Context, bp *buildpack, idx, cacheSub string) error {
	if err := r.mkdirOwned(filepath.Join(r.depsDir(), idx)); err != nil {
		return err
	}
	if err := r.mkdirOwned(filepath.Join(r.cache, cacheSub)); err != nil {
		return err
	}
	code, err := r.exec(ctx, bp, "supply", []string{ctrAppDir, ctrCacheDir + "/" + cacheSub, ctrDepsDir, idx}, nil)
	if err := phaseErr(err, code, bp, ErrSupplyFailed, CodeSupplyFailed, ""); err != nil {
		r.log.printf("Failed to supply dependencies")
		return err
	}
	return nil
}

// release runs bin/release when present (it is optional) and parses it.
func (r *run) release(ctx context.Context, bp *buildpack) (*Release, error) {
	if bp.plugin != nil {
		rel, err := bp.plugin.Release(ctx, r.build(bp, ""))
		if err != nil {
			return nil, &Error{Code: CodeReleaseFailed, Buildpack: bp.key, Err: fmt.Errorf("%w: %w", ErrReleaseFailed, err)}
		}
		if rel == nil {
			rel = &Release{}
		}
		return rel, nil
	}
	if !bp.has("release") {
		return &Release{}, nil
	}
	var buf bytes.Buffer
	code, err := r.exec(ctx, bp, "release", []string{ctrAppDir}, &limitedBuffer{b: &buf, max: 1 << 20})
	if err := phaseErr(err, code, bp, ErrReleaseFailed, CodeReleaseFailed, ""); err != nil {
		return nil, err
	}
	rel, err := ParseRelease(buf.Bytes())
	if err != nil {
		return nil, &Error{Code: CodeReleaseFailed, Buildpack: bp.key, Err: err}
	}
	return rel, nil
}

// limitedBuffer keeps at most max bytes.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func readLaunchYML(p string) (map[string]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil
	}
	var l launchYAML
	if err := yaml.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", filepath.Base(p), err)
	}
	out := map[string]string{}
	for _, p := range l.Processes {
		out[p.Type] = p.Command
	}
	return out, nil
}

func readDepsConfig(p string) depsConfig {
	var c depsConfig
	if b, err := os.ReadFile(p); err == nil {
		_ = yaml.Unmarshal(b, &c)
	}
	return c
}

// finish computes the process types and start command and writes
// staging_info.yml and the config_vars profile script.
func (r *run) finish(out *buildOutcome) (*Result, error) {
	var procfile map[string]string
	if f, err := os.Open(filepath.Join(r.appDir(), "Procfile")); err == nil {
		procfile, err = ParseProcfile(f)
		f.Close()
		if err != nil {
			r.log.printf("Failed to read command from Procfile: %v", err)
			return nil, &Error{Code: CodeStagingFailed, Err: err}
		}
	}
	release := mergeProcessTypes(out.launchYML, out.release.DefaultProcessTypes)
	types := mergeProcessTypes(release, procfile)
	start := startCommand(r.req.StartCommand, procfile, release)
	if types["web"] == "" && r.req.StartCommand == "" {
		r.log.warn("No start command specified by buildpack or via Procfile.")
		r.log.warn("App will not start unless a command is provided at runtime.")
	}
	if len(out.release.ConfigVars) > 0 {
		var b strings.Builder
		b.WriteString("# Written by paaskit staging: the buildpack's config_vars, as defaults.\n")
		for _, k := range sortedKeys(out.release.ConfigVars) {
			if !validEnvName(k) {
				continue
			}
			fmt.Fprintf(&b, "export %s=\"${%s-%s}\"\n", k, k, shellQuoteDouble(out.release.ConfigVars[k]))
		}
		if err := os.WriteFile(filepath.Join(r.profileDir(), "000_config_vars.sh"), []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}
	res := &Result{
		DetectedBuildpack: out.detected,
		BuildpackKey:      out.final.key,
		Buildpacks:        out.metadata,
		StartCommand:      start,
		ProcessTypes:      types,
	}
	info := StagingInfo{
		DetectedBuildpack: out.detected,
		StartCommand:      start,
		EffectiveProcfile: types,
		BuildpackKey:      out.final.key,
		Buildpacks:        out.metadata,
		ConfigVars:        out.release.ConfigVars,
	}
	if md := out.metadata[len(out.metadata)-1]; md.Config != nil {
		if ep, ok := md.Config["entrypoint_prefix"]; ok {
			info.Config = map[string]any{"entrypoint_prefix": ep}
		}
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(r.root, "staging_info.yml"), b, 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// shellQuoteDouble escapes s for a double-quoted shell word.
func shellQuoteDouble(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s)
}

// packAndUpload packs the droplet and uploads it.
func (r *run) packAndUpload(ctx context.Context, res *Result) error {
	path := filepath.Join(r.ws, "droplet.tgz")
	var d droplet.Digest
	r.log.step("Uploading droplet...")
	err := r.timed("pack", func() error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		d, err = droplet.Pack(ctx, r.root, f, droplet.WithLevel(1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return &Error{Code: CodeStagingFailed, Err: fmt.Errorf("staging: pack droplet: %w", err)}
	}
	if err := r.timed("upload", func() error { return r.s.put(ctx, r.req.Droplet, path) }); err != nil {
		return &Error{Code: CodeStagingFailed, Err: fmt.Errorf("staging: upload droplet: %w", err)}
	}
	r.log.step("Uploaded droplet (%s)", humanSize(d.Size))
	res.DropletSHA1, res.DropletSize = d.SHA1, d.Size
	return nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

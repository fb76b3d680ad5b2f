package staging

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Plugin is an in-process buildpack: Go code that stages an app without
// scripts, as the v1 stager's framework plugins did. It runs the same
// pipeline as script buildpacks (package, cache, staging_info.yml,
// droplet, upload) but in the Stager's own process, on the host, with the
// Stager's privileges: use it for trusted code only. A Plugin can only be
// the final buildpack (it has no supply phase).
//
// Methods are called from one goroutine per staging; a Plugin shared by
// concurrent stagings must be safe for concurrent use.
type Plugin interface {
	// Name is the buildpack's key and its detected name.
	Name() string
	// Detect reports whether the plugin applies to b.AppDir.
	Detect(ctx context.Context, b *Build) (bool, error)
	// Compile transforms b.AppDir in place; an error fails the staging
	// with ErrCompileFailed (223).
	Compile(ctx context.Context, b *Build) error
	// Release returns the default process types (may be nil); an error
	// fails the staging with ErrReleaseFailed (224).
	Release(ctx context.Context, b *Build) (*Release, error)
}

// Build is what a Plugin works on: host paths in the staging workspace.
type Build struct {
	// AppDir is BUILD_DIR, the app being staged (the droplet's app/).
	AppDir string
	// CacheDir persists between stagings of the app.
	CacheDir string
	// DepsDir is the droplet's deps/; ProfileDir its profile.d/.
	DepsDir, ProfileDir string
	// Env is the staging environment (user env, VCAP_*, CF_STACK, …).
	Env map[string]string
	// Output is the staging log: what is written appears live to the
	// caller of Stage and in logs/staging_task.log.
	Output io.Writer
}

func (r *run) build(_ *buildpack, _ string) *Build {
	env := map[string]string{}
	for _, kv := range r.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return &Build{
		AppDir:     r.appDir(),
		CacheDir:   filepath.Join(r.cache, "final"),
		DepsDir:    r.depsDir(),
		ProfileDir: r.profileDir(),
		Env:        env,
		Output:     r.log,
	}
}

func (r *run) compilePlugin(ctx context.Context, bp *buildpack, idx string) error {
	if err := r.mkdirOwned(filepath.Join(r.cache, "final")); err != nil {
		return err
	}
	r.log.step("Compiling with buildpack %s", bp.key)
	if err := bp.plugin.Compile(ctx, r.build(bp, idx)); err != nil {
		r.log.printf("Failed to compile droplet: %v", err)
		return &Error{Code: CodeCompileFailed, Buildpack: bp.key, Err: fmt.Errorf("%w: %w", ErrCompileFailed, err)}
	}
	return r.chownWorkspace()
}

package main

// The staging suite (-suite staging) measures package staging end to end
// on a 10 MiB app (64 files of 160 KiB of random bytes) with a buildpack
// whose detect accepts and whose compile does nothing: package from a
// local blob store → unzip → container → detect/compile/release → droplet
// packed and uploaded to the store. staging.trivial.p50 is the median of
// 10 runs (fewer with -n); staging.trivial.shell.p50 is the same work done
// by a plain shell pipeline without a container (unzip, the buildpack's
// scripts, tar -czf, cp), in the same run; staging.trivial.vs_shell is
// their ratio (target ≤ 1.5). staging.trivial.phase.<name> are the
// medians of each phase of the paaskit pipeline.
//
// Needs Linux, root, unzip, tar and gzip on the host.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/paaskit/paaskit/staging"
	"github.com/paaskit/paaskit/staging/stagingtest"
)

func runStagingSuite(ctx context.Context, cfg config, r *report) (retErr error) {
	tmp, err := os.MkdirTemp("", "paaskit-bench-staging-")
	if err != nil {
		return err
	}
	var m *container.Manager
	defer func() {
		if m != nil {
			cs, _ := m.List(context.WithoutCancel(ctx), nil)
			for _, c := range cs {
				_ = c.Destroy(context.WithoutCancel(ctx))
			}
			m.Close()
		}
		retErr = errors.Join(retErr, os.RemoveAll(tmp))
	}()
	stackDir := filepath.Join(tmp, "stack")
	r.commentf("building the test stack in %s", stackDir)
	if err := testutil.BuildStack(stackDir); err != nil {
		return fmt.Errorf("staging suite: build stack: %w", err)
	}
	depot := cfg.depot
	if depot == "" {
		depot = filepath.Join(tmp, "depot")
	}
	m, err = container.New(depot)
	if err != nil {
		return fmt.Errorf("staging suite: %w", err)
	}
	store, err := droplet.NewDirStore(filepath.Join(tmp, "store"))
	if err != nil {
		return err
	}

	// The app and the buildpack.
	appDir := filepath.Join(tmp, "app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		return err
	}
	buf := make([]byte, 160<<10)
	for i := range 64 {
		_, _ = rand.Read(buf)
		if err := os.WriteFile(filepath.Join(appDir, fmt.Sprintf("file%02d.bin", i)), buf, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(appDir, "Procfile"), []byte("web: sleep infinity\n"), 0o644); err != nil {
		return err
	}
	zipPath := filepath.Join(tmp, "app.zip")
	zf, err := os.Create(zipPath)
	if err != nil {
		return err
	}
	if err := stagingtest.ZipDir(zf, appDir); err != nil {
		return err
	}
	zf.Close()
	if f, err := os.Open(zipPath); err == nil {
		err = store.Put(ctx, "packages/app", f)
		f.Close()
		if err != nil {
			return err
		}
	}
	bp := filepath.Join(tmp, "buildpack")
	for name, body := range map[string]string{"detect": "echo Trivial", "compile": "true", "release": "echo '--- {}'"} {
		p := filepath.Join(bp, "bin", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
			return err
		}
	}

	st, err := staging.New(m, staging.WithBlobStore(store), staging.WithWorkDir(tmp),
		staging.WithStack("bench", staging.Stack{RootFS: stackDir, User: testutil.StackUser, UID: testutil.StackUID, GID: testutil.StackGID}))
	if err != nil {
		return err
	}
	n := min(cfg.n, 10)
	req := staging.Request{AppID: "bench", Stack: "bench", Package: staging.Source{Key: "packages/app"},
		Droplet: staging.Source{Key: "droplets/bench"}, Buildpacks: []staging.BuildpackSource{{Dir: bp}}}

	var paaskit, shell []float64
	phases := map[string][]float64{}
	runOnce := func() error {
		t := time.Now()
		_, ph, err := st.StageTimed(ctx, req, nil)
		if err != nil {
			return fmt.Errorf("staging suite: stage: %w", err)
		}
		paaskit = append(paaskit, ms(time.Since(t)))
		for k, v := range ph {
			phases[k] = append(phases[k], ms(v))
		}
		return nil
	}
	shellOnce := func() error {
		w := filepath.Join(tmp, "shell")
		os.RemoveAll(w)
		script := `set -e
w=$1; bp=$2; zip=$3; store=$4
mkdir -p "$w/droplet/app" "$w/droplet/logs" "$w/droplet/tmp" "$w/droplet/deps" "$w/droplet/profile.d" "$w/cache" "$w/env"
cp "$zip" "$w/app.zip"
unzip -q "$w/app.zip" -d "$w/droplet/app"
"$bp/bin/detect" "$w/droplet/app" >/dev/null
"$bp/bin/compile" "$w/droplet/app" "$w/cache" "$w/env"
"$bp/bin/release" "$w/droplet/app" > /dev/null
tar -czf "$w/droplet.tgz" -C "$w/droplet" .
cp "$w/droplet.tgz" "$store/droplet-shell.tgz"
`
		t := time.Now()
		cmd := exec.CommandContext(ctx, "bash", "-c", script, "bench", w, bp, filepath.Join(store.Dir(), "packages/app"), store.Dir())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("staging suite: shell pipeline: %w: %s", err, out)
		}
		shell = append(shell, ms(time.Since(t)))
		return os.RemoveAll(w)
	}
	// One warm-up each, then alternate.
	if err := runOnce(); err != nil {
		return err
	}
	if err := shellOnce(); err != nil {
		return err
	}
	paaskit, shell, phases = nil, nil, map[string][]float64{}
	for range n {
		if err := runOnce(); err != nil {
			return err
		}
		if err := shellOnce(); err != nil {
			return err
		}
	}
	p, _ := percentile(paaskit, 50)
	s, _ := percentile(shell, 50)
	r.add("staging.trivial.p50", p, "ms")
	r.add("staging.trivial.shell.p50", s, "ms")
	r.add("staging.trivial.vs_shell", p/s, "ratio")
	names := make([]string, 0, len(phases))
	for k := range phases {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v, _ := percentile(phases[k], 50)
		r.add("staging.trivial.phase."+k, v, "ms")
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

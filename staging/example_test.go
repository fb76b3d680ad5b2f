package staging_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/staging"
)

// Staging an app with admin buildpacks detected in order. Needs root.
func Example() {
	ctx := context.Background()
	m, err := container.New("/var/lib/paaskit/depot")
	if err != nil {
		panic(err)
	}
	defer m.Close()
	store, _ := droplet.NewDirStore("/var/lib/paaskit/blobs")
	stack, _ := staging.HostStack("/var/lib/paaskit/hoststack")
	st, _ := staging.New(m,
		staging.WithBlobStore(store),
		staging.WithStack("host", stack),
		staging.WithAdminBuildpacks("examples/buildpacks"),
	)
	res, err := st.Stage(ctx, staging.Request{
		AppID:   "6f1c…",
		Stack:   "host",
		Package: staging.Source{Key: "packages/6f1c"},
		Droplet: staging.Source{Key: "droplets/6f1c"},
	}, os.Stdout)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.DetectedBuildpack, res.DropletSHA1, res.StartCommand)
}

// ProcfilePlugin is an in-process buildpack for apps that bring a Procfile.
type ProcfilePlugin struct{}

func (ProcfilePlugin) Name() string { return "procfile-plugin" }

func (ProcfilePlugin) Detect(_ context.Context, b *staging.Build) (bool, error) {
	_, err := os.Stat(filepath.Join(b.AppDir, "Procfile"))
	return err == nil, nil
}

func (ProcfilePlugin) Compile(_ context.Context, b *staging.Build) error {
	fmt.Fprintln(b.Output, "       nothing to compile")
	return nil
}

func (ProcfilePlugin) Release(context.Context, *staging.Build) (*staging.Release, error) {
	return &staging.Release{}, nil
}

// An in-process buildpack: no scripts, no container.
func ExamplePlugin() {
	req := staging.Request{
		AppID:      "app",
		Stack:      "any",
		Package:    staging.Source{Key: "packages/app"},
		Droplet:    staging.Source{Key: "droplets/app"},
		Buildpacks: []staging.BuildpackSource{{Plugin: ProcfilePlugin{}}},
	}
	fmt.Println(req.Validate())
	// Output: <nil>
}

func ExampleParseProcfile() {
	types, err := staging.ParseProcfile(strings.NewReader("web: bundle exec rackup -p $PORT\nworker: sidekiq -q a:b\n"))
	fmt.Println(types["web"], "|", types["worker"], err)
	// Output: bundle exec rackup -p $PORT | sidekiq -q a:b <nil>
}

func ExampleLaunch() {
	spec, err := staging.Launch(&staging.StagingInfo{StartCommand: "python3 app.py"}, "", []string{"PORT=8080"}, staging.LaunchOptions{})
	fmt.Println(spec.Path, spec.Args[len(spec.Args)-1], spec.Env, err)
	// Output: /bin/bash python3 app.py [PORT=8080 HOME=/home/vcap/app TMPDIR=/home/vcap/tmp DEPS_DIR=/home/vcap/deps] <nil>
}

package staging_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/internal/archive"
	"github.com/paaskit/paaskit/staging"
	"github.com/paaskit/paaskit/staging/stagingtest"
)

func TestMain(m *testing.M) { containertest.Main(m) }

// harness is a Stager on a real container manager and a local blob store.
type harness struct {
	t     *testing.T
	m     *container.Manager
	store *droplet.DirStore
	st    *staging.Stager
	n     int
}

func newHarness(t *testing.T, opts ...staging.Option) *harness {
	t.Helper()
	m := containertest.NewManager(t)
	store, err := droplet.NewDirStore(t.TempDir())
	require.NoError(t, err)
	stack := staging.Stack{RootFS: containertest.Stack(t), User: "vcap", UID: 10001, GID: 10001}
	opts = append([]staging.Option{staging.WithBlobStore(store), staging.WithStack("test", stack), staging.WithWorkDir(t.TempDir())}, opts...)
	st, err := staging.New(m, opts...)
	require.NoError(t, err)
	return &harness{t: t, m: m, store: store, st: st}
}

// putApp stores a zip of files and returns its key.
func (h *harness) putApp(files map[string]string) string {
	h.t.Helper()
	return h.putFile(stagingtest.AppZip(h.t, files))
}

func (h *harness) putFile(path string) string {
	h.t.Helper()
	h.n++
	key := "packages/" + strings.ReplaceAll(h.t.Name(), "/", "_") + "-" + string(rune('a'+h.n))
	f, err := os.Open(path)
	require.NoError(h.t, err)
	defer f.Close()
	require.NoError(h.t, h.store.Put(context.Background(), key, f))
	return key
}

func (h *harness) request(pkg string, bps ...string) staging.Request {
	req := staging.Request{AppID: "app-1", AppName: "myapp", Stack: "test", Package: staging.Source{Key: pkg}, Droplet: staging.Source{Key: "droplets/" + pkg}, Timeout: time.Minute}
	for _, d := range bps {
		req.Buildpacks = append(req.Buildpacks, staging.BuildpackSource{Dir: d})
	}
	return req
}

// stage runs req and returns the result, the log and the error.
func (h *harness) stage(req staging.Request) (*staging.Result, string, error) {
	h.t.Helper()
	var log bytes.Buffer
	res, err := h.st.Stage(h.t.Context(), req, &syncWriter{w: &log})
	h.t.Log(log.String())
	return res, log.String(), err
}

// droplet extracts the droplet of req into a directory.
func (h *harness) droplet(req staging.Request) string {
	h.t.Helper()
	rc, err := h.store.Get(context.Background(), req.Droplet.Key)
	require.NoError(h.t, err)
	defer rc.Close()
	dir := h.t.TempDir()
	_, err = archive.ExtractAuto(context.Background(), rc, dir, archive.Options{})
	require.NoError(h.t, err)
	return dir
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func TestDetectOrderAndName(t *testing.T) {
	h := newHarness(t)
	no := stagingtest.Buildpack(t, map[string]string{"detect": "exit 1", "compile": "exit 9"})
	yes := stagingtest.Buildpack(t, map[string]string{"detect": "test -f $1/app.txt && echo 'Foo Lang'", "compile": "echo compiled > $1/out", "release": "echo '--- {}'"})
	also := stagingtest.Buildpack(t, map[string]string{"detect": "echo Other", "compile": "exit 9"})
	req := h.request(h.putApp(map[string]string{"app.txt": "x", "Procfile": "web: sleep 1"}), no, yes, also)
	res, log, err := h.stage(req)
	require.NoError(t, err)
	assert.Equal(t, "Foo Lang", res.DetectedBuildpack)
	assert.Contains(t, log, "-----> Foo Lang app detected")
	assert.Contains(t, log, "-----> Downloaded app package")
	assert.Contains(t, log, "-----> Uploaded droplet")
	d := h.droplet(req)
	assert.Equal(t, "compiled\n", read(t, filepath.Join(d, "app/out")))
	for _, sub := range []string{"app", "deps", "profile.d", "logs", "tmp"} {
		assert.DirExists(t, filepath.Join(d, sub))
	}
	info, err := staging.ReadStagingInfo(strings.NewReader(read(t, filepath.Join(d, "staging_info.yml"))))
	require.NoError(t, err)
	assert.Equal(t, "Foo Lang", info.DetectedBuildpack)
	assert.Equal(t, "sleep 1", info.StartCommand)
	assert.Contains(t, read(t, filepath.Join(d, "logs/staging_task.log")), "Foo Lang app detected")
	assert.Len(t, res.DropletSHA1, 40)

	// Nothing detects: 222.
	req = h.request(h.putApp(map[string]string{"other": "x"}), no)
	_, log, err = h.stage(req)
	var se *staging.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, staging.CodeNoAppDetected, se.Code)
	assert.ErrorIs(t, err, staging.ErrNoAppDetected)
	assert.Contains(t, log, "None of the buildpacks detected a compatible application")
}

func TestMultiBuildpackSupplyFinalize(t *testing.T) {
	h := newHarness(t)
	sup := stagingtest.Buildpack(t, map[string]string{
		"detect": "exit 1", // never run with SkipDetect
		"supply": `echo "supply $#: $2 $4" ; mkdir -p $3/$4/bin; echo 'name: supplied' > $3/$4/config.yml; echo dep > $3/$4/bin/dep
printf 'processes:\n- type: worker\n  command: work\n' > $3/$4/launch.yml`,
	})
	fin := stagingtest.Buildpack(t, map[string]string{
		"supply":   "echo final-supply $4 > $3/$4/s",
		"finalize": `echo "$@" > $1/args; cat $3/0/bin/dep > $1/dep; echo 'export FIN=1' > $5/finalized.sh`,
		"release":  "printf -- '---\\ndefault_process_types:\\n  web: run-web\\n'",
	})
	req := h.request(h.putApp(map[string]string{"a": "b"}), sup, fin)
	req.SkipDetect = true
	res, _, err := h.stage(req)
	require.NoError(t, err)
	d := h.droplet(req)
	assert.Equal(t, "/home/vcap/app /tmp/cache/final /home/vcap/deps 1 /home/vcap/profile.d\n", read(t, filepath.Join(d, "app/args")))
	assert.Equal(t, "dep\n", read(t, filepath.Join(d, "app/dep")))
	assert.Equal(t, "final-supply 1\n", read(t, filepath.Join(d, "deps/1/s")))
	assert.FileExists(t, filepath.Join(d, "profile.d/finalized.sh"))
	assert.Equal(t, map[string]string{"web": "run-web", "worker": "work"}, res.ProcessTypes)
	require.Len(t, res.Buildpacks, 2)
	assert.Equal(t, "supplied", res.Buildpacks[0].Name)

	// A non-final buildpack without bin/supply: 225.
	req = h.request(h.putApp(map[string]string{"a": "b"}), fin, stagingtest.Buildpack(t, map[string]string{"compile": "true"}), fin)
	req.Buildpacks[0] = staging.BuildpackSource{Dir: stagingtest.Buildpack(t, map[string]string{"compile": "true"})}
	req.SkipDetect = true
	_, log, err := h.stage(req)
	var se *staging.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, staging.CodeSupplyFailed, se.Code)
	assert.Contains(t, log, "does not support multi-buildpack apps")
}

func TestContractRules(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		scripts map[string]string
		files   map[string]string
		env     map[string]string
		command string
		code    int // 0: success
		check   func(t *testing.T, res *staging.Result, log, dir string)
	}{
		{
			name:    "compile gets ENV_DIR and the staging env",
			scripts: map[string]string{"compile": `echo "$#" > $1/n; cat $3/FOO > $1/foo; echo "$FOO $CF_STACK $MEMORY_LIMIT" > $1/env; id -u > $1/uid`},
			env:     map[string]string{"FOO": "bar"},
			check: func(t *testing.T, _ *staging.Result, _, d string) {
				assert.Equal(t, "3\n", read(t, filepath.Join(d, "app/n")))
				assert.Equal(t, "bar", read(t, filepath.Join(d, "app/foo")))
				assert.Equal(t, "bar test 1024m\n", read(t, filepath.Join(d, "app/env")))
				assert.Equal(t, "10001\n", read(t, filepath.Join(d, "app/uid")))
			},
		},
		{
			name:    "release is optional",
			scripts: map[string]string{"compile": "true"},
			files:   map[string]string{"Procfile": "web: ./server --port=$PORT"},
			check: func(t *testing.T, res *staging.Result, _, _ string) {
				assert.Equal(t, "./server --port=$PORT", res.StartCommand)
			},
		},
		{
			name:    "bad release YAML",
			scripts: map[string]string{"compile": "true", "release": "echo 'default_process_types: [unclosed'"},
			code:    staging.CodeReleaseFailed,
		},
		{
			name:    "release exit status",
			scripts: map[string]string{"compile": "true", "release": "exit 4"},
			code:    staging.CodeReleaseFailed,
		},
		{
			name:    "Procfile merges over release per type",
			scripts: map[string]string{"compile": "true", "release": "printf 'default_process_types:\\n  web: rel-web\\n  worker: rel-worker\\n'"},
			files:   map[string]string{"Procfile": "# comment\nweb: proc-web a:b\n"},
			check: func(t *testing.T, res *staging.Result, _, _ string) {
				assert.Equal(t, map[string]string{"web": "proc-web a:b", "worker": "rel-worker"}, res.ProcessTypes)
				assert.Equal(t, "proc-web a:b", res.StartCommand)
			},
		},
		{
			name:    "user command wins",
			scripts: map[string]string{"compile": "true", "release": "printf 'default_process_types:\\n  web: rel-web\\n'"},
			files:   map[string]string{"Procfile": "web: proc-web"},
			command: "user-cmd",
			check: func(t *testing.T, res *staging.Result, _, _ string) {
				assert.Equal(t, "user-cmd", res.StartCommand)
			},
		},
		{
			name:    "release web when no Procfile",
			scripts: map[string]string{"compile": "true", "release": "printf 'default_process_types:\\n  web: rel-web\\n'"},
			check: func(t *testing.T, res *staging.Result, _, _ string) {
				assert.Equal(t, "rel-web", res.StartCommand)
			},
		},
		{
			name:    "no web is a warning",
			scripts: map[string]string{"compile": "true", "release": "printf 'default_process_types:\\n  worker: w\\n'"},
			check: func(t *testing.T, res *staging.Result, log, _ string) {
				assert.Empty(t, res.StartCommand)
				assert.Contains(t, log, "No start command specified by buildpack or via Procfile.")
				assert.NotEmpty(t, res.Warnings)
			},
		},
		{
			name:    "invalid Procfile",
			scripts: map[string]string{"compile": "true"},
			files:   map[string]string{"Procfile": "just garbage\n"},
			code:    staging.CodeStagingFailed,
		},
		{
			name:    "config_vars become defaults",
			scripts: map[string]string{"compile": "true", "release": "printf 'config_vars:\\n  GREETING: hello $USER\\n'"},
			check: func(t *testing.T, _ *staging.Result, _, d string) {
				assert.Contains(t, read(t, filepath.Join(d, "profile.d/000_config_vars.sh")), `export GREETING="${GREETING-hello \$USER}"`)
			},
		},
		{
			name:    "compile failure keeps the output",
			scripts: map[string]string{"compile": "echo 'oh no'; exit 3"},
			code:    staging.CodeCompileFailed,
			check: func(t *testing.T, _ *staging.Result, log, _ string) {
				assert.Contains(t, log, "Failed to compile droplet")
			},
		},
		{
			name:    "finalize failure",
			scripts: map[string]string{"finalize": "exit 1"},
			code:    staging.CodeFinalizeFailed,
		},
		{
			name:    "supply failure of the final buildpack",
			scripts: map[string]string{"supply": "exit 1", "finalize": "true"},
			code:    staging.CodeSupplyFailed,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			files := tc.files
			if files == nil {
				files = map[string]string{"x": "y"}
			}
			req := h.request(h.putApp(files), stagingtest.Buildpack(t, tc.scripts))
			req.SkipDetect = true
			req.Env = tc.env
			req.StartCommand = tc.command
			res, log, err := h.stage(req)
			if tc.code != 0 {
				var se *staging.Error
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.code, se.Code, "%v", err)
				if tc.code == staging.CodeCompileFailed {
					assert.Contains(t, se.Output, "oh no")
				}
				if tc.check != nil {
					tc.check(t, nil, log, "")
				}
				return
			}
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, res, log, h.droplet(req))
			}
		})
	}
}

func TestCacheRestoredAndCorruptTolerated(t *testing.T) {
	h := newHarness(t)
	bp := stagingtest.Buildpack(t, map[string]string{"compile": `if [ -f $2/marker ]; then echo "here's a cache"; else echo "cache not found"; fi; touch $2/marker`})
	pkg := h.putApp(map[string]string{"x": "y"})
	req := h.request(pkg, bp)
	req.SkipDetect = true
	req.CacheSource = staging.Source{Key: "caches/app-1"}
	req.CacheDest = staging.Source{Key: "caches/app-1"}
	_, log, err := h.stage(req)
	require.NoError(t, err)
	assert.Contains(t, log, "cache not found")
	_, log, err = h.stage(req)
	require.NoError(t, err)
	assert.Contains(t, log, "here's a cache")

	require.NoError(t, h.store.Put(context.Background(), "caches/app-1", strings.NewReader("not a tarball at all")))
	res, log, err := h.stage(req)
	require.NoError(t, err)
	assert.Contains(t, log, "cache not found")
	assert.NotEmpty(t, res.Warnings)
}

func TestTimeoutKillsContainer(t *testing.T) {
	h := newHarness(t)
	bp := stagingtest.Buildpack(t, map[string]string{"compile": "echo sleeping; sleep 600"})
	req := h.request(h.putApp(map[string]string{"x": "y"}), bp)
	req.SkipDetect = true
	req.Timeout = 2 * time.Second
	start := time.Now()
	_, _, err := h.stage(req)
	assert.Less(t, time.Since(start), 30*time.Second)
	require.ErrorIs(t, err, staging.ErrTimeout)
	var se *staging.Error
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Output, "sleeping")
	cs, err := h.m.List(context.Background(), nil)
	require.NoError(t, err)
	assert.Empty(t, cs, "the staging container is destroyed")
}

func TestLogsStreamLive(t *testing.T) {
	h := newHarness(t)
	bp := stagingtest.Buildpack(t, map[string]string{"compile": "echo MARKER; sleep 2"})
	req := h.request(h.putApp(map[string]string{"x": "y"}), bp)
	req.SkipDetect = true
	seen := make(chan time.Time, 1)
	w := writerFunc(func(p []byte) {
		if bytes.Contains(p, []byte("MARKER")) {
			select {
			case seen <- time.Now():
			default:
			}
		}
	})
	_, err := h.st.Stage(t.Context(), req, w)
	require.NoError(t, err)
	done := time.Now()
	select {
	case at := <-seen:
		assert.Greater(t, done.Sub(at), time.Second, "the line arrived while compile ran")
	default:
		t.Fatal("MARKER never seen")
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func TestHostilePackageRefused(t *testing.T) {
	h := newHarness(t)
	bp := stagingtest.Buildpack(t, map[string]string{"compile": "true"})
	req := h.request(h.putApp(map[string]string{"../../escape": "x"}), bp)
	req.SkipDetect = true
	_, _, err := h.stage(req)
	require.ErrorIs(t, err, staging.ErrPackageInvalid)
}

func TestLauncherSourcesProfilesInOrder(t *testing.T) {
	h := newHarness(t)
	bp := stagingtest.Buildpack(t, map[string]string{
		"finalize": `echo 'echo droplet-profile.d; export ORDER=a' > $5/a.sh
mkdir -p $1/.profile.d; echo 'echo app-profile.d; export ORDER=${ORDER}b' > $1/.profile.d/b.sh
echo 'echo dot-profile; export ORDER=${ORDER}c' > $1/.profile`,
		"release": "printf 'default_process_types:\\n  web: echo \"cmd $ORDER $HOME $DEPS_DIR $FOO\"; exit 7\\n'",
	})
	req := h.request(h.putApp(map[string]string{"x": "y"}), bp)
	req.SkipDetect = true
	res, _, err := h.stage(req)
	require.NoError(t, err)

	c := containertest.NewContainer(t, h.m, container.Spec{User: "vcap"})
	rc, err := h.store.Get(context.Background(), req.Droplet.Key)
	require.NoError(t, err)
	require.NoError(t, c.StreamIn(t.Context(), staging.DropletRoot, "vcap", rc))
	rc.Close()
	info := &staging.StagingInfo{StartCommand: res.StartCommand}
	spec, err := staging.Launch(info, "", []string{"FOO=foo"}, staging.LaunchOptions{})
	require.NoError(t, err)
	var out bytes.Buffer
	p, err := c.Run(t.Context(), spec, container.ProcessIO{Stdout: &out, Stderr: &out})
	require.NoError(t, err)
	code, err := p.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 7, code)
	assert.Equal(t, "droplet-profile.d\napp-profile.d\ndot-profile\ncmd abc /home/vcap/app /home/vcap/deps foo\n", out.String())

	_, err = staging.Launch(&staging.StagingInfo{}, "", nil, staging.LaunchOptions{})
	assert.ErrorIs(t, err, staging.ErrNoStartCommand)
}

func TestPluginStagesInProcess(t *testing.T) {
	h := newHarness(t)
	req := h.request(h.putApp(map[string]string{"index.html": "<h1>hi</h1>"}))
	req.Buildpacks = []staging.BuildpackSource{{Plugin: staticPlugin{}}}
	res, log, err := h.stage(req)
	require.NoError(t, err)
	assert.Equal(t, "static", res.DetectedBuildpack)
	assert.Equal(t, "python3 -m http.server $PORT", res.StartCommand)
	assert.Contains(t, log, "static plugin compiling")
	cs, _ := h.m.List(context.Background(), nil)
	assert.Empty(t, cs)
	_ = errors.New
}

type staticPlugin struct{}

func (staticPlugin) Name() string { return "static" }
func (staticPlugin) Detect(_ context.Context, b *staging.Build) (bool, error) {
	_, err := os.Stat(filepath.Join(b.AppDir, "index.html"))
	return err == nil, nil
}
func (staticPlugin) Compile(_ context.Context, b *staging.Build) error {
	_, err := b.Output.Write([]byte("static plugin compiling\n"))
	return err
}
func (staticPlugin) Release(context.Context, *staging.Build) (*staging.Release, error) {
	return &staging.Release{DefaultProcessTypes: map[string]string{"web": "python3 -m http.server $PORT"}}, nil
}

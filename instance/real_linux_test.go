package instance_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/instance"
	"github.com/paaskit/paaskit/instance/instancetest"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realEnv is an instance Manager on real containers with networking, a
// depot and a base directory that survive the Managers (to simulate a
// restart), and a cleanup that destroys every container.
type realEnv struct {
	depot, base string
	net         container.NetworkConfig
	droplets    *instance.DropletRegistry
	blobs       map[string][]byte // served by srv at /droplets/<sha1>
	srv         *httptest.Server
	downloads   atomic.Int32
	stack       string
	cm          *container.Manager
	m           *instance.Manager
}

func newRealEnv(t *testing.T) *realEnv {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireOverlay(t)
	stack := containertest.Stack(t)
	if _, err := os.Stat(filepath.Join(stack, "usr/bin/python3")); err != nil {
		testutil.Unmet(t, "python3 on the host (the test app is a python3 web server)")
	}
	pid := os.Getpid()
	n := time.Now().UnixNano() % 97
	e := &realEnv{
		depot: t.TempDir(), base: t.TempDir(), stack: stack,
		net: container.NetworkConfig{
			Bridge:    fmt.Sprintf("pki%d", (pid*100+int(n))%10000000),
			Subnet:    netip.MustParsePrefix(fmt.Sprintf("10.253.%d.0/24", (pid+int(n))%250)),
			HostPorts: [2]uint16{uint16(30000 + (pid%500)*20 + int(n%2)*10), uint16(30000 + (pid%500)*20 + int(n%2)*10 + 9)},
		},
		blobs: map[string][]byte{},
	}
	reg, err := droplet.OpenRegistry(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	e.droplets = instance.NewDropletRegistry(reg)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.downloads.Add(1)
		b, ok := e.blobs[strings.TrimPrefix(r.URL.Path, "/droplets/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(e.srv.Close)
	e.open(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.m.Close()
		cs, err := e.cm.List(ctx, nil)
		if err != nil {
			t.Errorf("list containers: %v", err)
		}
		for _, c := range cs {
			if err := c.Destroy(ctx); err != nil {
				t.Errorf("destroy %s: %v", c.Handle(), err)
			}
		}
		e.cm.Close()
	})
	return e
}

// addDroplet serves tgz as a blob store would and returns its SHA-1 and
// URI.
func (e *realEnv) addDroplet(tgz []byte) (sha, uri string) {
	sum := sha1.Sum(tgz)
	sha = hex.EncodeToString(sum[:])
	e.blobs[sha] = tgz
	return sha, e.srv.URL + "/droplets/" + sha
}

// open opens the container Manager and the instance Manager (again).
func (e *realEnv) open(t *testing.T) {
	t.Helper()
	cm, err := container.New(e.depot, container.WithNetwork(e.net), container.WithStopTimeout(2*time.Second))
	require.NoError(t, err)
	e.cm = cm
	m, err := instance.New(instance.Config{
		BaseDir: e.base, Containers: instance.NewContainerBackend(cm), Droplets: e.droplets,
		Stacks: map[string]string{"test": e.stack},
	}, instance.WithReapers(instance.ReaperConfig{}), instance.WithLocalIP("192.0.2.10"))
	require.NoError(t, err)
	e.m = m
}

// restart simulates a DEA restart: both Managers are closed (containers
// and processes keep running) and opened anew on the same directories.
func (e *realEnv) restart(t *testing.T) {
	t.Helper()
	require.NoError(t, e.m.Close())
	require.NoError(t, e.cm.Close())
	e.open(t)
}

func get(t *testing.T, url string) (string, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestRealInstance(t *testing.T) {
	e := newRealEnv(t)
	tgz, err := instancetest.AppDroplet()
	require.NoError(t, err)
	sha, uri := e.addDroplet(tgz)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	spec := func(index int) instance.Spec {
		return instance.Spec{
			ApplicationID: "app-real", ApplicationName: "real", ApplicationVersion: "v1", InstanceIndex: index,
			ApplicationURIs: []string{"real.example.com"},
			DropletSHA1:     sha, DropletURI: uri,
			Limits:          instance.Limits{Mem: 128, Disk: 512, FDs: 1024},
			Environment:     map[string]string{"USER_VAR": "from the app"},
			VCAPApplication: map[string]any{"space_name": "dev"},
			HealthCheck:     instance.HealthCheck{Type: instance.HealthCheckHTTP, HTTPEndpoint: "/", Timeout: instance.Duration(60 * time.Second)},
		}
	}
	inst, err := e.m.Create(spec(0))
	require.NoError(t, err)
	require.NoError(t, e.m.Start(ctx, inst))
	a := inst.Attributes()
	require.Equal(t, instance.StateRunning, a.State)
	require.NotEmpty(t, a.WardenContainerIP)

	// The environment the app sees.
	body, err := get(t, fmt.Sprintf("http://%s:%d/env", a.WardenContainerIP, a.InstanceContainerPort))
	require.NoError(t, err)
	var env map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &env), body)
	var va map[string]any
	require.NoError(t, json.Unmarshal([]byte(env["VCAP_APPLICATION"]), &va), "VCAP_APPLICATION is JSON")
	assert.Equal(t, a.InstanceID, va["instance_id"])
	assert.Equal(t, float64(0), va["instance_index"])
	assert.Equal(t, float64(a.InstanceContainerPort), va["port"])
	assert.Equal(t, "0.0.0.0", va["host"])
	assert.Equal(t, "app-real", va["application_id"])
	assert.Equal(t, "dev", va["space_name"])
	assert.Contains(t, va, "started_at_timestamp")
	assert.Equal(t, strconv.Itoa(a.InstanceContainerPort), env["PORT"])
	assert.Equal(t, env["PORT"], env["VCAP_APP_PORT"])
	assert.Equal(t, "128m", env["MEMORY_LIMIT"])
	assert.Equal(t, "/home/vcap/app", env["HOME"])
	assert.Equal(t, "/home/vcap/tmp", env["TMPDIR"])
	assert.Equal(t, "192.0.2.10", env["CF_INSTANCE_IP"])
	assert.Equal(t, "from the app", env["USER_VAR"])
	assert.Equal(t, "yes", env["PROFILE_SOURCED"], "app/.profile.d was sourced")
	assert.JSONEq(t, "{}", env["VCAP_SERVICES"])

	// PORT answers from the host's port too (NetIn).
	body, err = get(t, fmt.Sprintf("http://127.0.0.1:%d/", a.InstanceHostPort))
	require.NoError(t, err)
	assert.Equal(t, "ok", body)

	st, err := e.m.Stats(ctx, inst)
	require.NoError(t, err)
	assert.Positive(t, st.Usage.Mem)
	assert.Positive(t, st.Usage.Disk)
	info, err := e.cm.Lookup(a.WardenHandle)
	require.NoError(t, err)
	ci, err := info.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(128<<20), ci.Memory.Limit)

	// A second instance, to be resumed.
	other, err := e.m.Create(spec(1))
	require.NoError(t, err)
	require.NoError(t, e.m.Start(ctx, other))
	otherPID := other.Attributes().ProcessPID
	assert.Equal(t, int32(1), e.downloads.Load(), "the droplet was downloaded once")

	// Crash the first.
	_, _ = get(t, fmt.Sprintf("http://%s:%d/exit?code=3", a.WardenContainerIP, a.InstanceContainerPort))
	waitState(t, inst, instance.StateCrashed)
	a = inst.Attributes()
	assert.Equal(t, 3, a.ExitStatus)
	assert.Equal(t, instance.DescExited, a.ExitDescription)
	out, err := os.ReadFile(filepath.Join(a.InstancePath, "stdout.log"))
	require.NoError(t, err)
	assert.Contains(t, string(out), "listening on "+env["PORT"])
	applog, err := os.ReadFile(filepath.Join(a.InstancePath, "logs", "app.log"))
	require.NoError(t, err)
	assert.Equal(t, "started\n", string(applog))
	_, err = e.cm.Lookup(a.WardenHandle)
	assert.ErrorIs(t, err, container.ErrNotFound, "the crashed container is destroyed")

	// Restart the DEA: the second instance resumes with the same process.
	e.restart(t)
	insts, err := e.m.Resume(ctx)
	require.NoError(t, err)
	require.Len(t, insts, 2)
	var resumed *instance.Instance
	for _, i := range insts {
		if i.ID() == other.ID() {
			resumed = i
		}
	}
	require.NotNil(t, resumed)
	ra := resumed.Attributes()
	assert.Equal(t, instance.StateRunning, ra.State)
	assert.Equal(t, otherPID, ra.ProcessPID, "the same process")
	body, err = get(t, fmt.Sprintf("http://127.0.0.1:%d/", ra.InstanceHostPort))
	require.NoError(t, err)
	assert.Equal(t, "ok", body)
	require.NoError(t, e.m.Stop(ctx, resumed))
	_, err = e.cm.Lookup(ra.WardenHandle)
	assert.ErrorIs(t, err, container.ErrNotFound)
}

func TestRealOutOfMemory(t *testing.T) {
	e := newRealEnv(t)
	tgz, err := instancetest.AppDroplet()
	require.NoError(t, err)
	sha, uri := e.addDroplet(tgz)
	inst, err := e.m.Create(instance.Spec{
		ApplicationID: "hog", DropletSHA1: sha, DropletURI: uri, Limits: instance.Limits{Mem: 32},
		StartCommand: `python3 -c "import time; time.sleep(0.3); x = bytearray(256 << 20); time.sleep(60)"`,
		HealthCheck:  instance.HealthCheck{Type: instance.HealthCheckProcess},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_ = e.m.Start(ctx, inst) // may end RUNNING or already CRASHED
	deadline := time.Now().Add(30 * time.Second)
	for inst.State() != instance.StateCrashed && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	a := inst.Attributes()
	require.Equal(t, instance.StateCrashed, a.State)
	assert.Equal(t, instance.DescOutOfMemory, a.ExitDescription)
	assert.Equal(t, 137, a.ExitStatus)
}

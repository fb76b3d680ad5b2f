package instance_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/paaskit/paaskit/instance"
	"github.com/paaskit/paaskit/instance/instancetest"
	"github.com/stretchr/testify/require"
)

// env is a Manager on fakes.
type env struct {
	m    *instance.Manager
	c    *instancetest.Containers
	d    *instancetest.Droplets
	sha  string
	base string
	opts []instance.Option
}

// testDroplet runs "./web" from app/.
func testDroplet(t testing.TB) []byte {
	t.Helper()
	b, err := instancetest.NewDroplet(map[string]string{
		"staging_info.yml": "---\ndetected_buildpack: test\nstart_command: ./web --port $PORT\n",
		"app/web":          "#!/bin/sh\n",
		"logs/app.log":     "booted\n",
	})
	require.NoError(t, err)
	return b
}

// newEnv returns a Manager on fakes, with reapers off unless opts say
// otherwise; it is closed when the test ends.
func newEnv(t testing.TB, opts ...instance.Option) *env {
	t.Helper()
	e := &env{c: instancetest.NewContainers(), d: instancetest.NewDroplets(t.TempDir()), base: t.TempDir()}
	e.sha = e.d.Add(testDroplet(t))
	e.opts = append([]instance.Option{instance.WithReapers(instance.ReaperConfig{}), instance.WithLocalIP("10.0.0.5")}, opts...)
	e.m = e.open(t)
	return e
}

func (e *env) open(t testing.TB) *instance.Manager {
	t.Helper()
	m, err := instance.New(instance.Config{
		BaseDir: e.base, Containers: e.c, Droplets: e.d,
		Stacks: map[string]string{"cflinuxfs": "/stacks/cflinuxfs"},
	}, e.opts...)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// reopen closes the Manager and opens a new one on the same base
// directory and fakes, as a restarted DEA.
func (e *env) reopen(t testing.TB) {
	t.Helper()
	require.NoError(t, e.m.Close())
	e.m = e.open(t)
}

func (e *env) spec(mods ...func(*instance.Spec)) instance.Spec {
	s := instance.Spec{
		ApplicationID:      "app-1",
		ApplicationName:    "web",
		ApplicationVersion: "v1",
		DropletSHA1:        e.sha,
		DropletURI:         "http://cc/droplets/app-1",
		Limits:             instance.Limits{Mem: 256, Disk: 1024, FDs: 1000},
		HealthCheck:        instance.HealthCheck{Type: instance.HealthCheckProcess},
	}
	for _, f := range mods {
		f(&s)
	}
	return s
}

// start creates and starts an instance of spec; it must reach RUNNING.
func (e *env) start(t testing.TB, s instance.Spec) *instance.Instance {
	t.Helper()
	inst, err := e.m.Create(s)
	require.NoError(t, err)
	require.NoError(t, e.m.Start(t.Context(), inst))
	require.Equal(t, instance.StateRunning, inst.State())
	return inst
}

// proc returns the fake process of an instance.
func (e *env) proc(t testing.TB, inst *instance.Instance) *instancetest.Process {
	t.Helper()
	c := e.c.Container(inst.Attributes().WardenHandle)
	require.NotNil(t, c)
	p := c.Process(instance.ProcessID)
	require.NotNil(t, p)
	return p
}

// waitState waits until inst is in state.
func waitState(t testing.TB, inst *instance.Instance, state instance.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for inst.State() != state {
		if time.Now().After(deadline) {
			t.Fatalf("instance %s: state %s, want %s", inst.ID(), inst.State(), state)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder records the events a Manager delivers.
type recorder struct {
	mu  sync.Mutex
	evs []instance.Event
}

func record(m *instance.Manager) *recorder {
	r := &recorder{}
	m.Listen(func(e instance.Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.evs = append(r.evs, e)
	})
	return r
}

// strings returns the events of one instance as strings.
func (r *recorder) strings(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.evs {
		if id == "" || e.Attributes.InstanceID == id {
			out = append(out, e.String())
		}
	}
	return out
}

// entering returns the states entered, in order, by every instance.
func (r *recorder) entering() []instance.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []instance.State
	for _, e := range r.evs {
		if e.Kind == instance.EventEntering {
			out = append(out, e.To)
		}
	}
	return out
}

func transitions(states ...string) []string {
	var out []string
	for i := 0; i+1 < len(states); i++ {
		out = append(out, "exiting "+states[i], fmt.Sprintf("transition %s->%s", states[i], states[i+1]), "entering "+states[i+1])
	}
	return out
}

func flush(t testing.TB, m *instance.Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.Flush(ctx))
}

// okHandler answers 200 on every path but /fail (500).
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/fail" {
		http.Error(w, "no", http.StatusInternalServerError)
		return
	}
	w.Write([]byte("ok"))
})

func itoa(n int) string { return strconv.Itoa(n) }

func contextWithTimeout(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

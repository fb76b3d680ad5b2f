package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/droplet/droplettest"
	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
	"github.com/paaskit/paaskit/nats/natstest"
)

func TestMain(m *testing.M) { containertest.Main(m) }

// env is one test's world: an embedded NATS server, a blob store with an
// app package, admin buildpacks and a container manager.
type env struct {
	t       *testing.T
	nats    *natsserver.Server
	blobs   *droplettest.Server
	bpDir   string
	stack   string
	m       *container.Manager
	client  *natsgo.Conn
	pkgURL  string
	uploads int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, nats: natstest.StartServer(t), blobs: droplettest.NewServer(t), bpDir: t.TempDir()}
	e.m = containertest.NewManager(t)
	e.stack = containertest.Stack(t)
	e.client = natstest.Connect(t, e.nats).Conn()
	e.writeBuildpack("trivial", map[string]string{
		"detect":  "echo Trivial",
		"compile": "echo compiling the app; sleep ${SLEEP:-0}",
		"release": `echo '--- {default_process_types: {web: "true"}}'`,
	})
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("Procfile")
	require.NoError(t, err)
	_, _ = io.WriteString(w, "web: true\n")
	require.NoError(t, zw.Close())
	e.pkgURL = e.blobs.Add(t, "packages/app", buf.Bytes())
	return e
}

func (e *env) writeBuildpack(name string, scripts map[string]string) {
	for n, body := range scripts {
		p := filepath.Join(e.bpDir, name, "bin", n)
		require.NoError(e.t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(e.t, os.WriteFile(p, []byte("#!/bin/bash\n"+body+"\n"), 0o755))
	}
}

// service starts a Service on its own bus and stops it when the test ends.
func (e *env) service(mod func(*Config)) *Service {
	e.t.Helper()
	cfg := Config{
		Queues:             []string{"staging"},
		Workers:            2,
		QueueSize:          20,
		MaxStagingDuration: time.Minute,
		Stacks:             map[string]StackConfig{"test": {RootFS: e.stack, User: "vcap", UID: 10001, GID: 10001}},
		BuildpacksDir:      e.bpDir,
		WorkDir:            e.t.TempDir(),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, Deps{Bus: natstest.Connect(e.t, e.nats), Containers: e.m})
	require.NoError(e.t, err)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = s.Shutdown(ctx)
		assert.ErrorIs(e.t, <-errc, ErrServiceClosed)
	})
	select {
	case <-s.Ready():
	case err := <-errc:
		e.t.Fatal(err)
	}
	return s
}

// v1 returns a v1 request for the trivial buildpack, with env.
func (e *env) v1(appID int, envs ...string) []byte {
	e.uploads++
	b, err := json.Marshal(map[string]any{
		"app_id":       appID,
		"download_uri": e.pkgURL,
		"upload_uri":   e.blobs.URL(fmt.Sprintf("droplets/%d-%d", appID, e.uploads)),
		"properties": map[string]any{
			"framework_info": map[string]any{"name": "trivial"},
			"environment":    envs,
			"resources":      map[string]any{"memory": 256, "disk": 512, "fds": 1024},
		},
	})
	require.NoError(e.t, err)
	return b
}

// pending is one request in flight and its replies.
type pending struct {
	sub *natsgo.Subscription
	ch  chan *natsgo.Msg
}

func (e *env) send(data []byte) *pending {
	e.t.Helper()
	inbox := e.client.NewInbox()
	p := &pending{ch: make(chan *natsgo.Msg, 8)}
	var err error
	p.sub, err = e.client.ChanSubscribe(inbox, p.ch)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = p.sub.Unsubscribe() })
	require.NoError(e.t, e.client.PublishRequest("staging", inbox, data))
	require.NoError(e.t, e.client.Flush())
	return p
}

// v1Reply waits for the single v1 reply.
func (p *pending) v1Reply(t *testing.T, wait time.Duration) V1Reply {
	t.Helper()
	select {
	case m := <-p.ch:
		var r V1Reply
		require.NoError(t, json.Unmarshal(m.Data, &r), "%s", m.Data)
		return r
	case <-time.After(wait):
		t.Fatal("no reply")
		return V1Reply{}
	}
}

// noMore checks that no further reply arrives.
func (p *pending) noMore(t *testing.T) {
	t.Helper()
	select {
	case m := <-p.ch:
		t.Errorf("extra reply: %s", m.Data)
	case <-time.After(200 * time.Millisecond):
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.True(t, natstest.WaitFor(ctx, cond), "timed out waiting for %s", what)
}

func TestStageV1(t *testing.T) {
	e := newEnv(t)
	s := e.service(nil)
	p := e.send(e.v1(42))
	r := p.v1Reply(t, time.Minute)
	require.Nil(t, r.Error, "task log:\n%s", r.TaskLog)
	assert.NotEmpty(t, r.TaskID)
	assert.Contains(t, r.TaskLog, "compiling the app")
	assert.Equal(t, 1, e.blobs.Counts("droplets/42-1").Posts)
	p.noMore(t)
	m := s.Metrics()
	assert.EqualValues(t, 1, m.Succeeded)
	assert.EqualValues(t, 1, m.Durations.Count)
}

func TestStageDEA(t *testing.T) {
	e := newEnv(t)
	e.service(nil)
	req := nats.StagingRequest{
		AppID: "app-guid", TaskID: "task-1", Stack: "test",
		DownloadURI: e.pkgURL, UploadURI: e.blobs.URL("droplets/app-guid"),
		Properties: nats.StagingProperties{BuildpackKey: "trivial", Environment: []string{"SLEEP=1"}},
	}
	data, err := nats.Encode(req)
	require.NoError(t, err)
	p := e.send(data)
	var first, final nats.StagingReply
	for _, r := range []*nats.StagingReply{&first, &final} {
		select {
		case m := <-p.ch:
			require.NoError(t, json.Unmarshal(m.Data, r))
		case <-time.After(time.Minute):
			t.Fatal("no reply")
		}
	}
	assert.Equal(t, "task-1", first.TaskID)
	require.NotEmpty(t, first.TaskStreamingLogURL)
	assert.False(t, first.Final())
	require.True(t, final.Final())
	require.Empty(t, final.Error)
	assert.Len(t, final.DropletSHA1, 40)
	assert.Equal(t, "true", final.DetectedStartCommand)
	p.noMore(t)

	resp, err := http.Get(first.TaskStreamingLogURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(body), "compiling the app")
}

func TestQueueGroupSpreadsWork(t *testing.T) {
	e := newEnv(t)
	a, b := e.service(nil), e.service(nil)
	const n = 20
	ps := make([]*pending, n)
	for i := range ps {
		ps[i] = e.send(e.v1(i + 1))
	}
	for i, p := range ps {
		r := p.v1Reply(t, 2*time.Minute)
		assert.Nil(t, r.Error, "request %d: %s", i, r.TaskLog)
	}
	for _, p := range ps {
		p.noMore(t)
	}
	ma, mb := a.Metrics(), b.Metrics()
	assert.EqualValues(t, n, ma.Succeeded+mb.Succeeded, "each request handled once")
	assert.Positive(t, ma.Succeeded)
	assert.Positive(t, mb.Succeeded)
	for i := range n {
		assert.Equal(t, 1, e.blobs.Counts(fmt.Sprintf("droplets/%d-%d", i+1, i+1)).Posts)
	}
}

func TestBusyWhenQueueFull(t *testing.T) {
	e := newEnv(t)
	s := e.service(func(c *Config) { c.Workers, c.QueueSize = 1, 1 })
	running := e.send(e.v1(1, "SLEEP=30"))
	waitFor(t, "a running staging", func() bool { return s.Metrics().Running == 1 })
	queued := e.send(e.v1(2, "SLEEP=30"))
	waitFor(t, "a queued staging", func() bool { return s.Metrics().Queued == 1 })

	start := time.Now()
	busy := e.send(e.v1(3)).v1Reply(t, 5*time.Second)
	require.NotNil(t, busy.Error)
	assert.Contains(t, *busy.Error, "busy")
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.EqualValues(t, 1, s.Metrics().Failed[ErrTypeBusy])

	// A short deadline cancels the running staging; the queued one is
	// handed back. Each gets one reply.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, s.Shutdown(ctx), context.DeadlineExceeded)
	r1 := running.v1Reply(t, 30*time.Second)
	require.NotNil(t, r1.Error)
	r2 := queued.v1Reply(t, 5*time.Second)
	require.NotNil(t, r2.Error)
	assert.Contains(t, *r2.Error, "shutting down")
	running.noMore(t)
	queued.noMore(t)
}

func TestTimeoutKillsStaging(t *testing.T) {
	e := newEnv(t)
	s := e.service(func(c *Config) { c.MaxStagingDuration = 2 * time.Second })
	start := time.Now()
	r := e.send(e.v1(7, "SLEEP=60")).v1Reply(t, 30*time.Second)
	require.NotNil(t, r.Error)
	assert.Contains(t, *r.Error, "timed out")
	assert.Less(t, time.Since(start), 20*time.Second)
	assert.EqualValues(t, 1, s.Metrics().Failed[ErrTypeTimeout])
	assert.Zero(t, e.blobs.Counts("droplets/7-1").Posts)
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t)
	s := e.service(nil)
	for _, tc := range []struct{ name, data string }{
		{"not json", "{nope"},
		{"no uris", `{"app_id": 1}`},
		{"bad uri", `{"app_id": 1, "download_uri": "/relative", "upload_uri": "ftp://x"}`},
		{"dea without app", `{"task_id": "t1", "download_uri": "http://x/a", "upload_uri": "http://x/b"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.send([]byte(tc.data))
			select {
			case m := <-p.ch:
				var r struct {
					Error *string `json:"error"`
				}
				require.NoError(t, json.Unmarshal(m.Data, &r), "%s", m.Data)
				require.NotNil(t, r.Error)
				assert.Contains(t, *r.Error, "malformed")
			case <-time.After(5 * time.Second):
				t.Fatal("no reply")
			}
			p.noMore(t)
		})
	}
	assert.EqualValues(t, 4, s.Metrics().Failed[ErrTypeMalformed])
	r := e.send(e.v1(9)).v1Reply(t, time.Minute)
	assert.Nil(t, r.Error, "the service keeps serving: %s", r.TaskLog)
}

func TestShutdownRepliesOnce(t *testing.T) {
	e := newEnv(t)
	s := e.service(func(c *Config) { c.Workers, c.QueueSize = 2, 10 })
	const n = 6
	ps := make([]*pending, n)
	for i := range ps {
		ps[i] = e.send(e.v1(i+1, "SLEEP=2"))
	}
	waitFor(t, "two running stagings", func() bool {
		m := s.Metrics()
		return m.Running == 2 && m.Queued == n-2
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))

	var mu sync.Mutex
	ok, handedBack := 0, 0
	for _, p := range ps {
		r := p.v1Reply(t, 5*time.Second)
		mu.Lock()
		if r.Error == nil {
			ok++
		} else {
			assert.Contains(t, *r.Error, "shutting down")
			handedBack++
		}
		mu.Unlock()
	}
	for _, p := range ps {
		p.noMore(t)
	}
	assert.Equal(t, 2, ok, "running stagings finish")
	assert.Equal(t, n-2, handedBack, "queued requests are handed back")

	// After shutdown nobody answers.
	_, err := e.client.Request("staging", e.v1(99), 500*time.Millisecond)
	assert.Error(t, err)
}

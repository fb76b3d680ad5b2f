package server_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/container/server"
	"github.com/paaskit/paaskit/container/server/servertest"
	"github.com/paaskit/paaskit/container/server/wire"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { containertest.Main(m) }

// harness is a Manager on a temporary depot served on a temporary socket,
// and a client of it.
type harness struct {
	m   *container.Manager
	srv *servertest.Server
	cl  *client.Client
}

func newHarness(t *testing.T, sopts []server.Option, mopts ...container.Option) *harness {
	t.Helper()
	m := containertest.NewManager(t, append([]container.Option{container.WithStopTimeout(time.Second)}, mopts...)...)
	srv := servertest.Start(t, m, sopts...)
	return &harness{m: m, srv: srv, cl: srv.Client(t)}
}

// create makes a container through the client with a unique handle,
// destroyed when the test ends.
func (h *harness) create(t *testing.T, spec container.Spec) *client.Container {
	t.Helper()
	if spec.RootFS == "" {
		spec.RootFS = containertest.Stack(t)
	}
	if spec.Handle == "" {
		spec.Handle = testutil.UniqueName(t, "sv-", container.MaxHandleLen, nil)
	}
	c, err := h.cl.Create(t.Context(), spec)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.m.Destroy(ctx, c.Handle()); err != nil && !errors.Is(err, container.ErrNotFound) && !errors.Is(err, container.ErrClosed) {
			t.Errorf("destroy %s: %v", c.Handle(), err)
		}
	})
	return c
}

// result is what a process printed and how it ended.
type result struct {
	stdout, stderr string
	code           int
	err            error
}

func runIn(t *testing.T, c *client.Container, spec container.ProcessSpec, stdin io.Reader) result {
	t.Helper()
	var out, errOut bytes.Buffer
	p, err := c.Run(t.Context(), spec, container.ProcessIO{Stdin: stdin, Stdout: &out, Stderr: &errOut})
	require.NoError(t, err)
	code, err := p.Wait(t.Context())
	return result{out.String(), errOut.String(), code, err}
}

func sh(script string) container.ProcessSpec {
	return container.ProcessSpec{Path: "/bin/sh", Args: []string{"-c", script}}
}

func tarOf(t *testing.T, files map[string]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return &buf
}

func TestRoundTrip(t *testing.T) {
	h := newHarness(t, []server.Option{server.WithMaxContainers(42)})
	ctx := t.Context()

	t.Run("ping", func(t *testing.T) {
		require.NoError(t, h.cl.Ping(ctx))
	})

	c := h.create(t, container.Spec{
		Properties: map[string]string{"app": "web", "owner": "test"},
		Limits:     container.Limits{MemoryBytes: 64 << 20, CPUShares: 256},
		GraceTime:  time.Hour,
		Env:        []string{"GREETING=hello"},
	})

	t.Run("capacity", func(t *testing.T) {
		capa, err := h.cl.Capacity(ctx)
		require.NoError(t, err)
		assert.NotZero(t, capa.MemoryBytes)
		assert.NotZero(t, capa.DiskBytes)
		assert.LessOrEqual(t, capa.DiskFreeBytes, capa.DiskBytes)
		assert.EqualValues(t, 42, capa.MaxContainers)
		assert.EqualValues(t, 1, capa.Containers)
	})

	t.Run("lookup and list", func(t *testing.T) {
		got, err := h.cl.Lookup(ctx, c.Handle())
		require.NoError(t, err)
		assert.Equal(t, c.Handle(), got.Handle())
		assert.NotEmpty(t, got.Path())
		assert.Equal(t, "web", got.Properties()["app"])
		all, err := h.cl.List(ctx, nil)
		require.NoError(t, err)
		require.Len(t, all, 1)
		assert.Equal(t, c.Handle(), all[0].Handle())
		some, err := h.cl.List(ctx, map[string]string{"app": "web", "owner": "test"})
		require.NoError(t, err)
		assert.Len(t, some, 1)
		none, err := h.cl.List(ctx, map[string]string{"app": "db"})
		require.NoError(t, err)
		assert.Empty(t, none)
	})

	t.Run("info and metrics", func(t *testing.T) {
		info, err := c.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, c.Handle(), info.Handle)
		assert.Equal(t, "active", info.State)
		assert.Equal(t, "web", info.Properties["app"])
		assert.NotZero(t, info.AgentPID)
		assert.EqualValues(t, 64<<20, info.Memory.Limit)
		m, err := c.Metrics(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 64<<20, m.Memory.Limit)
		assert.Positive(t, m.Age)

		bi, err := h.cl.BulkInfo(ctx, []string{c.Handle(), "nope"})
		require.NoError(t, err)
		require.Contains(t, bi, c.Handle())
		require.NoError(t, bi[c.Handle()].Err)
		assert.Equal(t, c.Handle(), bi[c.Handle()].Info.Handle)
		assert.ErrorIs(t, bi["nope"].Err, container.ErrNotFound)
		all, err := h.cl.BulkInfo(ctx, nil)
		require.NoError(t, err)
		assert.Len(t, all, 1)

		bm, err := h.cl.BulkMetrics(ctx, []string{c.Handle(), "nope"})
		require.NoError(t, err)
		require.NoError(t, bm[c.Handle()].Err)
		assert.EqualValues(t, 64<<20, bm[c.Handle()].Metrics.Memory.Limit)
		assert.ErrorIs(t, bm["nope"].Err, container.ErrNotFound)
	})

	t.Run("properties and grace time", func(t *testing.T) {
		assert.Equal(t, "test", c.Properties()["owner"])
		g, err := c.GraceTime(ctx)
		require.NoError(t, err)
		assert.Equal(t, time.Hour, g)

		require.NoError(t, c.SetProperty(ctx, "tier", "gold"))
		require.NoError(t, c.RemoveProperty(ctx, "owner"))
		again, err := h.cl.Lookup(ctx, c.Handle())
		require.NoError(t, err)
		assert.Equal(t, "gold", again.Properties()["tier"], "as the server has it")
		assert.NotContains(t, again.Properties(), "owner")
		var se *container.SpecError
		assert.ErrorAs(t, c.SetProperty(ctx, wire.PropertyGraceTime, "1s"), &se, "reserved")

		require.NoError(t, c.SetGraceTime(ctx, 2*time.Hour))
		g, err = c.GraceTime(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2*time.Hour, g)
	})

	t.Run("limits", func(t *testing.T) {
		l, err := c.Limits(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 64<<20, l.MemoryBytes)
		l, err = c.LimitMemory(ctx, 128<<20)
		require.NoError(t, err)
		assert.EqualValues(t, 128<<20, l.MemoryBytes)
		assert.EqualValues(t, 256, l.CPUShares, "limit_memory keeps the other limits")
		l, err = c.LimitCPU(ctx, 512)
		require.NoError(t, err)
		assert.EqualValues(t, 512, l.CPUShares)
		assert.EqualValues(t, 128<<20, l.MemoryBytes)
		require.NoError(t, c.SetLimits(ctx, container.Limits{MemoryBytes: 96 << 20, PidsMax: 100}))
		l, err = c.Limits(ctx)
		require.NoError(t, err)
		assert.Equal(t, container.Limits{MemoryBytes: 96 << 20, PidsMax: 100}, l)
		m, err := c.Metrics(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 96<<20, m.Memory.Limit)

		backend, _, err := h.cl.QuotaBackend(ctx)
		require.NoError(t, err)
		local, _ := h.m.QuotaBackend()
		assert.Equal(t, local, backend)
		err = c.SetDiskLimit(ctx, 64<<20, 10000)
		if backend == container.QuotaKernel {
			assert.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, container.ErrInvalidSpec, "the %s backend sets disk limits at create only", backend)
		}
		rep, err := h.cl.QuotaReport(ctx)
		require.NoError(t, err)
		require.Len(t, rep, 1)
		assert.Equal(t, c.Handle(), rep[0].Handle)
		assert.NoError(t, rep[0].Err)
	})

	t.Run("network without networking", func(t *testing.T) {
		_, err := c.NetIn(ctx, 0, 8080)
		assert.ErrorIs(t, err, container.ErrNoNetwork)
		assert.ErrorIs(t, c.NetOut(ctx, container.NetOutRule{Network: "10.0.0.0/8"}), container.ErrNoNetwork)
		assert.ErrorIs(t, c.LimitBandwidth(ctx, container.Bandwidth{Rate: 1 << 20, Burst: 1 << 16}), container.ErrNoNetwork)
	})

	t.Run("stream in and out", func(t *testing.T) {
		require.NoError(t, c.StreamIn(ctx, "/tmp/in", "vcap", tarOf(t, map[string]string{"a.txt": "alpha\n", "b/c.txt": "gamma\n"})))
		r := runIn(t, c, sh("cat /tmp/in/a.txt /tmp/in/b/c.txt; stat -c %U /tmp/in/a.txt"), nil)
		require.NoError(t, r.err)
		assert.Equal(t, "alpha\ngamma\nvcap\n", r.stdout)

		rc, err := c.StreamOut(ctx, "/tmp/in/b")
		require.NoError(t, err)
		defer rc.Close()
		tr := tar.NewReader(rc)
		got := map[string]string{}
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			got[strings.TrimSuffix(hdr.Name, "/")] = string(b)
		}
		assert.Equal(t, map[string]string{"b": "", "b/c.txt": "gamma\n"}, got)
	})

	t.Run("run", func(t *testing.T) {
		r := runIn(t, c, sh("echo $GREETING; echo oops >&2; exit 3"), nil)
		require.NoError(t, r.err)
		assert.Equal(t, 3, r.code)
		assert.Equal(t, "hello\n", r.stdout)
		assert.Equal(t, "oops\n", r.stderr)
	})

	t.Run("stdin", func(t *testing.T) {
		in := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: many frames
		r := runIn(t, c, container.ProcessSpec{Path: "/bin/cat"}, bytes.NewReader(in))
		require.NoError(t, r.err)
		assert.Equal(t, 0, r.code)
		assert.Equal(t, len(in), len(r.stdout))
		assert.True(t, bytes.Equal(in, []byte(r.stdout)), "stdin came back changed")
	})

	t.Run("tty", func(t *testing.T) {
		stdinR, stdinW := io.Pipe()
		var out syncBuffer
		spec := sh("stty size; read line; stty size; tty >/dev/null && echo tty")
		spec.TTY = &container.TTYSpec{Rows: 24, Columns: 80}
		p, err := c.Run(ctx, spec, container.ProcessIO{Stdin: stdinR, Stdout: &out})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return strings.Contains(out.String(), "24 80") }, 10*time.Second, 10*time.Millisecond)
		require.NoError(t, p.SetTTY(ctx, container.TTYSpec{Rows: 40, Columns: 100}))
		_, err = stdinW.Write([]byte("go\n"))
		require.NoError(t, err)
		code, err := p.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, 0, code)
		assert.Contains(t, out.String(), "40 100")
		assert.Contains(t, out.String(), "tty")
		stdinW.Close()
	})

	t.Run("signal", func(t *testing.T) {
		p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/sleep", Args: []string{"100"}}, container.ProcessIO{})
		require.NoError(t, err)
		require.NoError(t, p.Signal(ctx, syscall.SIGTERM))
		code, err := p.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, 128+int(syscall.SIGTERM), code)
		st, err := p.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, int(syscall.SIGTERM), st.Signal)
		assert.ErrorIs(t, p.Signal(ctx, syscall.SIGTERM), container.ErrNotFound, "signal after exit")
	})

	t.Run("spawn then link", func(t *testing.T) {
		p, err := c.Run(ctx, container.ProcessSpec{ID: "job-1", Path: "/bin/sh", Args: []string{"-c", "echo hello world; echo bad >&2; exit 7"}}, container.ProcessIO{})
		require.NoError(t, err)
		assert.Equal(t, "job-1", p.ID())
		require.NoError(t, p.Close())
		var out, errOut bytes.Buffer
		p2, err := c.Attach(ctx, "job-1", container.ProcessIO{Stdout: &out, Stderr: &errOut, StdoutOffset: 6})
		require.NoError(t, err)
		code, err := p2.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, 7, code)
		assert.Equal(t, "world\n", out.String())
		assert.Equal(t, "bad\n", errOut.String())
		so, se := p2.Offsets()
		assert.EqualValues(t, 12, so)
		assert.EqualValues(t, 4, se)
	})

	t.Run("stop and destroy", func(t *testing.T) {
		p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/sleep", Args: []string{"100"}}, container.ProcessIO{})
		require.NoError(t, err)
		require.NoError(t, c.Stop(ctx, false))
		code, err := p.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, 128+int(syscall.SIGTERM), code)
		info, err := c.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, "stopped", info.State)
		_, err = c.Run(ctx, container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
		assert.ErrorIs(t, err, container.ErrStopped)

		require.NoError(t, c.Destroy(ctx))
		_, err = h.cl.Lookup(ctx, c.Handle())
		assert.ErrorIs(t, err, container.ErrNotFound)
		assert.ErrorIs(t, c.Destroy(ctx), container.ErrNotFound)
		assert.ErrorIs(t, h.cl.Destroy(ctx, c.Handle()), container.ErrNotFound)
	})
}

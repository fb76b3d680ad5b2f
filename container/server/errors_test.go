package server_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/container/server"
	"github.com/paaskit/paaskit/container/server/servertest"
	"github.com/paaskit/paaskit/internal/archive"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The server's errors come back as the container package's sentinels and
// typed errors, as an in-process Manager returns them.
func TestErrorMapping(t *testing.T) {
	h := newHarness(t, []server.Option{server.WithStacks(map[string]string{"base": containertest.Stack(t)})})
	ctx := t.Context()
	c := h.create(t, container.Spec{})
	stopped := h.create(t, container.Spec{})
	require.NoError(t, stopped.Stop(ctx, true))
	ghost := h.create(t, container.Spec{})
	require.NoError(t, h.m.Destroy(ctx, ghost.Handle()))

	escape := func() *bytes.Buffer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o644, Typeflag: tar.TypeReg})
		tw.Close()
		return &buf
	}

	tests := []struct {
		name  string
		call  func() error
		is    error
		field string // of the *container.SpecError, when is is ErrInvalidSpec
	}{
		{"unknown handle", func() error { _, err := h.cl.Lookup(ctx, "no-such-handle"); return err }, container.ErrNotFound, ""},
		{"dot-dot handle", func() error { _, err := h.cl.Lookup(ctx, ".."); return err }, container.ErrNotFound, ""},
		{"dot-dot process", func() error { _, err := c.Attach(ctx, "..", container.ProcessIO{}); return err }, container.ErrInvalidSpec, "ID"},
		{"bad process id", func() error { _, err := c.Attach(ctx, "-x", container.ProcessIO{}); return err }, container.ErrInvalidSpec, "ID"},
		{"destroyed container", func() error { _, err := ghost.Info(ctx); return err }, container.ErrNotFound, ""},
		{"handle taken", func() error {
			_, err := h.cl.Create(ctx, container.Spec{Handle: c.Handle(), RootFS: containertest.Stack(t)})
			return err
		}, container.ErrAlreadyExists, ""},
		{"invalid spec", func() error {
			_, err := h.cl.Create(ctx, container.Spec{RootFS: containertest.Stack(t), Limits: container.Limits{MemoryBytes: 1}})
			return err
		}, container.ErrInvalidSpec, "Limits.MemoryBytes"},
		{"unknown stack", func() error {
			_, err := h.cl.Create(ctx, container.Spec{RootFS: "nope"})
			return err
		}, container.ErrInvalidSpec, "RootFS"},
		{"no rootfs and no default stack", func() error {
			_, err := h.cl.Create(ctx, container.Spec{})
			return err
		}, container.ErrInvalidSpec, "RootFS"},
		{"reserved property", func() error {
			_, err := h.cl.Create(ctx, container.Spec{RootFS: "base", Properties: map[string]string{"paaskit.grace_time": "1s"}})
			return err
		}, container.ErrInvalidSpec, "Properties"},
		{"invalid process spec", func() error {
			_, err := c.Run(ctx, container.ProcessSpec{}, container.ProcessIO{})
			return err
		}, container.ErrInvalidSpec, "Path"},
		{"missing program", func() error {
			_, err := c.Run(ctx, container.ProcessSpec{Path: "/no/such/program"}, container.ProcessIO{})
			return err
		}, container.ErrInvalidSpec, ""},
		{"process id taken", func() error {
			p, err := c.Run(ctx, container.ProcessSpec{ID: "twice", Path: "/bin/true"}, container.ProcessIO{})
			if err != nil {
				return err
			}
			p.Wait(ctx)
			_, err = c.Run(ctx, container.ProcessSpec{ID: "twice", Path: "/bin/true"}, container.ProcessIO{})
			return err
		}, container.ErrAlreadyExists, ""},
		{"unknown process", func() error {
			_, err := c.Attach(ctx, "no-such-process", container.ProcessIO{})
			return err
		}, container.ErrNotFound, ""},
		{"stopped", func() error {
			_, err := stopped.Run(ctx, container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
			return err
		}, container.ErrStopped, ""},
		{"no network", func() error { _, err := c.NetIn(ctx, 0, 80); return err }, container.ErrNoNetwork, ""},
		{"invalid net out rule", func() error {
			return c.NetOut(ctx, container.NetOutRule{Network: "not-an-ip"})
		}, container.ErrInvalidSpec, ""},
		{"stream out of a missing path", func() error {
			_, err := c.StreamOut(ctx, "/no/such/path")
			return err
		}, fs.ErrNotExist, ""},
		{"stream in escaping", func() error { return c.StreamIn(ctx, "/tmp/x", "", escape()) }, archive.ErrUnsafePath, ""},
		{"stream in garbage", func() error {
			return c.StreamIn(ctx, "/tmp/x", "", strings.NewReader(strings.Repeat("garbage!", 200)))
		}, archive.ErrBadArchive, ""},
		{"stream in relative path", func() error {
			return c.StreamIn(ctx, "tmp", "", tarOf(t, map[string]string{"a": "b"}))
		}, container.ErrInvalidSpec, "dstPath"},
		{"invalid limits", func() error { _, err := c.LimitMemory(ctx, 1); return err }, container.ErrInvalidSpec, "Limits.MemoryBytes"},
		{"tty of a process without one", func() error {
			p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/sleep", Args: []string{"5"}}, container.ProcessIO{})
			if err != nil {
				return err
			}
			defer p.Signal(ctx, 9)
			return p.SetTTY(ctx, container.TTYSpec{Rows: 1, Columns: 1})
		}, container.ErrInvalidSpec, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			if tc.field != "" {
				var se *container.SpecError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.field, se.Field)
				assert.NotEmpty(t, se.Reason)
			}
			assert.NotEmpty(t, err.Error())
		})
	}

	t.Run("manager closed", func(t *testing.T) {
		m, err := container.New(t.TempDir())
		require.NoError(t, err)
		cl := servertest.Start(t, m).Client(t)
		require.NoError(t, m.Close())
		_, err = cl.List(ctx, nil)
		assert.ErrorIs(t, err, container.ErrClosed)
	})

	t.Run("server gone", func(t *testing.T) {
		cl, err := client.New(t.TempDir() + "/none.sock")
		require.NoError(t, err)
		err = cl.Ping(ctx)
		assert.ErrorIs(t, err, client.ErrUnavailable)
		assert.ErrorIs(t, err, fs.ErrNotExist)
	})

	t.Run("client closed", func(t *testing.T) {
		cl := h.srv.Client(t)
		require.NoError(t, cl.Close())
		assert.ErrorIs(t, cl.Ping(ctx), client.ErrClosed)
		require.NoError(t, cl.Close(), "Close is idempotent")
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		assert.ErrorIs(t, h.cl.Ping(cctx), context.Canceled)
		_, err := c.Run(cctx, container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// Concurrent destroys of one handle: exactly one succeeds, the others
// get ErrNotFound, and the server keeps serving.
func TestConcurrentDestroy(t *testing.T) {
	h := newHarness(t, nil)
	c := h.create(t, container.Spec{})
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = h.cl.Destroy(context.Background(), c.Handle()) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		assert.ErrorIs(t, err, container.ErrNotFound)
	}
	assert.Equal(t, 1, ok, "errors: %v", errs)
	require.NoError(t, h.cl.Ping(t.Context()))
	cs, err := h.cl.List(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, cs)
	assert.NoDirExists(t, c.Path())
}

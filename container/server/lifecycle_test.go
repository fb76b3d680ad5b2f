package server_test

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/container/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Shutdown lets the requests in flight finish, detaches streams without
// ending their processes, refuses new connections and removes the
// socket.
func TestShutdownDrains(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	slow := h.create(t, container.Spec{})
	other := h.create(t, container.Spec{})

	// A stop that takes the stop timeout (1 s): TERM is ignored.
	var ready syncBuffer
	_, err := slow.Run(ctx, container.ProcessSpec{Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; echo ready; sleep 100"}}, container.ProcessIO{Stdout: &ready})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ready.String() == "ready\n" }, 10*time.Second, 5*time.Millisecond)
	// A stream that will be detached.
	streamed, err := other.Run(ctx, container.ProcessSpec{Path: "/bin/sleep", Args: []string{"100"}}, container.ProcessIO{})
	require.NoError(t, err)

	stopErr := make(chan error, 1)
	start := time.Now()
	go func() { stopErr <- slow.Stop(context.Background(), false) }()
	time.Sleep(200 * time.Millisecond) // the stop is in flight

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, h.srv.Shutdown(sctx))
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "Shutdown returned before the stop in flight")
	require.NoError(t, <-stopErr, "the request in flight completed")

	_, err = streamed.Wait(ctx)
	assert.ErrorIs(t, err, client.ErrDetached)
	assert.ErrorIs(t, h.cl.Ping(ctx), client.ErrUnavailable)
	assert.NoFileExists(t, h.srv.Socket)

	c, err := h.m.Lookup(other.Handle())
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	assert.Contains(t, info.ProcessIDs, streamed.ID(), "the detached process runs on")

	require.NoError(t, h.srv.Shutdown(sctx), "Shutdown may be repeated")
	require.NoError(t, h.srv.Close())
}

func TestSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "wsock-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "w.sock")

	t.Run("permissions", func(t *testing.T) {
		for _, mode := range []fs.FileMode{0o660, 0o600} {
			l, err := server.Listen(path, mode, -1)
			require.NoError(t, err)
			fi, err := os.Lstat(path)
			require.NoError(t, err)
			assert.Equal(t, fs.ModeSocket, fi.Mode().Type())
			assert.Equal(t, mode, fi.Mode().Perm())
			l.Close()
			os.Remove(path)
		}
		_, err := server.Listen(path, 0o666, -1)
		assert.Error(t, err, "others may not use the socket")
		_, err = server.Listen(path, 0o770, -1)
		assert.Error(t, err)
		assert.NoFileExists(t, path)
	})

	t.Run("group", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give the socket to another group")
		}
		l, err := server.Listen(path, 0o660, 4242)
		require.NoError(t, err)
		defer os.Remove(path)
		defer l.Close()
		fi, err := os.Lstat(path)
		require.NoError(t, err)
		assert.EqualValues(t, 4242, fi.Sys().(*syscall.Stat_t).Gid)
	})

	t.Run("stale socket is replaced", func(t *testing.T) {
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		require.NoError(t, err)
		old.SetUnlinkOnClose(false)
		old.Close()
		require.FileExists(t, path)
		l, err := server.Listen(path, 0o660, -1)
		require.NoError(t, err)
		l.Close()
		os.Remove(path)
	})

	t.Run("live socket is kept", func(t *testing.T) {
		l, err := server.Listen(path, 0o660, -1)
		require.NoError(t, err)
		defer os.Remove(path)
		defer l.Close()
		var wg sync.WaitGroup
		wg.Go(func() {
			if conn, err := l.Accept(); err == nil {
				conn.Close()
			}
		})
		_, err = server.Listen(path, 0o660, -1)
		assert.ErrorIs(t, err, server.ErrSocketInUse)
		wg.Wait()
	})

	t.Run("not a socket", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, []byte("precious"), 0o600))
		defer os.Remove(path)
		_, err := server.Listen(path, 0o660, -1)
		assert.ErrorContains(t, err, "not a socket")
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "precious", string(b))
	})

	t.Run("too long", func(t *testing.T) {
		_, err := server.Listen(filepath.Join(dir, string(make([]byte, 0))+fmtLong()), 0o660, -1)
		assert.ErrorContains(t, err, "longer than")
	})

	t.Run("server options", func(t *testing.T) {
		m := containertest.NewManager(t)
		_, err := server.New(m, server.WithSocketMode(0o666))
		assert.Error(t, err)
		_, err = server.New(m, server.WithDefaultStack("nope"))
		assert.Error(t, err)
		_, err = server.New(m, server.WithStacks(map[string]string{"x": "relative"}))
		assert.Error(t, err)
		_, err = server.New(m, server.WithMaxRequestBytes(0))
		assert.Error(t, err)
		_, err = server.New(nil)
		assert.Error(t, err)

		// ListenAndServe makes the socket with the mode and removes it
		// when it stops.
		srv, err := server.New(m, server.WithSocketMode(0o600))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- srv.ListenAndServe(path) }()
		cl, err := client.New(path)
		require.NoError(t, err)
		defer cl.Close()
		require.Eventually(t, func() bool { return cl.Ping(t.Context()) == nil }, 10*time.Second, 10*time.Millisecond)
		fi, err := os.Lstat(path)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
		require.NoError(t, srv.Shutdown(t.Context()))
		assert.ErrorIs(t, <-done, server.ErrServerClosed)
		assert.NoFileExists(t, path)
		assert.ErrorIs(t, srv.ListenAndServe(path), server.ErrServerClosed, "no serving after Shutdown")
		assert.NoFileExists(t, path)
	})
}

func fmtLong() string {
	b := make([]byte, 120)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}

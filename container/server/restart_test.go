package server_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/container/server/servertest"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server restarted in the middle of a process's output: the process
// runs on, the new server (on a new Manager, as after a daemon restart)
// finds it, and the client gets all of its output exactly once.
func TestRestartMidStream(t *testing.T) {
	const lines = 60
	script := fmt.Sprintf("for i in $(seq 1 %d); do echo out $i; echo err $i >&2; sleep 0.01; done; exit 5", lines)
	var wantOut, wantErr strings.Builder
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&wantOut, "out %d\n", i)
		fmt.Fprintf(&wantErr, "err %d\n", i)
	}

	for _, auto := range []bool{false, true} {
		t.Run(fmt.Sprintf("automatic=%v", auto), func(t *testing.T) {
			testutil.RequireRoot(t)
			testutil.RequireOverlay(t)
			ctx := t.Context()
			depot := t.TempDir()
			m1, err := container.New(depot)
			require.NoError(t, err)
			current := m1
			t.Cleanup(func() {
				cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cs, _ := current.List(cctx, nil)
				for _, c := range cs {
					c.Destroy(cctx)
				}
				current.Close()
			})
			srv1 := servertest.Start(t, m1)
			var opts []client.Option
			if auto {
				opts = append(opts, client.WithReattach(30*time.Second))
			}
			cl := srv1.Client(t, opts...)
			c, err := cl.Create(ctx, container.Spec{RootFS: containertest.Stack(t), Handle: testutil.UniqueName(t, "rs-", container.MaxHandleLen, nil)})
			require.NoError(t, err)

			var out, errOut syncBuffer
			p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/sh", Args: []string{"-c", script}}, container.ProcessIO{Stdout: &out, Stderr: &errOut})
			require.NoError(t, err)
			require.Eventually(t, func() bool { return strings.Contains(out.String(), "out 5\n") }, 10*time.Second, 5*time.Millisecond)

			// The daemon stops: the stream is detached, the process runs on.
			srv1.Stop(t)
			require.NoError(t, m1.Close())
			if !auto {
				_, err = p.Wait(ctx)
				require.ErrorIs(t, err, client.ErrDetached)
			}
			time.Sleep(100 * time.Millisecond) // output piles up in the depot meanwhile

			// A new daemon on the same depot and socket.
			m2, err := container.New(depot)
			require.NoError(t, err)
			current = m2
			servertest.StartAt(t, srv1.Socket, m2)

			if !auto {
				p, err = p.Reattach(ctx)
				require.NoError(t, err)
			}
			code, err := p.Wait(ctx)
			require.NoError(t, err)
			assert.Equal(t, 5, code)
			assert.Equal(t, wantOut.String(), out.String())
			assert.Equal(t, wantErr.String(), errOut.String())
			so, se := p.Offsets()
			assert.EqualValues(t, wantOut.Len(), so)
			assert.EqualValues(t, wantErr.Len(), se)
		})
	}
}

// A server that did not start a process (a restarted one) signals it and
// resizes its terminal all the same.
func TestSignalAfterRestart(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	c := h.create(t, container.Spec{})
	spec := container.ProcessSpec{ID: "sleeper", Path: "/bin/sh", Args: []string{"-c", "trap 'stty size; exit 3' USR1; echo ready; while :; do sleep 0.05; done"}, TTY: &container.TTYSpec{Rows: 10, Columns: 20}}
	p, err := c.Run(ctx, spec, container.ProcessIO{})
	require.NoError(t, err)
	h.srv.Stop(t)
	_, err = p.Wait(ctx)
	require.ErrorIs(t, err, client.ErrDetached)

	srv2 := servertest.StartAt(t, h.srv.Socket, h.m)
	// A request on a process the new server has never streamed.
	hc := rawClient(srv2.Socket)
	defer hc.CloseIdleConnections()
	status, we := rawDo(t, hc, "PUT", "/containers/"+c.Handle()+"/processes/sleeper/tty", `{"rows":33,"columns":44}`, nil)
	require.Equal(t, 200, status, we.Message)
	cl := srv2.Client(t)
	c2, err := cl.Lookup(ctx, c.Handle())
	require.NoError(t, err)
	var out syncBuffer
	p2, err := c2.Attach(ctx, "sleeper", container.ProcessIO{Stdout: &out})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "ready") }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, p2.Signal(ctx, syscall.SIGUSR1))
	code, err := p2.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	assert.Contains(t, out.String(), "33 44")
}

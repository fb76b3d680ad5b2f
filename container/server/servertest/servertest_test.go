package servertest_test

import (
	"testing"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/container/server/servertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { containertest.Main(m) }

func TestStartStopRestart(t *testing.T) {
	m := containertest.NewManager(t)
	srv := servertest.Start(t, m)
	cl := srv.Client(t)
	require.NoError(t, cl.Ping(t.Context()))
	c, err := cl.Create(t.Context(), container.Spec{RootFS: containertest.Stack(t)})
	require.NoError(t, err)

	srv.Stop(t)
	assert.ErrorIs(t, cl.Ping(t.Context()), client.ErrUnavailable)
	assert.NoFileExists(t, srv.Socket)

	again := servertest.StartAt(t, srv.Socket, m)
	assert.Same(t, m, again.Manager)
	require.NoError(t, cl.Ping(t.Context()), "the same client reaches the restarted server")
	got, err := cl.Lookup(t.Context(), c.Handle())
	require.NoError(t, err)
	require.NoError(t, got.Destroy(t.Context()))
}

package natsserver_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartRandomPort(t *testing.T) {
	ctx := ctxT(t)
	srv, err := natsserver.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	assert.NotZero(t, srv.Port())
	assert.Equal(t, "nats://127.0.0.1:"+strconv.Itoa(srv.Port()), srv.ClientURL())

	b, err := nats.Connect(ctx, srv.ClientURL())
	require.NoError(t, err)
	require.NoError(t, b.Close())

	require.NoError(t, srv.Shutdown(ctx))
	require.NoError(t, srv.Shutdown(ctx), "Shutdown is idempotent")
	require.NoError(t, srv.Close())
	_, err = srv.InProcessConn()
	assert.ErrorIs(t, err, natsserver.ErrServerClosed)
	_, err = net.DialTimeout("tcp", srv.ClientURL()[len("nats://"):], time.Second)
	assert.Error(t, err, "nothing listens after Shutdown")
}

func TestStartGivenPortAndPortInUse(t *testing.T) {
	ctx := ctxT(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port

	start := time.Now()
	_, err = natsserver.Start(ctx, natsserver.WithPort(port))
	require.ErrorIs(t, err, natsserver.ErrNotReady)
	assert.Contains(t, err.Error(), strconv.Itoa(port))
	assert.Less(t, time.Since(start), 5*time.Second, "a port in use fails fast")

	require.NoError(t, l.Close())
	srv, err := natsserver.Start(ctx, natsserver.WithPort(port), natsserver.WithName("paaskit-test"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	assert.Equal(t, port, srv.Port())
	assert.Equal(t, "paaskit-test", srv.NATSServer().Name())
}

func TestStartHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	srv, err := natsserver.Start(ctx)
	// Either it was ready at once or the cancelled context stopped it.
	if err == nil {
		require.NoError(t, srv.Close())
	} else {
		assert.ErrorIs(t, err, natsserver.ErrNotReady)
		assert.ErrorIs(t, err, context.Canceled)
	}
}

func TestInvalidConfig(t *testing.T) {
	ctx := ctxT(t)
	for name, opts := range map[string][]natsserver.Option{
		"port out of range":       {natsserver.WithPort(70000)},
		"port without listener":   {natsserver.WithoutListener(), natsserver.WithPort(4222)},
		"jetstream without limit": {natsserver.WithJetStream(natsserver.JetStream{MaxMemory: 1 << 20})},
		"negative payload":        {natsserver.WithMaxPayload(-1)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := natsserver.Start(ctx, opts...)
			assert.ErrorIs(t, err, natsserver.ErrInvalidConfig)
		})
	}
}

func TestWithoutListener(t *testing.T) {
	ctx := ctxT(t)
	srv, err := natsserver.Start(ctx, natsserver.WithoutListener())
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	assert.Empty(t, srv.ClientURL())
	assert.Zero(t, srv.Port())
	b, err := nats.Connect(ctx, "", nats.WithInProcessServer(srv))
	require.NoError(t, err)
	assert.True(t, b.Connected())
	require.NoError(t, b.Close())
}

func TestJetStream(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	srv, err := natsserver.Start(ctx, natsserver.WithJetStream(natsserver.JetStream{MaxMemory: 8 << 20, MaxStore: 16 << 20, StoreDir: dir}))
	require.NoError(t, err)
	assert.True(t, srv.NATSServer().JetStreamEnabled())
	cfg := srv.NATSServer().JetStreamConfig()
	require.NotNil(t, cfg)
	assert.Equal(t, int64(8<<20), cfg.MaxMemory)
	assert.Equal(t, int64(16<<20), cfg.MaxStore)
	require.NoError(t, srv.Shutdown(ctx))
	_, err = os.Stat(dir)
	assert.NoError(t, err, "a given store directory is kept")

	// A temporary store is removed by Shutdown.
	srv, err = natsserver.Start(ctx, natsserver.WithJetStream(natsserver.JetStream{MaxMemory: 8 << 20, MaxStore: 16 << 20}))
	require.NoError(t, err)
	tmp := srv.NATSServer().JetStreamConfig().StoreDir
	require.NotEmpty(t, tmp)
	require.NoError(t, srv.Shutdown(ctx))
	_, err = os.Stat(tmp)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestLogger(t *testing.T) {
	ctx := ctxT(t)
	var sb strings.Builder
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &sb}, nil))
	srv, err := natsserver.Start(ctx, natsserver.WithLogger(logger))
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown(ctx))
	assert.Contains(t, sb.String(), "Server is ready")
}

type lockedWriter struct {
	mu chan struct{}
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	if l.mu == nil {
		l.mu = make(chan struct{}, 1)
	}
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.Write(p)
}

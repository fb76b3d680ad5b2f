package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
	"github.com/paaskit/paaskit/nats/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRecordShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	bus, srv := natstest.NewBus(t)
	assert.NotEmpty(t, srv.ClientURL())
	beats := natstest.Record(t, bus, nats.DEAHeartbeat)
	require.NoError(t, nats.Publish(ctx, bus, nats.DEAHeartbeat, nats.HeartbeatMessage{DEA: "dea-0"}))
	require.NoError(t, nats.Publish(ctx, bus, nats.DEAHeartbeat, nats.HeartbeatMessage{DEA: "dea-1"}))
	got, err := beats.Wait(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, "dea-0", got[0].Data.DEA)
	assert.Equal(t, "dea-1", got[1].Data.DEA)
	assert.Equal(t, 2, beats.Len())
	assert.Len(t, beats.Messages(), 2)
	assert.Equal(t, "dea.heartbeat", beats.Subscription().Subject())

	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	got, err = beats.Wait(short, 3)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, got, 2, "what there is")
}

func TestConnectInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	srv := natstest.StartServer(t, natsserver.WithoutListener())
	a := natstest.Connect(t, srv)
	b := natstest.Connect(t, srv)
	rec := natstest.Record(t, b, nats.DEALocate)
	require.NoError(t, nats.Publish(ctx, a, nats.DEALocate, nats.LocateMessage{}))
	_, err := rec.Wait(ctx, 1)
	require.NoError(t, err)
}

func TestCleanupOrder(t *testing.T) {
	// The bus closes before the server shuts down, so the test ends
	// without reconnect attempts or leaked goroutines (TestMain checks).
	t.Run("inner", func(t *testing.T) {
		bus, _ := natstest.NewBus(t)
		assert.True(t, bus.Connected())
	})
}

func TestWaitFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	n := 0
	assert.True(t, natstest.WaitFor(ctx, func() bool { n++; return n > 3 }))
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	assert.False(t, natstest.WaitFor(short, func() bool { return false }))
}

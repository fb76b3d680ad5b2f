package nats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
	"github.com/paaskit/paaskit/nats/natstest"
)

// eventLog records connection events.
type eventLog chan nats.ConnEvent

func (l eventLog) option() nats.Option {
	return nats.WithConnEventHandler(func(ev nats.ConnEvent) {
		select {
		case l <- ev:
		default:
		}
	})
}

func (l eventLog) wait(t *testing.T, ctx context.Context, kind nats.ConnEventKind) {
	t.Helper()
	for {
		select {
		case ev := <-l:
			if ev.Kind == kind {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %s event", kind)
		}
	}
}

func exited(i int) nats.ExitedMessage {
	return nats.ExitedMessage{Droplet: "app", Instance: fmt.Sprintf("i-%d", i), Index: i, Reason: nats.ExitCrashed, ExitStatus: 137}
}

// A server restart while publishing: the bus reconnects, subscribes
// again, and the messages published while the server was down are
// delivered, in order, exactly once.
func TestServerRestartDeliversBufferedMessages(t *testing.T) {
	ctx := ctxT(t)
	srv := natstest.StartServer(t)
	port := srv.Port()
	events := make(eventLog, 64)
	b := natstest.Connect(t, srv, events.option())
	rec := natstest.Record(t, b, nats.DropletExited)

	const n = 50
	for i := range n {
		require.NoError(t, nats.Publish(ctx, b, nats.DropletExited, exited(i)))
	}
	_, err := rec.Wait(ctx, n)
	require.NoError(t, err)

	require.NoError(t, srv.Shutdown(ctx))
	events.wait(t, ctx, nats.ConnDisconnected)
	for i := n; i < 2*n; i++ {
		require.NoError(t, nats.Publish(ctx, b, nats.DropletExited, exited(i)), "buffered while down")
	}
	assert.False(t, b.Connected())

	natstest.StartServer(t, natsserver.WithPort(port))
	events.wait(t, ctx, nats.ConnReconnected)
	got, err := rec.Wait(ctx, 2*n)
	require.NoError(t, err)
	require.Len(t, got, 2*n)
	for i, m := range got {
		assert.Equal(t, i, m.Data.Index, "in order, once")
	}
	assert.Equal(t, uint64(1), b.Stats().Reconnects)
}

// Across connections: the subscriber reconnects first (it retries
// faster), and the publisher's buffered messages reach it.
func TestServerRestartAcrossConnections(t *testing.T) {
	ctx := ctxT(t)
	srv := natstest.StartServer(t)
	port := srv.Port()
	subEvents := make(eventLog, 64)
	sub := natstest.Connect(t, srv, subEvents.option())
	rec := natstest.Record(t, sub, nats.DropletExited)
	pubEvents := make(eventLog, 64)
	pub := natstest.Connect(t, srv, pubEvents.option(), nats.WithReconnectWait(2*time.Second, 0))

	require.NoError(t, srv.Shutdown(ctx))
	pubEvents.wait(t, ctx, nats.ConnDisconnected)
	const n = 100
	for i := range n {
		require.NoError(t, nats.Publish(ctx, pub, nats.DropletExited, exited(i)))
	}
	natstest.StartServer(t, natsserver.WithPort(port))
	subEvents.wait(t, ctx, nats.ConnReconnected)
	pubEvents.wait(t, ctx, nats.ConnReconnected)
	got, err := rec.Wait(ctx, n)
	require.NoError(t, err)
	assert.Len(t, got, n)
}

// Past the reconnect buffer, a publish fails: the loss is reported to the
// publisher, and everything accepted is still delivered.
func TestReconnectBufferFullIsReported(t *testing.T) {
	ctx := ctxT(t)
	srv := natstest.StartServer(t)
	port := srv.Port()
	events := make(eventLog, 64)
	b := natstest.Connect(t, srv, events.option(), nats.WithReconnectBufferSize(4096))
	rec := natstest.Record(t, b, nats.DropletExited)

	require.NoError(t, srv.Shutdown(ctx))
	events.wait(t, ctx, nats.ConnDisconnected)
	accepted, refused := 0, 0
	for i := range 200 {
		err := nats.Publish(ctx, b, nats.DropletExited, exited(i))
		if err != nil {
			require.ErrorIs(t, err, nats.ErrBufferFull)
			refused++
			continue
		}
		require.Zero(t, refused, "once full, the buffer stays full while down")
		accepted++
	}
	require.NotZero(t, accepted)
	require.NotZero(t, refused)

	natstest.StartServer(t, natsserver.WithPort(port))
	got, err := rec.Wait(ctx, accepted)
	require.NoError(t, err)
	assert.Len(t, got, accepted)
	require.NoError(t, b.Flush(ctx))
	assert.Equal(t, accepted, rec.Len(), "no more than accepted")
}

func TestNoBufferingFailsAtOnce(t *testing.T) {
	ctx := ctxT(t)
	srv := natstest.StartServer(t)
	events := make(eventLog, 64)
	b := natstest.Connect(t, srv, events.option(), nats.WithReconnectBufferSize(-1))
	require.NoError(t, srv.Shutdown(ctx))
	events.wait(t, ctx, nats.ConnDisconnected)
	err := nats.Publish(ctx, b, nats.DropletExited, exited(0))
	assert.ErrorIs(t, err, nats.ErrBufferFull)
}

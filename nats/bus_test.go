package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
	"github.com/paaskit/paaskit/nats/natstest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func heartbeat(dea string, n int) nats.HeartbeatMessage {
	m := nats.HeartbeatMessage{DEA: dea}
	for i := range n {
		m.Droplets = append(m.Droplets, nats.HeartbeatInstance{
			CCPartition: "default", Droplet: "app", Version: "v1",
			Instance: fmt.Sprintf("inst-%d", i), Index: i, State: nats.StateRunning, StateTimestamp: 1712345678.5,
		})
	}
	return m
}

func TestPublishSubscribe(t *testing.T) {
	ctx := ctxT(t)
	b, _ := natstest.NewBus(t)
	rec := natstest.Record(t, b, nats.DEAHeartbeat)

	want := heartbeat("dea-1", 3)
	require.NoError(t, nats.Publish(ctx, b, nats.DEAHeartbeat, want))
	got, err := rec.Wait(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "dea.heartbeat", got[0].Subject)
	assert.Equal(t, want, got[0].Data)
	assert.Equal(t, uint64(1), b.Stats().Published)
	assert.Equal(t, uint64(1), b.Stats().Delivered)
}

func TestPublishRefusesBadInput(t *testing.T) {
	ctx := ctxT(t)
	b, _ := natstest.NewBus(t)
	rec := natstest.Record(t, b, nats.DEAStop)

	err := nats.Publish(ctx, b, nats.DEAStop, nats.StopMessage{})
	assert.ErrorIs(t, err, nats.ErrInvalidMessage)
	err = nats.Publish(ctx, b, nats.DEAStart("*"), validStart())
	assert.ErrorIs(t, err, nats.ErrInvalidSubject, "a wildcard is not a destination")
	err = nats.Publish(ctx, b, nats.DEAStart("a.b"), validStart())
	assert.ErrorIs(t, err, nats.ErrInvalidSubject)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	err = nats.Publish(canceled, b, nats.DEAStop, nats.StopMessage{InstanceFilter: nats.InstanceFilter{Droplet: "a"}})
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, b.Flush(ctx))
	assert.Zero(t, rec.Len(), "nothing was sent")
	assert.Zero(t, b.Stats().Published)
}

func TestWildcardStart(t *testing.T) {
	ctx := ctxT(t)
	b, _ := natstest.NewBus(t)
	all := natstest.Record(t, b, nats.DEAStart("*"))
	one := natstest.Record(t, b, nats.DEAStart("dea-2"))

	require.NoError(t, nats.Publish(ctx, b, nats.DEAStart("dea-1"), validStart()))
	require.NoError(t, nats.Publish(ctx, b, nats.DEAStart("dea-2"), validStart()))
	got, err := all.Wait(ctx, 2)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"dea.dea-1.start", "dea.dea-2.start"}, []string{got[0].Subject, got[1].Subject})
	got, err = one.Wait(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "dea.dea-2.start", got[0].Subject)
	require.NoError(t, b.Flush(ctx))
	assert.Equal(t, 1, one.Len())
}

func TestMalformedMessagesAreReportedNotDelivered(t *testing.T) {
	ctx := ctxT(t)
	var errs natstest.ErrorLog
	srv := natstest.StartServer(t)
	b := natstest.Connect(t, srv, errs.Option())
	rec := natstest.Record(t, b, nats.DEAStop)

	nc := b.Conn()
	for _, raw := range []string{`{"droplet":`, `[]`, `{"droplet":"a","indices":[-1]}`, "\xff\xfe", `{"droplet":"a","states":["NAPPING"]}`} {
		require.NoError(t, nc.Publish("dea.stop", []byte(raw)))
	}
	require.NoError(t, nats.Publish(ctx, b, nats.DEAStop, nats.StopMessage{InstanceFilter: nats.InstanceFilter{Droplet: "good"}}))
	got, err := rec.Wait(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "good", got[0].Data.Droplet, "the subscriber survives bad input")

	require.True(t, natstest.WaitFor(ctx, func() bool { return len(errs.Errors()) == 5 }))
	for i, e := range errs.Errors() {
		var de *nats.DeliveryError
		require.ErrorAs(t, e, &de)
		assert.Equal(t, "dea.stop", de.Subject)
		if i == 2 {
			assert.ErrorIs(t, e, nats.ErrInvalidMessage)
		} else {
			assert.ErrorIs(t, e, nats.ErrMalformed)
		}
	}
	assert.Equal(t, uint64(5), b.Stats().Invalid)
	assert.Equal(t, 1, rec.Len())
}

func TestHandlerErrorIsReported(t *testing.T) {
	ctx := ctxT(t)
	var errs natstest.ErrorLog
	srv := natstest.StartServer(t)
	b := natstest.Connect(t, srv, errs.Option())
	boom := errors.New("boom")
	_, err := nats.Subscribe(ctx, b, nats.StagingStop, func(context.Context, *nats.Msg[nats.StagingStopMessage]) error { return boom })
	require.NoError(t, err)
	require.NoError(t, nats.Publish(ctx, b, nats.StagingStop, nats.StagingStopMessage{AppID: "a"}))
	require.True(t, natstest.WaitFor(ctx, func() bool { return len(errs.Errors()) == 1 }))
	assert.ErrorIs(t, errs.Errors()[0], boom)
	assert.Equal(t, uint64(1), b.Stats().HandlerErrors)
}

func greeter(t *testing.T, b *nats.Bus, id string) {
	t.Helper()
	_, err := nats.Handle(ctxT(t), b, nats.RouterGreet, func(ctx context.Context, r *nats.RequestMsg[nats.LocateMessage, nats.RouterStartMessage]) error {
		return r.Respond(ctx, nats.RouterStartMessage{ID: id, Hosts: []string{"10.0.0.1"}, MinimumRegisterIntervalInSeconds: 20, PruneThresholdInSeconds: 120})
	})
	require.NoError(t, err)
}

func TestRequestReply(t *testing.T) {
	ctx := ctxT(t)
	b, srv := natstest.NewBus(t)
	router := natstest.Connect(t, srv)

	_, err := nats.Request(ctx, b, nats.RouterGreet, nats.LocateMessage{})
	assert.ErrorIs(t, err, nats.ErrNoResponders)

	greeter(t, router, "0-router")
	rep, err := nats.Request(ctx, b, nats.RouterGreet, nats.LocateMessage{})
	require.NoError(t, err)
	assert.Equal(t, "0-router", rep.ID)
	assert.Equal(t, 20, rep.MinimumRegisterIntervalInSeconds)

	// A responder that never answers: the caller's deadline ends it.
	_, err = nats.Handle(ctx, router, nats.StagingStart("silent"), func(context.Context, *nats.RequestMsg[nats.StagingRequest, nats.StagingReply]) error { return nil })
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = nats.Request(short, b, nats.StagingStart("silent"), validStaging())
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// A bad request is refused before it is sent.
	_, err = nats.Request(ctx, b, nats.StagingStart("silent"), nats.StagingRequest{})
	assert.ErrorIs(t, err, nats.ErrInvalidMessage)
}

func TestRequestWithMalformedReply(t *testing.T) {
	ctx := ctxT(t)
	b, srv := natstest.NewBus(t)
	other := natstest.Connect(t, srv)
	sub, err := other.Conn().Subscribe("router.greet", func(m *natsgoMsg) { _ = m.Respond([]byte(`{"id": 7}`)) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, other.Flush(ctx))
	_, err = nats.Request(ctx, b, nats.RouterGreet, nats.LocateMessage{})
	var de *nats.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "router.greet", de.Subject)
}

func validStaging() nats.StagingRequest {
	return nats.StagingRequest{
		AppID: "app", TaskID: "task-1",
		DownloadURI: "https://cc.example.com/app", UploadURI: "https://cc.example.com/droplet",
	}
}

// dea is a fake DEA answering dea.find.droplet for its instances.
func dea(t *testing.T, srv *natsserver.Server, id string, instances int) {
	t.Helper()
	b := natstest.Connect(t, srv)
	_, err := nats.Handle(ctxT(t), b, nats.DEAFindDroplet, func(ctx context.Context, r *nats.RequestMsg[nats.FindDropletRequest, nats.FindDropletResponse]) error {
		for i := range instances {
			inst := fmt.Sprintf("%s-%d", id, i)
			if !r.Data.Match("app", "v1", inst, i, nats.StateRunning) {
				continue
			}
			if err := r.Respond(ctx, nats.FindDropletResponse{
				DEA: id, Droplet: "app", Version: "v1", Instance: inst, Index: i,
				State: nats.StateRunning, StateTimestamp: 1712345678,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
}

func TestRequestManyFindDroplet(t *testing.T) {
	ctx := ctxT(t)
	b, srv := natstest.NewBus(t)

	_, err := nats.RequestMany(ctx, b, nats.DEAFindDroplet, nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "app"}}, nats.Gather{Wait: time.Second})
	assert.ErrorIs(t, err, nats.ErrNoResponders)

	for i := range 5 {
		dea(t, srv, fmt.Sprintf("dea-%d", i), 2)
	}

	// Every instance of the app: 5 DEAs × 2 instances, collected for the
	// whole window as Cloud Controller did.
	all, err := nats.RequestMany(ctx, b, nats.DEAFindDroplet, nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "app"}}, nats.Gather{Wait: 300 * time.Millisecond})
	require.NoError(t, err)
	assert.Len(t, all, 10)

	// The expected count ends the request early.
	start := time.Now()
	three, err := nats.RequestMany(ctx, b, nats.DEAFindDroplet, nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "app"}}, nats.Gather{Max: 3, Wait: 10 * time.Second})
	require.NoError(t, err)
	assert.Len(t, three, 3)
	assert.Less(t, time.Since(start), 5*time.Second)

	// One index: one reply per DEA.
	idx, err := nats.RequestMany(ctx, b, nats.DEAFindDroplet, nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "app", Indices: []int{1}}}, nats.Gather{Max: 5, Wait: 5 * time.Second})
	require.NoError(t, err)
	require.Len(t, idx, 5)
	for _, r := range idx {
		assert.Equal(t, 1, r.Index)
	}

	// Nothing matches: the window ends the request, with no error.
	none, err := nats.RequestMany(ctx, b, nats.DEAFindDroplet, nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "other"}}, nats.Gather{Wait: 100 * time.Millisecond})
	require.NoError(t, err)
	assert.Empty(t, none)

	// The caller's ctx ending is an error, with the replies so far.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	some, err := nats.RequestMany(short, b, nats.DEAFindDroplet, nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "app"}}, nats.Gather{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, some, 10)
}

func TestStagingTwoReplies(t *testing.T) {
	ctx := ctxT(t)
	cc, srv := natstest.NewBus(t)
	deaBus := natstest.Connect(t, srv)

	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	_, err := nats.Handle(ctx, deaBus, nats.StagingStart("dea-1"), func(ctx context.Context, r *nats.RequestMsg[nats.StagingRequest, nats.StagingReply]) error {
		if err := r.Respond(ctx, nats.StagingReply{TaskID: r.Data.TaskID, TaskStreamingLogURL: "https://dea:34567/staging_tasks/" + r.Data.TaskID + "/log"}); err != nil {
			return err
		}
		// The completion comes later, after the handler returned.
		wg.Go(func() {
			time.Sleep(20 * time.Millisecond)
			_ = r.Respond(ctx, nats.StagingReply{TaskID: r.Data.TaskID, DropletSHA1: "5f0d1ce9c2b5a3f1b6f7d1d4c5e6a7b8c9d0e1f2", DetectedBuildpack: "Ruby"})
		})
		return nil
	})
	require.NoError(t, err)

	var got []nats.StagingReply
	for rep, err := range nats.Replies(ctx, cc, nats.StagingStart("dea-1"), validStaging()) {
		require.NoError(t, err)
		got = append(got, rep)
		if rep.Final() {
			break
		}
	}
	require.Len(t, got, 2)
	assert.NotEmpty(t, got[0].TaskStreamingLogURL)
	assert.False(t, got[0].Final())
	assert.Equal(t, "Ruby", got[1].DetectedBuildpack)

	both, err := nats.RequestMany(ctx, cc, nats.StagingStart("dea-1"), validStaging(), nats.Gather{Max: 2, Wait: 5 * time.Second})
	require.NoError(t, err)
	assert.Len(t, both, 2)

	// An invalid request ends the loop with its error.
	for _, err := range nats.Replies(ctx, cc, nats.StagingStart("dea-1"), nats.StagingRequest{}) {
		assert.ErrorIs(t, err, nats.ErrInvalidMessage)
	}
}

func TestQueueGroupDeliversOnce(t *testing.T) {
	ctx := ctxT(t)
	pub, srv := natstest.NewBus(t)
	const n = 300
	var members []*natstest.Recorder[nats.ExitedMessage]
	for range 3 {
		members = append(members, natstest.Record(t, natstest.Connect(t, srv), nats.DropletExited, nats.WithQueue("crash_event_registration")))
	}
	everyone := natstest.Record(t, natstest.Connect(t, srv), nats.DropletExited)

	for i := range n {
		require.NoError(t, nats.Publish(ctx, pub, nats.DropletExited, nats.ExitedMessage{
			Droplet: "app", Instance: fmt.Sprintf("i-%d", i), Index: i, Reason: nats.ExitCrashed, ExitStatus: 1,
		}))
	}
	_, err := everyone.Wait(ctx, n)
	require.NoError(t, err)
	require.True(t, natstest.WaitFor(ctx, func() bool {
		total := 0
		for _, m := range members {
			total += m.Len()
		}
		return total >= n
	}))
	require.NoError(t, pub.Flush(ctx))
	seen := map[string]int{}
	for _, m := range members {
		for _, msg := range m.Messages() {
			seen[msg.Data.Instance]++
		}
	}
	assert.Len(t, seen, n)
	for inst, count := range seen {
		assert.Equal(t, 1, count, "instance %s delivered %d times", inst, count)
	}
}

func TestWorkersRunConcurrently(t *testing.T) {
	ctx := ctxT(t)
	b, _ := natstest.NewBus(t)
	var running, peak atomic.Int32
	release := make(chan struct{})
	var handled atomic.Int32
	_, err := nats.Subscribe(ctx, b, nats.DEALocate, func(ctx context.Context, _ *nats.Msg[nats.LocateMessage]) error {
		now := running.Add(1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		<-release
		running.Add(-1)
		handled.Add(1)
		return nil
	}, nats.WithWorkers(4))
	require.NoError(t, err)
	for range 8 {
		require.NoError(t, nats.Publish(ctx, b, nats.DEALocate, nats.LocateMessage{}))
	}
	require.True(t, natstest.WaitFor(ctx, func() bool { return peak.Load() == 4 }))
	close(release)
	require.True(t, natstest.WaitFor(ctx, func() bool { return handled.Load() == 8 }))
	assert.Equal(t, int32(4), peak.Load())

	_, err = nats.Subscribe(ctx, b, nats.DEALocate, func(context.Context, *nats.Msg[nats.LocateMessage]) error { return nil }, nats.WithWorkers(0))
	assert.Error(t, err)
}

func TestSlowConsumerIsReported(t *testing.T) {
	ctx := ctxT(t)
	var errs natstest.ErrorLog
	srv := natstest.StartServer(t)
	b := natstest.Connect(t, srv, errs.Option())
	pub := natstest.Connect(t, srv)
	release := make(chan struct{})
	var handled atomic.Int32
	sub, err := nats.Subscribe(ctx, b, nats.DEALocate, func(context.Context, *nats.Msg[nats.LocateMessage]) error {
		<-release
		handled.Add(1)
		return nil
	}, nats.WithPendingLimits(10, 0))
	require.NoError(t, err)
	const n = 100
	for range n {
		require.NoError(t, nats.Publish(ctx, pub, nats.DEALocate, nats.LocateMessage{}))
	}
	require.NoError(t, pub.Flush(ctx))
	require.True(t, natstest.WaitFor(ctx, func() bool { return sub.Dropped() > 0 && len(errs.Errors()) > 0 }))
	close(release)
	// Nothing vanished silently: every message was handled or counted.
	require.True(t, natstest.WaitFor(ctx, func() bool { return int(handled.Load())+sub.Dropped() == n }), "handled %d dropped %d", handled.Load(), sub.Dropped())
	assert.ErrorIs(t, errs.Errors()[0], nats.ErrSlowConsumer)
	assert.NotZero(t, b.Stats().SlowConsumer)
}

func TestDrainFinishesWork(t *testing.T) {
	ctx := ctxT(t)
	srv := natstest.StartServer(t)
	b := natstest.Connect(t, srv)
	cc := natstest.Connect(t, srv)
	var handled atomic.Int32
	_, err := nats.Handle(ctx, b, nats.DEAFindDroplet, func(ctx context.Context, r *nats.RequestMsg[nats.FindDropletRequest, nats.FindDropletResponse]) error {
		time.Sleep(5 * time.Millisecond)
		handled.Add(1)
		return r.Respond(ctx, nats.FindDropletResponse{DEA: "d", Droplet: r.Data.Droplet, Instance: "i", State: nats.StateRunning})
	}, nats.WithWorkers(3))
	require.NoError(t, err)

	const n = 20
	var wg sync.WaitGroup
	var answered atomic.Int32
	for range n {
		wg.Go(func() {
			reps, err := nats.RequestMany(ctx, cc, nats.DEAFindDroplet, nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "app"}}, nats.Gather{Max: 1, Wait: 10 * time.Second})
			if err == nil && len(reps) == 1 {
				answered.Add(1)
			}
		})
	}
	// Drain once every request reached the responder's queue.
	require.True(t, natstest.WaitFor(ctx, func() bool { return b.Stats().Delivered == n }))
	require.NoError(t, b.Drain(ctx))
	wg.Wait()
	assert.Equal(t, int32(n), handled.Load())
	assert.Equal(t, int32(n), answered.Load(), "replies sent while draining arrive")

	assert.ErrorIs(t, nats.Publish(ctx, b, nats.DEALocate, nats.LocateMessage{}), nats.ErrClosed)
	_, err = nats.Subscribe(ctx, b, nats.DEALocate, func(context.Context, *nats.Msg[nats.LocateMessage]) error { return nil })
	assert.ErrorIs(t, err, nats.ErrClosed)
	assert.NoError(t, b.Drain(ctx))
	assert.NoError(t, b.Close())
}

func TestCloseCancelsHandlersAndRequests(t *testing.T) {
	ctx := ctxT(t)
	srv := natstest.StartServer(t)
	b := natstest.Connect(t, srv)
	dea(t, srv, "dea-0", 1)
	started := make(chan struct{})
	var sawCancel atomic.Bool
	_, err := nats.Subscribe(ctx, b, nats.DEALocate, func(ctx context.Context, _ *nats.Msg[nats.LocateMessage]) error {
		close(started)
		<-ctx.Done()
		sawCancel.Store(true)
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, nats.Publish(ctx, b, nats.DEALocate, nats.LocateMessage{}))
	<-started

	reqDone := make(chan error, 1)
	go func() {
		_, err := nats.RequestMany(ctx, b, nats.DEAFindDroplet, nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "nothing"}}, nats.Gather{})
		reqDone <- err
	}()
	time.Sleep(20 * time.Millisecond)

	require.NoError(t, b.Close())
	assert.True(t, sawCancel.Load(), "Close waits for the handler, whose ctx it cancelled")
	assert.ErrorIs(t, <-reqDone, nats.ErrClosed)
	assert.NoError(t, b.Close(), "Close is idempotent")
	_, err = nats.Request(ctx, b, nats.RouterGreet, nats.LocateMessage{})
	assert.ErrorIs(t, err, nats.ErrClosed)
}

func TestInProcessServer(t *testing.T) {
	ctx := ctxT(t)
	srv := natstest.StartServer(t, natsserver.WithoutListener())
	assert.Empty(t, srv.ClientURL())
	a := natstest.Connect(t, srv)
	b := natstest.Connect(t, srv)
	greeter(t, a, "in-process")
	rep, err := nats.Request(ctx, b, nats.RouterGreet, nats.LocateMessage{})
	require.NoError(t, err)
	assert.Equal(t, "in-process", rep.ID)
}

func TestConnectFailure(t *testing.T) {
	ctx := ctxT(t)
	srv := natstest.StartServer(t)
	url := srv.ClientURL()
	port := srv.Port()
	require.NoError(t, srv.Shutdown(ctx))

	_, err := nats.Connect(ctx, url, nats.WithConnectTimeout(200*time.Millisecond))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nats: connect")

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = nats.Connect(canceled, url)
	assert.ErrorIs(t, err, context.Canceled)

	// With retry, Connect succeeds and the bus connects once a server is there.
	events := make(chan nats.ConnEvent, 16)
	b, err := nats.Connect(ctx, url, nats.WithRetryOnFailedConnect(true),
		nats.WithReconnectWait(20*time.Millisecond, 0),
		nats.WithConnEventHandler(func(ev nats.ConnEvent) { events <- ev }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	assert.False(t, b.Connected())
	natstest.StartServer(t, natsserver.WithPort(port))
	require.True(t, natstest.WaitFor(ctx, b.Connected))
	assert.Equal(t, nats.ConnConnected, (<-events).Kind)
}

func TestSubscriptionUnsubscribeAndDrain(t *testing.T) {
	ctx := ctxT(t)
	b, _ := natstest.NewBus(t)
	var handled atomic.Int32
	slow := func(context.Context, *nats.Msg[nats.LocateMessage]) error {
		time.Sleep(2 * time.Millisecond)
		handled.Add(1)
		return nil
	}
	sub, err := nats.Subscribe(ctx, b, nats.DEALocate, slow, nats.WithWorkers(2))
	require.NoError(t, err)
	assert.Equal(t, "dea.locate", sub.Subject())
	assert.Empty(t, sub.Queue())
	for range 20 {
		require.NoError(t, nats.Publish(ctx, b, nats.DEALocate, nats.LocateMessage{}))
	}
	require.NoError(t, b.Flush(ctx))
	require.True(t, natstest.WaitFor(ctx, func() bool { return b.Stats().Delivered > 0 }))
	require.NoError(t, sub.Drain(ctx))
	assert.Equal(t, int32(20), handled.Load(), "Drain handles what was received")

	sub2, err := nats.Subscribe(ctx, b, nats.StagingLocate, func(context.Context, *nats.Msg[nats.LocateMessage]) error { return nil }, nats.WithQueue("stagers"))
	require.NoError(t, err)
	assert.Equal(t, "stagers", sub2.Queue())
	require.NoError(t, sub2.Unsubscribe(ctx))
	require.NoError(t, sub2.Unsubscribe(ctx), "twice is fine")
	assert.Zero(t, sub2.Dropped())

	_, err = nats.Subscribe(ctx, b, nats.StagingLocate, func(context.Context, *nats.Msg[nats.LocateMessage]) error { return nil }, nats.WithQueue("bad queue"))
	assert.ErrorIs(t, err, nats.ErrInvalidSubject)
	_, err = nats.Subscribe[nats.LocateMessage](ctx, b, nats.StagingLocate, nil)
	assert.Error(t, err)
	_, err = nats.Subscribe(ctx, b, nats.DEAStart("a.b"), func(context.Context, *nats.Msg[nats.StartMessage]) error { return nil })
	assert.ErrorIs(t, err, nats.ErrInvalidSubject)
}

func TestRespondWithoutReplySubject(t *testing.T) {
	ctx := ctxT(t)
	b, _ := natstest.NewBus(t)
	errc := make(chan error, 1)
	_, err := nats.Handle(ctx, b, nats.RouterGreet, func(ctx context.Context, r *nats.RequestMsg[nats.LocateMessage, nats.RouterStartMessage]) error {
		errc <- r.Respond(ctx, nats.RouterStartMessage{ID: "r"})
		return nil
	})
	require.NoError(t, err)
	// A plain publish on a request subject carries no reply subject.
	require.NoError(t, b.Conn().Publish("router.greet", nil))
	assert.ErrorIs(t, <-errc, nats.ErrInvalidSubject)
}

func TestLoggerAndEvents(t *testing.T) {
	ctx := ctxT(t)
	var buf syncBuffer
	srv := natstest.StartServer(t)
	b := natstest.Connect(t, srv, nats.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))), nats.WithName("dea-7"))
	require.NoError(t, b.Conn().Publish("dea.stop", []byte("{")))
	_, err := nats.Subscribe(ctx, b, nats.DEAStop, func(context.Context, *nats.Msg[nats.StopMessage]) error { return nil })
	require.NoError(t, err)
	require.NoError(t, b.Conn().Publish("dea.stop", []byte("{")))
	require.True(t, natstest.WaitFor(ctx, func() bool { return b.Stats().Invalid == 1 }))
	require.NoError(t, b.Close())
	assert.Contains(t, buf.String(), "nats delivery error")
	assert.Contains(t, buf.String(), "nats=dea-7")
	assert.Contains(t, buf.String(), "nats connection closed")
	for k, s := range map[nats.ConnEventKind]string{nats.ConnConnected: "connected", nats.ConnDisconnected: "disconnected", nats.ConnReconnected: "reconnected", nats.ConnClosed: "closed", nats.ConnLameDuck: "lame duck", 0: "ConnEventKind(0)"} {
		assert.Equal(t, s, k.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

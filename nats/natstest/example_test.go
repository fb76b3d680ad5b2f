package natstest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"
	"time"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
	"github.com/paaskit/paaskit/nats/natstest"
)

// The shape of a test of code that publishes heartbeats. (An example
// cannot have a *testing.T, so this one is compiled but not run; the same
// test runs as TestRecordShape.)
func ExampleRecord() {
	testHeartbeats := func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()

		bus, _ := natstest.NewBus(t) // a server and a bus, both gone at the end
		beats := natstest.Record(t, bus, nats.DEAHeartbeat)

		// The code under test publishes:
		if err := nats.Publish(ctx, bus, nats.DEAHeartbeat, nats.HeartbeatMessage{DEA: "dea-0"}); err != nil {
			t.Fatal(err)
		}

		got, err := beats.Wait(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Data.DEA != "dea-0" {
			t.Errorf("heartbeat from %q", got[0].Data.DEA)
		}
	}
	_ = testHeartbeats
}

// An ErrorLog sees what a bus cannot return to a caller: here, a
// malformed message sent by a misbehaving peer.
func ExampleErrorLog() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := natsserver.Start(ctx, natsserver.WithoutListener())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	var errs natstest.ErrorLog
	bus, err := nats.Connect(ctx, "", nats.WithInProcessServer(srv), errs.Option())
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	_, err = nats.Subscribe(ctx, bus, nats.DEAStop, func(context.Context, *nats.Msg[nats.StopMessage]) error { return nil })
	if err != nil {
		log.Fatal(err)
	}

	_ = bus.Conn().Publish("dea.stop", []byte(`{"droplet": 42}`)) // not through the typed API
	natstest.WaitFor(ctx, func() bool { return len(errs.Errors()) > 0 })

	e := errs.Errors()[0]
	fmt.Println(errors.Is(e, nats.ErrMalformed))
	var de *nats.DeliveryError
	if errors.As(e, &de) {
		fmt.Println(de.Subject)
	}
	// Output:
	// true
	// dea.stop
}

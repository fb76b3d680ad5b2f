package natsserver_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
)

func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	srv, err := natsserver.Start(ctx) // a free port on 127.0.0.1
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	bus, err := nats.Connect(ctx, srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	fmt.Println(bus.Connected(), srv.Port() > 0)
	// Output: true true
}

// A server without a network listener, for one process.
func ExampleWithoutListener() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	srv, err := natsserver.Start(ctx, natsserver.WithoutListener())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	bus, err := nats.Connect(ctx, "", nats.WithInProcessServer(srv))
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	fmt.Printf("connected=%v url=%q\n", bus.Connected(), srv.ClientURL())
	// Output: connected=true url=""
}

func ExampleWithJetStream() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	srv, err := natsserver.Start(ctx, natsserver.WithJetStream(natsserver.JetStream{
		MaxMemory: 64 << 20,  // 64 MiB
		MaxStore:  256 << 20, // 256 MiB, in a temporary directory
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	fmt.Println(srv.NATSServer().JetStreamEnabled())
	// Output: true
}

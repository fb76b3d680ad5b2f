package nats_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natstest"
)

// heartbeatPayload is the JSON of a heartbeat of n instances with ids of
// the real lengths (GUIDs, 32-hex instance ids), about 220 bytes each.
func heartbeatPayload(b *testing.B, n int) []byte {
	b.Helper()
	m := nats.HeartbeatMessage{DEA: "0-1a0434e1ff90428da1bab6d5c77faed4"}
	for i := range n {
		m.Droplets = append(m.Droplets, nats.HeartbeatInstance{
			CCPartition:    "default",
			Droplet:        fmt.Sprintf("6e1a4c3a-6c1e-4f5e-9d3f-%012d", i/4),
			Version:        fmt.Sprintf("c5c6e8a2-55a8-4d2b-a6a5-%012d", i/4),
			Instance:       fmt.Sprintf("f3b0e2c1d4a5968778695a4b%08x", i),
			Index:          i % 4,
			State:          nats.States()[i%len(nats.States())],
			StateTimestamp: 1712345678.123456 + float64(i),
		})
	}
	data, err := nats.Encode(m)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkHeartbeatDecode1000 is the target "decoding a dea.heartbeat
// with 1,000 instances ≤ 2 ms" (decode and validate, as a subscriber
// does).
func BenchmarkHeartbeatDecode1000(b *testing.B) {
	data := heartbeatPayload(b, 1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := nats.Decode[nats.HeartbeatMessage](data)
		if err != nil || len(m.Droplets) != 1000 {
			b.Fatal(err, len(m.Droplets))
		}
	}
}

// BenchmarkFindDropletRoundTrip is the target "dea.find.droplet-shaped
// requests against 10 responders over the embedded server: p50 round trip
// ≤ 0.5 ms". Ten DEAs on their own connections each hold instances of
// their own app; each request asks for one instance and is answered by
// the one DEA that has it (as Cloud Controller asked with an expected
// count of 1).
func BenchmarkFindDropletRoundTrip(b *testing.B) {
	ctx := context.Background()
	srv := natstest.StartServer(b)
	cc := natstest.Connect(b, srv)
	for d := range 10 {
		bus := natstest.Connect(b, srv)
		id := fmt.Sprintf("dea-%d", d)
		app := fmt.Sprintf("app-%d", d)
		_, err := nats.Handle(ctx, bus, nats.DEAFindDroplet, func(ctx context.Context, r *nats.RequestMsg[nats.FindDropletRequest, nats.FindDropletResponse]) error {
			for i := range 4 {
				inst := fmt.Sprintf("%s-%d", id, i)
				if r.Data.Match(app, "v1", inst, i, nats.StateRunning) {
					if err := r.Respond(ctx, nats.FindDropletResponse{DEA: id, Droplet: app, Version: "v1", Instance: inst, Index: i, State: nats.StateRunning, StateTimestamp: 1712345678}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	var samples []time.Duration
	i := 0
	for b.Loop() {
		req := nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: fmt.Sprintf("app-%d", i%10), Indices: []int{i % 4}, States: []nats.State{nats.StateRunning}}}
		start := time.Now()
		reps, err := nats.RequestMany(ctx, cc, nats.DEAFindDroplet, req, nats.Gather{Max: 1, Wait: 2 * time.Second})
		samples = append(samples, time.Since(start))
		if err != nil || len(reps) != 1 {
			b.Fatal(err, len(reps))
		}
		i++
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds())/1000, "p99-ms")
}

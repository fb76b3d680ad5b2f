package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
)

// The nats suite measures the two targets of the nats package over an
// embedded server on the loopback interface, and the same work done
// without paaskit for comparison:
//
//   - nats.find_droplet.*: 10,000 (or -n, if larger) dea.find.droplet
//     requests, one at a time, against 10 DEAs on their own connections;
//     each request names one instance and is answered by the DEA that has
//     it (paaskit's RequestMany with an expected count of 1). p50 and p99
//     round trips in ms, and requests per second; then the same number of
//     requests from 16 goroutines at once (throughput_parallel). The
//     .raw figures are the same requests with nats.go and encoding/json
//     directly (untyped, unvalidated): the price of paaskit's layer.
//   - nats.heartbeat_1000.decode: the median time to decode and validate
//     a dea.heartbeat of 1,000 instances, in ms; .encoding_json is the
//     same payload decoded by encoding/json into plain structs.
const (
	natsBenchRequests  = 10000
	natsBenchDEAs      = 10
	natsBenchInstances = 4 // per DEA
	natsBenchParallel  = 16
	natsBenchDecodes   = 500
)

// runNatsSuite runs the nats suite. Everything it starts (server,
// connections) is stopped before it returns, also on error.
func runNatsSuite(ctx context.Context, cfg config, r *report) (retErr error) {
	srv, err := natsserver.Start(ctx)
	if err != nil {
		return fmt.Errorf("nats suite: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		retErr = errors.Join(retErr, srv.Shutdown(sctx))
	}()
	var buses []*nats.Bus
	defer func() {
		for _, b := range buses {
			retErr = errors.Join(retErr, b.Close())
		}
	}()
	connect := func(name string) (*nats.Bus, error) {
		b, err := nats.Connect(ctx, srv.ClientURL(), nats.WithName(name))
		if err != nil {
			return nil, fmt.Errorf("nats suite: %w", err)
		}
		buses = append(buses, b)
		return b, nil
	}

	for d := range natsBenchDEAs {
		b, err := connect(fmt.Sprintf("dea-%d", d))
		if err != nil {
			return err
		}
		if err := serveFindDroplet(ctx, b, d); err != nil {
			return err
		}
	}
	cc, err := connect("cc")
	if err != nil {
		return err
	}
	n := max(natsBenchRequests, cfg.n)

	r.commentf("nats: %d dea.find.droplet requests against %d responders, one at a time", n, natsBenchDEAs)
	if err := benchFindDroplet(ctx, r, "nats.find_droplet", n, func(i int) error {
		reps, err := nats.RequestMany(ctx, cc, nats.DEAFindDroplet, findRequest(i), nats.Gather{Max: 1, Wait: 2 * time.Second})
		if err == nil && len(reps) != 1 {
			err = fmt.Errorf("%d replies", len(reps))
		}
		return err
	}); err != nil {
		return err
	}

	r.commentf("nats: the same with nats.go and encoding/json directly")
	raw := cc.Conn()
	if err := benchFindDroplet(ctx, r, "nats.find_droplet.raw", n, func(i int) error {
		data, err := json.Marshal(findRequest(i))
		if err != nil {
			return err
		}
		m, err := raw.Request("dea.find.droplet", data, 2*time.Second)
		if err != nil {
			return err
		}
		var rep struct {
			DEA, Droplet, Instance, State string
			Index                         int
		}
		return json.Unmarshal(m.Data, &rep)
	}); err != nil {
		return err
	}
	r.addMaybe("nats.find_droplet.vs_raw", ratio(r.value("nats.find_droplet.p50"), r.value("nats.find_droplet.raw.p50")), "ratio")

	r.commentf("nats: %d requests from %d goroutines", n, natsBenchParallel)
	if err := benchFindDropletParallel(ctx, r, cc, n); err != nil {
		return err
	}

	r.commentf("nats: decoding a heartbeat of 1,000 instances, %d times", natsBenchDecodes)
	return benchHeartbeatDecode(r, max(natsBenchDecodes, cfg.n))
}

func findRequest(i int) nats.FindDropletRequest {
	return nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{
		Droplet: fmt.Sprintf("app-%d", i%natsBenchDEAs),
		Indices: []int{i % natsBenchInstances},
		States:  []nats.State{nats.StateRunning},
	}}
}

// serveFindDroplet makes b a DEA holding natsBenchInstances instances of
// app-<d>, answering find.droplet as a DEA does.
func serveFindDroplet(ctx context.Context, b *nats.Bus, d int) error {
	id := fmt.Sprintf("0-dea%031d", d)
	app := fmt.Sprintf("app-%d", d)
	_, err := nats.Handle(ctx, b, nats.DEAFindDroplet, func(ctx context.Context, req *nats.RequestMsg[nats.FindDropletRequest, nats.FindDropletResponse]) error {
		for i := range natsBenchInstances {
			inst := fmt.Sprintf("%s-instance-%d", app, i)
			if !req.Data.Match(app, "v1", inst, i, nats.StateRunning) {
				continue
			}
			if err := req.Respond(ctx, nats.FindDropletResponse{
				DEA: id, Droplet: app, Version: "v1", Instance: inst, Index: i,
				State: nats.StateRunning, StateTimestamp: 1712345678.5, Staged: "/" + inst,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("nats suite: %w", err)
	}
	return nil
}

// benchFindDroplet times n sequential calls of do and records the p50 and
// p99 in ms and the throughput in requests per second.
func benchFindDroplet(ctx context.Context, r *report, name string, n int, do func(i int) error) error {
	samples := make([]float64, 0, n)
	start := time.Now()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := do(i); err != nil {
			return fmt.Errorf("%s: request %d: %w", name, i, err)
		}
		samples = append(samples, float64(time.Since(t0).Nanoseconds())/1e6)
	}
	elapsed := time.Since(start)
	for _, p := range []float64{50, 99} {
		v, err := percentile(samples, p)
		if err != nil {
			return err
		}
		r.add(fmt.Sprintf("%s.p%d", name, int(p)), v, "ms")
	}
	r.add(name+".throughput", float64(n)/elapsed.Seconds(), "req/s")
	return nil
}

func benchFindDropletParallel(ctx context.Context, r *report, cc *nats.Bus, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, natsBenchParallel)
	start := time.Now()
	for range natsBenchParallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				reps, err := nats.RequestMany(ctx, cc, nats.DEAFindDroplet, findRequest(i), nats.Gather{Max: 1, Wait: 2 * time.Second})
				if err == nil && len(reps) != 1 {
					err = fmt.Errorf("%d replies", len(reps))
				}
				if err != nil {
					errs <- fmt.Errorf("nats.find_droplet parallel request %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(<-errs, ctx.Err()); err != nil {
		return err
	}
	r.add("nats.find_droplet.throughput_parallel", float64(n)/time.Since(start).Seconds(), "req/s")
	return nil
}

func benchHeartbeatDecode(r *report, n int) error {
	hb := nats.HeartbeatMessage{DEA: "0-1a0434e1ff90428da1bab6d5c77faed4"}
	for i := range 1000 {
		hb.Droplets = append(hb.Droplets, nats.HeartbeatInstance{
			CCPartition:    "default",
			Droplet:        fmt.Sprintf("6e1a4c3a-6c1e-4f5e-9d3f-%012d", i/4),
			Version:        fmt.Sprintf("c5c6e8a2-55a8-4d2b-a6a5-%012d", i/4),
			Instance:       fmt.Sprintf("f3b0e2c1d4a5968778695a4b%08x", i),
			Index:          i % 4,
			State:          nats.StateRunning,
			StateTimestamp: 1712345678.123456 + float64(i),
		})
	}
	data, err := nats.Encode(hb)
	if err != nil {
		return err
	}
	r.commentf("nats: heartbeat payload %d bytes", len(data))

	timeDecode := func(decode func() error) ([]float64, error) {
		samples := make([]float64, 0, n)
		for range n {
			t0 := time.Now()
			if err := decode(); err != nil {
				return nil, err
			}
			samples = append(samples, float64(time.Since(t0).Nanoseconds())/1e6)
		}
		return samples, nil
	}
	paaskit, err := timeDecode(func() error {
		m, err := nats.Decode[nats.HeartbeatMessage](data)
		if err == nil && len(m.Droplets) != 1000 {
			err = fmt.Errorf("%d instances", len(m.Droplets))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("nats.heartbeat_1000.decode: %w", err)
	}
	type plainInstance struct {
		CCPartition    string  `json:"cc_partition"`
		Droplet        string  `json:"droplet"`
		Version        string  `json:"version"`
		Instance       string  `json:"instance"`
		Index          int     `json:"index"`
		State          string  `json:"state"`
		StateTimestamp float64 `json:"state_timestamp"`
	}
	std, err := timeDecode(func() error {
		var m struct {
			DEA      string          `json:"dea"`
			Droplets []plainInstance `json:"droplets"`
		}
		return json.Unmarshal(data, &m)
	})
	if err != nil {
		return fmt.Errorf("nats.heartbeat_1000.decode.encoding_json: %w", err)
	}
	p, err := percentile(paaskit, 50)
	if err != nil {
		return err
	}
	s, err := percentile(std, 50)
	if err != nil {
		return err
	}
	r.add("nats.heartbeat_1000.decode", p, "ms")
	r.add("nats.heartbeat_1000.decode.encoding_json", s, "ms")
	r.addMaybe("nats.heartbeat_1000.decode.vs_encoding_json", ratio(&p, &s), "ratio")
	return nil
}

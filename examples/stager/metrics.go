package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// Metrics is a snapshot of the service's counters.
type Metrics struct {
	// Running and Queued are the stagings running and waiting now.
	Running int64 `json:"running"`
	Queued  int64 `json:"queued"`
	// Succeeded counts stagings whose droplet was uploaded.
	Succeeded int64 `json:"succeeded"`
	// Failed counts failed requests by error type (ErrTypeTimeout,
	// ErrTypeBusy, ErrTypeMalformed, …), those never staged included.
	Failed map[string]int64 `json:"failed"`
	// Durations summarises how long stagings took.
	Durations DurationStats `json:"durations"`
}

// DurationStats summarises staging durations, in seconds.
type DurationStats struct {
	Count int64   `json:"count"`
	Sum   float64 `json:"sum_seconds"`
	Max   float64 `json:"max_seconds"`
	// Buckets counts stagings by upper bound (Prometheus-style, cumulative).
	Buckets map[string]int64 `json:"buckets"`
}

var bucketBounds = []struct {
	name string
	d    time.Duration
}{{"1s", time.Second}, {"10s", 10 * time.Second}, {"1m", time.Minute}, {"5m", 5 * time.Minute}, {"15m", 15 * time.Minute}, {"+Inf", 1<<63 - 1}}

type metrics struct {
	running, queued, succeeded atomic.Int64

	mu      sync.Mutex
	failed  map[string]int64
	count   int64
	sum     time.Duration
	max     time.Duration
	buckets [6]int64
}

func (m *metrics) add(errType string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed[errType]++
}

func (m *metrics) observe(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count++
	m.sum += d
	m.max = max(m.max, d)
	for i, b := range bucketBounds {
		if d <= b.d {
			m.buckets[i]++
		}
	}
}

// Metrics returns a snapshot of the counters.
func (s *Service) Metrics() Metrics {
	m := &s.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	out := Metrics{
		Running:   m.running.Load(),
		Queued:    m.queued.Load(),
		Succeeded: m.succeeded.Load(),
		Failed:    make(map[string]int64, len(m.failed)),
		Durations: DurationStats{Count: m.count, Sum: m.sum.Seconds(), Max: m.max.Seconds(), Buckets: map[string]int64{}},
	}
	for k, v := range m.failed {
		out.Failed[k] = v
	}
	for i, b := range bucketBounds {
		out.Durations.Buckets[b.name] = m.buckets[i]
	}
	return out
}

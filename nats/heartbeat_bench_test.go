package nats

import (
	"fmt"
	"testing"
)

// BenchmarkHeartbeatDecodeGeneral decodes the same heartbeat as
// BenchmarkHeartbeatDecode1000 without the fast path, for comparison.
func BenchmarkHeartbeatDecodeGeneral(b *testing.B) {
	m := HeartbeatMessage{DEA: "0-1a0434e1ff90428da1bab6d5c77faed4"}
	for i := range 1000 {
		m.Droplets = append(m.Droplets, HeartbeatInstance{
			CCPartition: "default", Droplet: fmt.Sprintf("6e1a4c3a-6c1e-4f5e-9d3f-%012d", i/4),
			Version: fmt.Sprintf("c5c6e8a2-55a8-4d2b-a6a5-%012d", i/4), Instance: fmt.Sprintf("f3b0e2c1d4a5968778695a4b%08x", i),
			Index: i % 4, State: StateRunning, StateTimestamp: 1712345678.123456 + float64(i),
		})
	}
	data, err := Encode(m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var out HeartbeatMessage
		if err := unmarshalJSON(data, (*heartbeatMessagePlain)(&out)); err != nil {
			b.Fatal(err)
		}
	}
}

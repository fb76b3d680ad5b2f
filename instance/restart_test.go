package instance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRestartPolicySchedule(t *testing.T) {
	p := DiegoRestartPolicy()
	want := map[int]time.Duration{
		1: 0, 2: 0, 3: 0,
		4: 30 * time.Second, 5: time.Minute, 6: 2 * time.Minute, 7: 4 * time.Minute, 8: 8 * time.Minute,
		9: 16 * time.Minute, 10: 16 * time.Minute, 100: 16 * time.Minute, 200: 16 * time.Minute,
	}
	for n, d := range want {
		got, ok := p.Delay(n)
		assert.True(t, ok, "crash %d", n)
		assert.Equal(t, d, got, "crash %d", n)
	}
	for _, n := range []int{201, 1000} {
		_, ok := p.Delay(n)
		assert.False(t, ok, "crash %d: given up", n)
	}
	_, ok := RestartPolicy{}.Delay(1)
	assert.False(t, ok, "off by default")
	_, ok = p.Delay(0)
	assert.False(t, ok)
}

func TestRestartPolicyCrashCount(t *testing.T) {
	p := DiegoRestartPolicy()
	assert.Equal(t, 1, p.CrashCount(0, 0))
	assert.Equal(t, 4, p.CrashCount(3, time.Minute))
	assert.Equal(t, 1, p.CrashCount(7, 5*time.Minute), "reset after 5 min running")
	assert.Equal(t, 8, p.CrashCount(7, 5*time.Minute-time.Second))
}

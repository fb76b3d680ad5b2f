package instance

import "time"

// RestartPolicy restarts crashed instances on the DEA itself, with
// Diego's schedule (its restart calculator): after each of the first
// ImmediateRestarts crashes at once, then after BaseDelay doubling with
// every crash up to MaxDelay, and not at all after MaxCrashes crashes.
// The count starts again when an instance ran ResetAfter without
// crashing. The zero value is off: as in the DEA, the controller decides
// (it sees CRASHED in heartbeats and droplet.exited).
//
// A restart is a new instance (new instance id, same app, index and
// spec) started by the Manager; the crashed one stays CRASHED for
// inspection until reaped.
type RestartPolicy struct {
	// Enabled turns restarting on.
	Enabled bool
	// ImmediateRestarts is how many crashes in a row restart at once;
	// default 3.
	ImmediateRestarts int
	// BaseDelay is the first backoff; default 30 s.
	BaseDelay time.Duration
	// MaxDelay caps the backoff; default 16 min.
	MaxDelay time.Duration
	// MaxCrashes is the crash count after which the instance is left
	// CRASHED; default 200.
	MaxCrashes int
	// ResetAfter is how long an instance must run for its crash count to
	// start again; default 5 min.
	ResetAfter time.Duration
}

// DiegoRestartPolicy returns the policy enabled with Diego's numbers.
func DiegoRestartPolicy() RestartPolicy { return RestartPolicy{Enabled: true}.withDefaults() }

func (p RestartPolicy) withDefaults() RestartPolicy {
	if p.ImmediateRestarts == 0 {
		p.ImmediateRestarts = 3
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = 30 * time.Second
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = 16 * time.Minute
	}
	if p.MaxCrashes == 0 {
		p.MaxCrashes = 200
	}
	if p.ResetAfter == 0 {
		p.ResetAfter = 5 * time.Minute
	}
	return p
}

// CrashCount returns the crash count of an instance that just crashed:
// 1 when it ran for at least ResetAfter (or never crashed before),
// previous+1 otherwise.
func (p RestartPolicy) CrashCount(previous int, ran time.Duration) int {
	p = p.withDefaults()
	if previous <= 0 || ran >= p.ResetAfter {
		return 1
	}
	return previous + 1
}

// Delay returns how long to wait before restarting an instance that has
// crashed crashes times in a row (at least 1), and false when it must
// not be restarted (the policy is off, or crashes is above MaxCrashes).
//
// With the defaults: crashes 1–3 restart at once; 4 after 30 s, 5 after
// 1 min, 6 after 2 min, 7 after 4 min, 8 after 8 min, 9 to 200 after
// 16 min; 201 and later are not restarted.
func (p RestartPolicy) Delay(crashes int) (time.Duration, bool) {
	if !p.Enabled || crashes < 1 {
		return 0, false
	}
	p = p.withDefaults()
	switch {
	case crashes > p.MaxCrashes:
		return 0, false
	case crashes <= p.ImmediateRestarts:
		return 0, true
	}
	d := p.BaseDelay
	for range crashes - p.ImmediateRestarts - 1 {
		d *= 2
		if d >= p.MaxDelay {
			return p.MaxDelay, true
		}
	}
	return min(d, p.MaxDelay), true
}

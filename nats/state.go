package nats

import (
	"fmt"
	"strings"
)

// State is the state of an app instance as the DEA reports it on the wire
// (heartbeats, find.droplet replies, the states filter of dea.stop and
// dea.find.droplet). The zero value is not a state: it marshals to an
// error and fails validation, so a message cannot leave with a state
// nobody set.
type State uint8

// The instance states of the DEA protocol. EVACUATING replaced DELETED in
// later DEAs; both decode.
const (
	StateBorn State = iota + 1
	StateStarting
	StateRunning
	StateStopping
	StateStopped
	StateCrashed
	StateDeleted
	StateResuming
	StateEvacuating
)

var stateNames = [...]string{
	StateBorn:       "BORN",
	StateStarting:   "STARTING",
	StateRunning:    "RUNNING",
	StateStopping:   "STOPPING",
	StateStopped:    "STOPPED",
	StateCrashed:    "CRASHED",
	StateDeleted:    "DELETED",
	StateResuming:   "RESUMING",
	StateEvacuating: "EVACUATING",
}

// States returns every valid state, in the order of the constants.
func States() []State {
	out := make([]State, 0, len(stateNames)-1)
	for s := StateBorn; int(s) < len(stateNames); s++ {
		out = append(out, s)
	}
	return out
}

// ParseState returns the state named s. Like the DEA it ignores case
// ("running" is RUNNING). An unknown name is an error matching
// [ErrInvalidMessage].
func ParseState(s string) (State, error) {
	if st, ok := stateFromWire(s); ok {
		return st, nil
	}
	if st, ok := stateFromWire(strings.ToUpper(s)); ok {
		return st, nil
	}
	return 0, fmt.Errorf("%w: unknown instance state %q", ErrInvalidMessage, s)
}

// stateFromWire maps the exact upper-case wire name to its State.
func stateFromWire(name string) (State, bool) {
	switch name {
	case "BORN":
		return StateBorn, true
	case "STARTING":
		return StateStarting, true
	case "RUNNING":
		return StateRunning, true
	case "STOPPING":
		return StateStopping, true
	case "STOPPED":
		return StateStopped, true
	case "CRASHED":
		return StateCrashed, true
	case "DELETED":
		return StateDeleted, true
	case "RESUMING":
		return StateResuming, true
	case "EVACUATING":
		return StateEvacuating, true
	}
	return 0, false
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool { return s >= StateBorn && int(s) < len(stateNames) }

// String returns the wire name ("RUNNING"), or "State(n)" for an invalid
// value.
func (s State) String() string {
	if s.Valid() {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText returns the wire name; an invalid state is an error.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: invalid instance state %d", ErrInvalidMessage, uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText parses a wire name as [ParseState] does.
func (s *State) UnmarshalText(b []byte) error {
	if st, ok := stateFromWire(string(b)); ok {
		*s = st
		return nil
	}
	st, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// ExitReason says why an instance left, in droplet.exited. The zero value
// is not a reason.
type ExitReason uint8

// The exit reasons of the DEA protocol. Current DEAs send only CRASHED;
// older ones also sent the others on stop, shutdown and evacuation.
const (
	ExitCrashed ExitReason = iota + 1
	ExitStopped
	ExitDEAShutdown
	ExitDEAEvacuation
)

var exitReasonNames = [...]string{
	ExitCrashed:       "CRASHED",
	ExitStopped:       "STOPPED",
	ExitDEAShutdown:   "DEA_SHUTDOWN",
	ExitDEAEvacuation: "DEA_EVACUATION",
}

// ParseExitReason returns the reason named s (case is ignored). An
// unknown name is an error matching [ErrInvalidMessage].
func ParseExitReason(s string) (ExitReason, error) {
	for r := ExitCrashed; int(r) < len(exitReasonNames); r++ {
		if strings.EqualFold(exitReasonNames[r], s) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown exit reason %q", ErrInvalidMessage, s)
}

// Valid reports whether r is one of the defined reasons.
func (r ExitReason) Valid() bool { return r >= ExitCrashed && int(r) < len(exitReasonNames) }

// String returns the wire name ("CRASHED"), or "ExitReason(n)" for an
// invalid value.
func (r ExitReason) String() string {
	if r.Valid() {
		return exitReasonNames[r]
	}
	return fmt.Sprintf("ExitReason(%d)", uint8(r))
}

// MarshalText returns the wire name; an invalid reason is an error.
func (r ExitReason) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("%w: invalid exit reason %d", ErrInvalidMessage, uint8(r))
	}
	return []byte(exitReasonNames[r]), nil
}

// UnmarshalText parses a wire name as [ParseExitReason] does.
func (r *ExitReason) UnmarshalText(b []byte) error {
	v, err := ParseExitReason(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

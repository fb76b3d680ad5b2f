package instance

import (
	"fmt"
	"slices"
	"time"
)

// State is where an instance is in its lifecycle. The zero value is not a
// state. States marshal as dea_ng's external names ("RUNNING").
type State int

// The states: the eight of the original DEA (DELETED was dropped by
// dea_ng in 2014; here it is the state of an instance removed from the
// registry) and EVACUATING from its later versions.
const (
	// StateBorn: created and registered, resources reserved, not started.
	StateBorn State = iota + 1
	// StateStarting: the droplet, container and process are being set
	// up, or the health check has not passed yet.
	StateStarting
	// StateRunning: the health check passed; the process runs.
	StateRunning
	// StateStopping: being stopped (routes unregistered, TERM, grace,
	// KILL, container destroyed).
	StateStopping
	// StateStopped: stopped; removed from the registry right after.
	StateStopped
	// StateCrashed: the process exited, was killed for memory, failed its
	// health check or could not be started. Holds disk (its logs) until
	// reaped.
	StateCrashed
	// StateDeleted: removed from the registry (a STOPPED instance, or a
	// CRASHED one reaped). Terminal.
	StateDeleted
	// StateResuming: rebuilt from the snapshot by a new process,
	// re-linking to its container.
	StateResuming
	// StateEvacuating: the agent is evacuating; the instance still runs
	// and is routable until the controller has replaced it elsewhere and
	// stops it.
	StateEvacuating
)

// States lists every state, in declaration order.
var States = []State{
	StateBorn, StateStarting, StateRunning, StateStopping, StateStopped,
	StateCrashed, StateDeleted, StateResuming, StateEvacuating,
}

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

// String returns the state's external name ("RUNNING"), or "State(n)"
// for a value that is not a state.
func (s State) String() string {
	if s.valid() {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

func (s State) valid() bool { return s >= StateBorn && s <= StateEvacuating }

// ParseState returns the state of an external name ("RUNNING"; case
// matters, as on the wire), or a *SpecError.
func ParseState(name string) (State, error) {
	for _, s := range States {
		if stateNames[s] == name {
			return s, nil
		}
	}
	return 0, specErr("State", "unknown state %q", name)
}

// MarshalText implements encoding.TextMarshaler; a value that is not a
// state is an error.
func (s State) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, specErr("State", "not a state: %d", int(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// transitions are the legal transitions, from → to, after dea_ng's
// Instance#promise_state calls (PROTOCOL.md §2.2), with three changes:
// DELETED is where STOPPED and CRASHED instances go when they leave the
// registry; an EVACUATING instance whose process dies becomes CRASHED
// (dea_ng left it EVACUATING, so the controller never learnt of the
// crash); and a resumed instance may go back to EVACUATING.
var transitions = map[State][]State{
	StateBorn:       {StateStarting, StateStopped, StateCrashed, StateResuming, StateEvacuating},
	StateStarting:   {StateRunning, StateStopping, StateCrashed, StateEvacuating},
	StateRunning:    {StateStopping, StateCrashed, StateEvacuating},
	StateStopping:   {StateStopped},
	StateStopped:    {StateDeleted},
	StateCrashed:    {StateDeleted},
	StateDeleted:    nil,
	StateResuming:   {StateRunning, StateStopping, StateCrashed, StateEvacuating},
	StateEvacuating: {StateStopping, StateCrashed},
}

// CanTransitionTo reports whether the state machine allows from s to to.
func (s State) CanTransitionTo(to State) bool {
	return slices.Contains(transitions[s], to)
}

// Next returns the states s may go to, in a fixed order. The slice is a
// copy.
func (s State) Next() []State { return slices.Clone(transitions[s]) }

// CheckTransition returns nil when from → to is legal and a
// *TransitionError otherwise.
func CheckTransition(from, to State) error {
	if from.CanTransitionTo(to) {
		return nil
	}
	return &TransitionError{From: from, To: to}
}

// reservesMemory reports whether an instance in s counts against the
// memory capacity (PROTOCOL.md §4.2: BORN, STARTING, RUNNING, STOPPING;
// here also RESUMING and EVACUATING, whose processes still run).
func (s State) reservesMemory() bool {
	switch s {
	case StateBorn, StateStarting, StateRunning, StateStopping, StateResuming, StateEvacuating:
		return true
	}
	return false
}

// reservesDisk reports whether an instance in s counts against the disk
// capacity: the memory states and CRASHED, whose logs are kept.
func (s State) reservesDisk() bool { return s.reservesMemory() || s == StateCrashed }

// snapshotted reports whether an instance in s is written to the
// snapshot: dea_ng's STARTING, RUNNING, STOPPING and CRASHED, and
// EVACUATING (dea_ng lost evacuating instances on a restart).
func (s State) snapshotted() bool {
	switch s {
	case StateStarting, StateRunning, StateStopping, StateCrashed, StateEvacuating:
		return true
	}
	return false
}

// EventKind says which of the three events of a transition an Event is.
type EventKind int

// The event kinds, in the order a transition delivers them.
const (
	// EventExiting: the instance leaves Event.From.
	EventExiting EventKind = iota + 1
	// EventTransition: the instance goes from Event.From to Event.To.
	EventTransition
	// EventEntering: the instance enters Event.To.
	EventEntering
)

// String returns "exiting", "transition" or "entering".
func (k EventKind) String() string {
	switch k {
	case EventExiting:
		return "exiting"
	case EventTransition:
		return "transition"
	case EventEntering:
		return "entering"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one of the three events of a transition: every transition
// delivers Exiting(From), Transition(From, To) and Entering(To), in that
// order, to every listener, before the events of the next transition.
// This is how a DEA publishes heartbeats, registers and unregisters
// routes and sends droplet.exited.
type Event struct {
	Kind     EventKind
	From, To State
	// Time is when the transition happened (also the instance's
	// state_timestamp).
	Time time.Time
	// Instance is the instance; its current state may already be later
	// than To.
	Instance *Instance
	// Attributes are the instance's attributes right after the
	// transition (State is To). Treat their maps and slices as read-only.
	Attributes Attributes
}

// String returns "entering RUNNING", "transition STARTING->RUNNING", ….
func (e Event) String() string {
	switch e.Kind {
	case EventExiting:
		return "exiting " + e.From.String()
	case EventEntering:
		return "entering " + e.To.String()
	}
	return fmt.Sprintf("%s %s->%s", e.Kind, e.From, e.To)
}

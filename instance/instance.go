package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/paaskit/paaskit/container"
)

// Attributes are everything known of an instance: its Spec and what the
// DEA learnt running it. The JSON names are dea_ng's snapshot names
// (Instance#snapshot_attributes), so tools that read a DEA's
// instances.json read paaskit's; the fields dea_ng did not have are
// marked "paaskit:".
type Attributes struct {
	Spec

	// PrivateInstanceID is a second, secret id (64 hex digits), given to
	// the router.
	PrivateInstanceID string `json:"private_instance_id"`
	// State is the instance's state.
	State State `json:"state"`
	// StateTimestamp is when it entered State.
	StateTimestamp Timestamp `json:"state_timestamp,omitzero"`
	// StateStartingTimestamp is when it entered STARTING (dea_ng's
	// started_at). StateRunningTimestamp and StateCrashedTimestamp
	// likewise (paaskit).
	StateStartingTimestamp Timestamp `json:"state_starting_timestamp,omitzero"`
	StateRunningTimestamp  Timestamp `json:"state_running_timestamp,omitzero"`
	StateCrashedTimestamp  Timestamp `json:"state_crashed_timestamp,omitzero"`

	// WardenHandle is the container's handle.
	WardenHandle string `json:"warden_handle"`
	// WardenJobID is the id of the app's process in the container
	// (dea_ng's was a number; here a string).
	WardenJobID string `json:"warden_job_id"`
	// WardenContainerPath is the container's directory on the host.
	WardenContainerPath string `json:"warden_container_path"`
	// WardenHostIP and WardenContainerIP are the container's gateway and
	// address.
	WardenHostIP      string `json:"warden_host_ip"`
	WardenContainerIP string `json:"warden_container_ip"`
	// InstanceHostPort is the port on the host routed to
	// InstanceContainerPort, the port the app listens on ($PORT).
	InstanceHostPort      int `json:"instance_host_port"`
	InstanceContainerPort int `json:"instance_container_port"`
	// SyslogDrainURLs are the services' syslog drains.
	SyslogDrainURLs []string `json:"syslog_drain_urls"`

	// ProcessPID is the app process's pid in the container (paaskit).
	ProcessPID int `json:"process_pid,omitempty"`
	// ExitStatus and ExitDescription say why a CRASHED instance crashed
	// (paaskit keeps them; dea_ng sent them in droplet.exited only).
	ExitStatus      int    `json:"exit_status,omitempty"`
	ExitDescription string `json:"exit_description,omitempty"`
	// CrashCount counts the crashes of this app index in a row (see
	// RestartPolicy; paaskit).
	CrashCount int `json:"crash_count,omitempty"`
	// InstancePath is the instance's directory on the host: its home
	// directory while it runs, its crash directory (logs) once CRASHED.
	InstancePath string `json:"instance_path,omitempty"`
}

// Timestamp is a time that marshals as fractional seconds since the Unix
// epoch, as dea_ng's Time#to_f. The zero Timestamp is omitted with
// omitzero.
type Timestamp struct{ time.Time }

// MarshalJSON writes t as seconds since the epoch, to the microsecond.
func (t Timestamp) MarshalJSON() ([]byte, error) { return t.appendJSON(nil), nil }

func (t Timestamp) appendJSON(b []byte) []byte {
	if t.IsZero() {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, float64(t.UnixMicro())/1e6, 'f', -1, 64)
}

// UnmarshalJSON reads seconds since the epoch; 0 and null are the zero
// time.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return specErr("Timestamp", "not a number of seconds: %s", b)
	}
	if f == 0 {
		t.Time = time.Time{}
		return nil
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3)
	return nil
}

// Instance is one app instance. Its methods are safe for concurrent use.
// Instances are made by a Manager (Create, Resume) or, for tools and
// tests that only need a Registry, by NewInstance.
type Instance struct {
	m *Manager // nil for instances made by NewInstance

	// op serialises the lifecycle operations (start's end, stop, reap).
	op sync.Mutex

	mu   sync.Mutex
	a    Attributes
	reg  *Registry // set while registered
	ctr  Container
	proc Process
	// exited is closed when the process's exit was seen; exit holds it.
	exited   chan struct{}
	exit     container.ExitStatus
	exitErr  error
	started  chan struct{} // closed when Start is over
	began    bool          // Start began
	cancel   context.CancelFunc
	liveness context.CancelFunc
	cpu      cpuSample
	// specJSON caches the encoding of a.Spec (appendSpecPart), which
	// changes only with Manager.Update; nil when stale. runtimeJSON caches
	// the rest (appendRuntimePart), valid while runtimeKey equals the
	// attributes' runtimeKey.
	specJSON    []byte
	runtimeJSON []byte
	runtimeKey  runtimeKey
}

// runtimeKey holds every field appendRuntimePart writes but
// SyslogDrainURLs, which never changes after creation.
type runtimeKey struct {
	privateID                                string
	state                                    State
	ts, starting, running, crashed           time.Time
	handle, job, path, hostIP, ctrIP, iPath  string
	hostPort, ctrPort, pid, exit, crashCount int
	desc                                     string
}

func runtimeKeyOf(a *Attributes) runtimeKey {
	return runtimeKey{
		privateID: a.PrivateInstanceID, state: a.State,
		ts: a.StateTimestamp.Time, starting: a.StateStartingTimestamp.Time,
		running: a.StateRunningTimestamp.Time, crashed: a.StateCrashedTimestamp.Time,
		handle: a.WardenHandle, job: a.WardenJobID, path: a.WardenContainerPath,
		hostIP: a.WardenHostIP, ctrIP: a.WardenContainerIP, iPath: a.InstancePath,
		hostPort: a.InstanceHostPort, ctrPort: a.InstanceContainerPort, pid: a.ProcessPID,
		exit: a.ExitStatus, crashCount: a.CrashCount, desc: a.ExitDescription,
	}
}

// appendJSONLocked appends the instance's attributes as JSON, reusing
// what was encoded last time where nothing changed: most snapshots
// rewrite thousands of instances of which one changed. The caller holds
// i.mu.
func (i *Instance) appendJSONLocked(b []byte) ([]byte, error) {
	if i.specJSON == nil {
		sj, err := appendSpecPart(nil, &i.a.Spec)
		if err != nil {
			return nil, err
		}
		i.specJSON = sj
	}
	if k := runtimeKeyOf(&i.a); i.runtimeJSON == nil || k != i.runtimeKey {
		rj, err := appendRuntimePart(nil, &i.a)
		if err != nil {
			return nil, err
		}
		i.runtimeJSON, i.runtimeKey = rj, k
	}
	return append(append(b, i.specJSON...), i.runtimeJSON...), nil
}

type cpuSample struct {
	at    time.Time
	usage uint64
}

// NewInstance returns a BORN instance of spec, with a generated
// InstanceID when spec has none and a generated PrivateInstanceID. It
// validates spec. The instance is not registered and has no Manager: it
// can be put in a Registry, not started.
func NewInstance(spec Spec) (*Instance, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return newInstance(spec, time.Now()), nil
}

func newInstance(spec Spec, now time.Time) *Instance {
	if spec.InstanceID == "" {
		spec.InstanceID = randomHex(16)
	}
	a := Attributes{
		Spec:              spec,
		PrivateInstanceID: randomHex(32),
		State:             StateBorn,
		StateTimestamp:    Timestamp{now},
		WardenHandle:      handleOf(spec.InstanceID),
		SyslogDrainURLs:   syslogDrains(spec.Services),
	}
	return &Instance{a: a, exited: make(chan struct{}), started: make(chan struct{})}
}

func handleOf(id string) string { return "inst-" + id }

func syslogDrains(ss []Service) []string {
	var out []string
	for _, s := range ss {
		if s.SyslogDrainURL != "" {
			out = append(out, s.SyslogDrainURL)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ID returns the instance id (it changes when Manager.Update changes
// the app's version, as dea_ng's change_instance_id!).
func (i *Instance) ID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.a.InstanceID
}

// AppID returns the app's GUID.
func (i *Instance) AppID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.a.ApplicationID
}

// State returns the instance's state.
func (i *Instance) State() State {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.a.State
}

// Attributes returns a copy of the instance's attributes. Treat its maps
// and slices as read-only: they are shared with the instance.
func (i *Instance) Attributes() Attributes {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.a
}

// Done returns a channel closed when the instance's process has been
// seen to exit (whatever the state). It is never closed for an instance
// whose process never ran.
func (i *Instance) Done() <-chan struct{} { return i.exited }

// exitedLocked reports whether the process's exit was seen.
func (i *Instance) exitedLocked() bool {
	select {
	case <-i.exited:
		return true
	default:
		return false
	}
}

// transitionLocked moves the instance to state to, stamping the time,
// updating the registry's indexes, and returns the three events. The
// caller holds i.mu and queues the events while still holding it, so
// that the events of one instance keep their order.
func (i *Instance) transitionLocked(to State, now time.Time) ([]Event, error) {
	from := i.a.State
	if !from.CanTransitionTo(to) {
		return nil, &TransitionError{InstanceID: i.a.InstanceID, From: from, To: to}
	}
	i.a.State = to
	ts := Timestamp{now}
	i.a.StateTimestamp = ts
	switch to {
	case StateStarting:
		i.a.StateStartingTimestamp = ts
	case StateRunning:
		i.a.StateRunningTimestamp = ts
	case StateCrashed:
		i.a.StateCrashedTimestamp = ts
	}
	if i.reg != nil {
		i.reg.moved(i, from, to)
	}
	a := i.a
	return []Event{
		{Kind: EventExiting, From: from, To: to, Time: now, Instance: i, Attributes: a},
		{Kind: EventTransition, From: from, To: to, Time: now, Instance: i, Attributes: a},
		{Kind: EventEntering, From: from, To: to, Time: now, Instance: i, Attributes: a},
	}, nil
}

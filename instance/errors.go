package instance

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the errors the
// package returns wrap them with the instance concerned.
var (
	// ErrNotFound: no instance with that id (or no container, process or
	// droplet that an operation needed).
	ErrNotFound = errors.New("instance: not found")
	// ErrAlreadyExists: an instance with that id is already registered
	// (or a staging reservation with that id exists).
	ErrAlreadyExists = errors.New("instance: already exists")
	// ErrInvalidSpec: a Spec, Config or Filter failed validation; the
	// error is a *SpecError naming the field.
	ErrInvalidSpec = errors.New("instance: invalid spec")
	// ErrIllegalTransition: the state machine does not allow the
	// transition; the error is a *TransitionError naming from and to.
	ErrIllegalTransition = errors.New("instance: illegal transition")
	// ErrInsufficientResources: the memory or disk an instance or a
	// staging task asks for is not available; the error is a
	// *ResourceError naming the resource.
	ErrInsufficientResources = errors.New("instance: insufficient resources")
	// ErrStartFailed: an instance did not reach RUNNING; the error is a
	// *StartError with the user-facing description, and the instance is
	// CRASHED (or STOPPING/STOPPED when it was stopped while starting).
	ErrStartFailed = errors.New("instance: start failed")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("instance: manager closed")
)

// SpecError reports an invalid field of a Spec, Config or Filter. It
// wraps ErrInvalidSpec.
type SpecError struct {
	Field  string // the field, as in Go: "Limits.Mem", "Stacks"
	Reason string // what is wrong with it
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("instance: invalid spec: %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalidSpec.
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

func specErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// TransitionError reports a transition the state machine does not allow.
// It wraps ErrIllegalTransition.
type TransitionError struct {
	InstanceID string // the instance, or "" when none was concerned
	From, To   State
}

func (e *TransitionError) Error() string {
	if e.InstanceID == "" {
		return fmt.Sprintf("instance: illegal transition from %s to %s", e.From, e.To)
	}
	return fmt.Sprintf("instance %q: illegal transition from %s to %s", e.InstanceID, e.From, e.To)
}

// Unwrap returns ErrIllegalTransition.
func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }

// ResourceError reports that a reservation did not fit. It wraps
// ErrInsufficientResources. Error returns dea_ng's user-facing text,
// "Not enough memory resource available." (or disk), prefixed with the
// package name.
type ResourceError struct {
	Resource  string // "memory" or "disk", as dea_ng's get_constrained_resource
	Requested int64  // MB asked for
	Remaining int64  // MB left
}

func (e *ResourceError) Error() string {
	return fmt.Sprintf("instance: not enough %s resource available: asked %d MB, %d MB left", e.Resource, e.Requested, e.Remaining)
}

// Unwrap returns ErrInsufficientResources.
func (e *ResourceError) Unwrap() error { return ErrInsufficientResources }

// Description is the user-facing text dea_ng put in exit_description.
func (e *ResourceError) Description() string {
	return fmt.Sprintf("Not enough %s resource available.", e.Resource)
}

// StartError reports an instance that did not reach RUNNING. It wraps
// ErrStartFailed and the cause, so errors.Is works for both (for example
// context.DeadlineExceeded, container.ErrOutOfMemory).
type StartError struct {
	InstanceID string
	// Description is the user-facing text also recorded as the
	// instance's exit_description: "failed to accept connections within
	// health check timeout", "missing start command", "app instance
	// exited", "out of memory", "failed to start", …
	Description string
	// Err is the cause; may be nil when the description says it all.
	Err error
}

func (e *StartError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("instance %q: start failed: %s", e.InstanceID, e.Description)
	}
	return fmt.Sprintf("instance %q: start failed: %s: %v", e.InstanceID, e.Description, e.Err)
}

// Unwrap returns ErrStartFailed and the cause.
func (e *StartError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrStartFailed}
	}
	return []error{ErrStartFailed, e.Err}
}

// userError is an error whose text is fit for the app's owner: it
// becomes the exit_description as it is.
type userError struct {
	desc string
	err  error
}

func (e *userError) Error() string {
	if e.err == nil {
		return e.desc
	}
	return e.desc + ": " + e.err.Error()
}

func (e *userError) Unwrap() error { return e.err }

func userErr(desc string, err error) error { return &userError{desc: desc, err: err} }

// describe returns the user-facing description of a start failure.
func describe(err error) string {
	if ue, ok := errors.AsType[*userError](err); ok {
		return ue.desc
	}
	return DescFailedToStart
}

// User-facing descriptions recorded in exit_description, as dea_ng wrote
// them where it had one.
const (
	DescFailedToStart     = "failed to start"
	DescMissingCommand    = "missing start command"
	DescHealthTimeout     = "failed to accept connections within health check timeout"
	DescHTTPHealthTimeout = "failed to respond to the HTTP health check within health check timeout"
	DescExited            = "app instance exited"
	DescOutOfMemory       = "out of memory"
	DescUnknown           = "unknown"
	DescLivenessFailed    = "liveness check failed"
	DescResumedStarting   = "the agent restarted while the instance was starting"
	DescResumedGone       = "the instance's process was gone when the agent restarted"
)

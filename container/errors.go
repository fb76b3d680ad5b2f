package container

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the errors the
// package returns wrap them with the handle or process id concerned.
var (
	// ErrNotFound: no container (or process) with that handle (or id).
	ErrNotFound = errors.New("container: not found")
	// ErrAlreadyExists: the handle (or process id) is taken.
	ErrAlreadyExists = errors.New("container: already exists")
	// ErrInvalidSpec: a Spec or ProcessSpec failed validation; the error
	// is a *SpecError naming the field.
	ErrInvalidSpec = errors.New("container: invalid spec")
	// ErrStopped: the container was stopped and runs no new processes.
	ErrStopped = errors.New("container: stopped")
	// ErrOutOfMemory: the process was killed by the kernel's OOM killer
	// because its container reached its memory limit.
	ErrOutOfMemory = errors.New("container: out of memory")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("container: manager closed")
	// ErrNoNetwork: the Manager has no network configuration
	// (WithNetwork), so the container has only a loopback device.
	ErrNoNetwork = errors.New("container: networking not configured")
	// ErrAgent: the container's agent could not be reached or failed.
	ErrAgent = errors.New("container: agent failed")
)

// SpecError reports an invalid field of a Spec or ProcessSpec. It wraps
// ErrInvalidSpec.
type SpecError struct {
	Field  string // the field, as in Go: "Handle", "BindMounts[1].SrcPath"
	Reason string // what is wrong with it
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("container: invalid spec: %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalidSpec.
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

func specErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

package cgroups

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid is wrapped by every error about a bad argument: a
	// [Resources] value that fails [Resources.Validate] (as a
	// [*ResourceError]), a malformed cgroup path, a pid below 1.
	ErrInvalid = errors.New("cgroups: invalid argument")

	// ErrNotExist is returned (wrapped) by [Load] when the cgroup does not
	// exist.
	ErrNotExist = errors.New("cgroups: cgroup does not exist")
)

// ResourceError reports one field of [Resources] that is out of range. It
// wraps [ErrInvalid], so errors.Is(err, ErrInvalid) holds; use errors.As
// to get the field. [Resources.Validate] joins several of them with
// errors.Join when more than one field is bad.
type ResourceError struct {
	// Field is the name of the offending field, e.g. "CPUShares".
	Field string
	// Value is the rejected value.
	Value int64
	// Reason says what the value must be, e.g. "must be 0 or in 2..262144".
	Reason string
}

// Error implements error.
func (e *ResourceError) Error() string {
	return fmt.Sprintf("cgroups: invalid %s %d: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns [ErrInvalid].
func (e *ResourceError) Unwrap() error { return ErrInvalid }

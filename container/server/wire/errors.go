package wire

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"syscall"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/internal/archive"
)

// Protocol errors: the request itself was wrong. They are the sentinels
// of CodeBadRequest and CodeTooLarge.
var (
	// ErrBadRequest: the request was malformed (bad JSON, unknown
	// field, bad query parameter, unknown route or method).
	ErrBadRequest = errors.New("wire: bad request")
	// ErrTooLarge: the request body was over the server's limit.
	ErrTooLarge = errors.New("wire: request too large")
	// ErrInternal: the server failed in a way the protocol has no code
	// for; the message says how.
	ErrInternal = errors.New("wire: internal server error")
)

// Code says what kind of failure an Error is. Unknown codes (from a newer
// server) are kept and unwrap to ErrInternal.
type Code string

// The error codes and the sentinel each stands for.
const (
	CodeNotFound         Code = "not_found"         // container.ErrNotFound
	CodeAlreadyExists    Code = "already_exists"    // container.ErrAlreadyExists
	CodeInvalidSpec      Code = "invalid_spec"      // *container.SpecError (container.ErrInvalidSpec)
	CodeStopped          Code = "stopped"           // container.ErrStopped
	CodeOutOfMemory      Code = "out_of_memory"     // container.ErrOutOfMemory
	CodeClosed           Code = "closed"            // container.ErrClosed: the server's Manager was closed
	CodeNoNetwork        Code = "no_network"        // container.ErrNoNetwork
	CodeAgent            Code = "agent"             // container.ErrAgent
	CodePoolExhausted    Code = "pool_exhausted"    // container.ErrPoolExhausted
	CodeUnsupported      Code = "unsupported"       // errors.ErrUnsupported
	CodeNotExist         Code = "not_exist"         // fs.ErrNotExist (a path in a container)
	CodePermission       Code = "permission"        // fs.ErrPermission
	CodeUnsafePath       Code = "unsafe_path"       // archive.ErrUnsafePath
	CodeNotAllowed       Code = "not_allowed"       // archive.ErrNotAllowed
	CodeBadArchive       Code = "bad_archive"       // archive.ErrBadArchive
	CodeLimitExceeded    Code = "limit_exceeded"    // archive.ErrLimitExceeded
	CodeCanceled         Code = "canceled"          // context.Canceled
	CodeDeadlineExceeded Code = "deadline_exceeded" // context.DeadlineExceeded
	CodeBadRequest       Code = "bad_request"       // ErrBadRequest
	CodeTooLarge         Code = "too_large"         // ErrTooLarge
	CodeInternal         Code = "internal"          // ErrInternal
)

// codes maps each code to its sentinel and HTTP status, in the order
// FromError tries them: the more specific first.
var codes = []struct {
	code   Code
	err    error
	status int
}{
	{CodeInvalidSpec, container.ErrInvalidSpec, http.StatusBadRequest},
	{CodeNotFound, container.ErrNotFound, http.StatusNotFound},
	{CodeAlreadyExists, container.ErrAlreadyExists, http.StatusConflict},
	{CodeStopped, container.ErrStopped, http.StatusConflict},
	{CodeOutOfMemory, container.ErrOutOfMemory, http.StatusConflict},
	{CodeClosed, container.ErrClosed, http.StatusServiceUnavailable},
	{CodeNoNetwork, container.ErrNoNetwork, http.StatusNotImplemented},
	{CodePoolExhausted, container.ErrPoolExhausted, http.StatusInsufficientStorage},
	{CodeUnsafePath, archive.ErrUnsafePath, http.StatusBadRequest},
	{CodeNotAllowed, archive.ErrNotAllowed, http.StatusBadRequest},
	{CodeBadArchive, archive.ErrBadArchive, http.StatusBadRequest},
	{CodeLimitExceeded, archive.ErrLimitExceeded, http.StatusRequestEntityTooLarge},
	{CodeTooLarge, ErrTooLarge, http.StatusRequestEntityTooLarge},
	{CodeBadRequest, ErrBadRequest, http.StatusBadRequest},
	{CodeUnsupported, errors.ErrUnsupported, http.StatusNotImplemented},
	{CodeNotExist, fs.ErrNotExist, http.StatusNotFound},
	{CodePermission, fs.ErrPermission, http.StatusForbidden},
	{CodeCanceled, context.Canceled, 499}, // nginx's "client closed request"
	{CodeDeadlineExceeded, context.DeadlineExceeded, http.StatusGatewayTimeout},
	{CodeAgent, container.ErrAgent, http.StatusBadGateway},
	{CodeInternal, ErrInternal, http.StatusInternalServerError},
}

// Error is a failure as it crosses the wire. Its zero value is not
// meaningful; build it with FromError.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Field and Reason are those of a *container.SpecError
	// (CodeInvalidSpec).
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Errno is the system error number found in the error's chain (for
	// example ENOSPC when a stream in filled the disk), 0 when none.
	Errno int `json:"errno,omitempty"`
}

// FromError turns err into its wire form: the code of the first sentinel
// of the table above that err wraps (CodeInternal when none), its message,
// and the details of a *container.SpecError and of a syscall.Errno found
// in its chain. A nil err gives nil.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var we *Error
	if errors.As(err, &we) {
		// Already a wire error (a client's error passed back through).
		return &Error{Code: we.Code, Message: err.Error(), Field: we.Field, Reason: we.Reason, Errno: we.Errno}
	}
	e := &Error{Code: CodeInternal, Message: err.Error()}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			e.Code = c.code
			break
		}
	}
	var se *container.SpecError
	if errors.As(err, &se) {
		e.Code, e.Field, e.Reason = CodeInvalidSpec, se.Field, se.Reason
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.Errno = int(errno)
	}
	return e
}

// Error returns the server's message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinels the error stands for: the code's (for
// CodeInvalidSpec a *container.SpecError with Field and Reason, which
// wraps container.ErrInvalidSpec) and, when Errno is set, the
// syscall.Errno, so that errors.Is(err, syscall.ENOSPC) works.
func (e *Error) Unwrap() []error {
	var out []error
	switch {
	case e.Code == CodeInvalidSpec:
		out = append(out, &container.SpecError{Field: e.Field, Reason: e.Reason})
	default:
		out = append(out, e.sentinel())
	}
	if e.Errno != 0 {
		out = append(out, syscall.Errno(e.Errno))
	}
	return out
}

func (e *Error) sentinel() error {
	for _, c := range codes {
		if c.code == e.Code {
			return c.err
		}
	}
	return ErrInternal
}

// Status returns the HTTP status a response carrying e has.
func (e *Error) Status() int {
	for _, c := range codes {
		if c.code == e.Code {
			return c.status
		}
	}
	return http.StatusInternalServerError
}

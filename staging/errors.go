package staging

import (
	"errors"
	"fmt"
	"strings"
)

// Cloud Foundry's staging exit codes, as Diego's builder exits with them and
// Cloud Controller maps them (NoAppDetectedError, BuildpackCompileFailed, …).
const (
	CodeNoAppDetected  = 222
	CodeCompileFailed  = 223
	CodeReleaseFailed  = 224
	CodeSupplyFailed   = 225
	CodeFinalizeFailed = 226
	// CodeStagingFailed is every other failure (Diego's exit 1).
	CodeStagingFailed = 1
)

// Sentinel errors. Callers branch on them with errors.Is; Stage returns them
// inside an *Error that carries the code, the buildpack and its last output.
var (
	// ErrInvalidRequest: a Request failed Validate.
	ErrInvalidRequest = errors.New("staging: invalid request")
	// ErrNoAppDetected: no buildpack's bin/detect accepted the app (222).
	ErrNoAppDetected = errors.New("staging: no buildpack detected a compatible application")
	// ErrCompileFailed: bin/compile failed (223).
	ErrCompileFailed = errors.New("staging: buildpack compile failed")
	// ErrReleaseFailed: bin/release failed or printed invalid YAML (224).
	ErrReleaseFailed = errors.New("staging: buildpack release failed")
	// ErrSupplyFailed: bin/supply failed, or a non-final buildpack has none (225).
	ErrSupplyFailed = errors.New("staging: buildpack supply failed")
	// ErrFinalizeFailed: bin/finalize failed (226).
	ErrFinalizeFailed = errors.New("staging: buildpack finalize failed")
	// ErrTimeout: staging ran past Request.Timeout; the container's
	// processes were killed.
	ErrTimeout = errors.New("staging: timed out")
	// ErrPackageInvalid: the app package could not be fetched or is not a
	// safe zip archive (zip-slip, escaping link, over the limits, corrupt).
	ErrPackageInvalid = errors.New("staging: app package invalid")
	// ErrInsufficientResources: the staging container ran out of memory
	// or disk.
	ErrInsufficientResources = errors.New("staging: insufficient resources")
	// ErrInvalidProcfile: the app's Procfile has no valid "type: command"
	// line.
	ErrInvalidProcfile = errors.New("staging: invalid Procfile")
	// ErrBuildpackNotFound: a buildpack of the request could not be found
	// or fetched.
	ErrBuildpackNotFound = errors.New("staging: buildpack not found")
	// ErrStackNotFound: the request names a stack the Stager does not have.
	ErrStackNotFound = errors.New("staging: stack not found")
	// ErrNoStartCommand: Launch got no start command and the droplet has
	// none.
	ErrNoStartCommand = errors.New("staging: no start command specified or detected in droplet")
)

// Error is a failed staging. Err is one of the sentinels above (so
// errors.Is(err, ErrCompileFailed) works) possibly joined with a cause.
type Error struct {
	// Code is Cloud Foundry's exit code for the failure (CodeCompileFailed…).
	Code int
	// Buildpack is the key of the buildpack that failed, if one did.
	Buildpack string
	// Err is the sentinel, possibly wrapping the cause.
	Err error
	// Output holds the last lines the buildpacks printed (at most
	// DefaultTailLines), oldest first.
	Output []string
}

// Error returns "staging: … (exit CODE)", with the buildpack when known.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Buildpack != "" {
		fmt.Fprintf(&b, " (buildpack %q)", e.Buildpack)
	}
	fmt.Fprintf(&b, " (exit %d)", e.Code)
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// codeOf maps a sentinel to its Cloud Foundry code.
func codeOf(err error) int {
	switch {
	case errors.Is(err, ErrNoAppDetected):
		return CodeNoAppDetected
	case errors.Is(err, ErrCompileFailed):
		return CodeCompileFailed
	case errors.Is(err, ErrReleaseFailed):
		return CodeReleaseFailed
	case errors.Is(err, ErrSupplyFailed):
		return CodeSupplyFailed
	case errors.Is(err, ErrFinalizeFailed):
		return CodeFinalizeFailed
	}
	return CodeStagingFailed
}

// RequestError reports an invalid Request field. It wraps ErrInvalidRequest.
type RequestError struct {
	Field  string // the field, as in Go: "Buildpacks[1].URL"
	Reason string
}

// Error returns "staging: invalid request: FIELD: REASON".
func (e *RequestError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalidRequest, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidRequest.
func (e *RequestError) Unwrap() error { return ErrInvalidRequest }

package droplet

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/paaskit/paaskit/internal/archive"
)

// Sentinel errors. Callers branch on them with errors.Is; the errors
// returned wrap them together with the identifying value (a SHA-1, a key,
// an entry name).
var (
	// ErrNotFound: no droplet with that SHA-1 in the registry (or one that
	// changed on disk since it was stored and awaits Verify), no blob
	// under that key, or a 404 from an HTTP server.
	ErrNotFound = errors.New("droplet: not found")
	// ErrExist: Unpack's destination exists and is not an empty
	// directory.
	ErrExist = errors.New("droplet: already exists")
	// ErrInvalid: a bad argument, such as a SHA-1 that is not 40 hex
	// digits, a blob key with ".." or an empty URI, or a tree Pack cannot
	// represent (a name that is not UTF-8).
	ErrInvalid = errors.New("droplet: invalid argument")
	// ErrInUse: Destroy was asked to remove a droplet that has users.
	ErrInUse = errors.New("droplet: in use")
	// ErrHashMismatch: a droplet's bytes do not have the SHA-1 they were
	// announced with. The error is a *HashMismatchError.
	ErrHashMismatch = errors.New("droplet: SHA-1 mismatch")
	// ErrUnsafePath: an archive entry is absolute, climbs out with "..",
	// goes through a symbolic link, or is a hard link to a name outside
	// the tree. Wrapped in an *EntryError.
	ErrUnsafePath = errors.New("droplet: unsafe path")
	// ErrNotAllowed: an archive entry of a type droplets may not hold
	// (device node, FIFO, unknown type). Wrapped in an *EntryError.
	ErrNotAllowed = errors.New("droplet: entry type not allowed")
	// ErrLimitExceeded: an archive goes over the Limits, or a download
	// over the registry's maximum droplet size.
	ErrLimitExceeded = errors.New("droplet: limit exceeded")
	// ErrBadArchive: the droplet is not a valid (gzip, zstd or plain) tar
	// stream, or is truncated or corrupt.
	ErrBadArchive = errors.New("droplet: bad archive")
	// ErrInactive: a download received no byte for longer than the
	// registry's inactivity timeout. It is retried like other transient
	// errors; the last attempt's error is returned.
	ErrInactive = errors.New("droplet: transfer inactive")
	// ErrClosed: the Registry was closed.
	ErrClosed = errors.New("droplet: registry closed")
)

// EntryError reports the archive entry (Unpack) or file (Pack) that made
// the operation fail. Err wraps one of the sentinels above
// (ErrUnsafePath, ErrNotAllowed, ErrLimitExceeded, ErrBadArchive,
// ErrInvalid) or an OS error, so errors.Is works through it.
type EntryError struct {
	// Name is the entry's name as it appears in the archive, or the
	// file's path relative to the packed directory.
	Name string
	// Err is the cause; never nil.
	Err error
}

// Error returns "droplet: entry NAME: CAUSE".
func (e *EntryError) Error() string {
	return fmt.Sprintf("droplet: entry %q: %s", e.Name, strings.TrimPrefix(e.Err.Error(), "droplet: "))
}

// Unwrap returns the cause.
func (e *EntryError) Unwrap() error { return e.Err }

// HashMismatchError reports droplet bytes whose SHA-1 is not the one
// expected. Nothing was stored. errors.Is(err, ErrHashMismatch) is true.
type HashMismatchError struct {
	Expected string // SHA-1 asked for, lowercase hex
	Actual   string // SHA-1 of the bytes received, lowercase hex
	Source   string // where the bytes came from: a URI or a path; may be empty
}

// Error returns "droplet: SHA-1 mismatch: expected X, got Y (from SOURCE)".
func (e *HashMismatchError) Error() string {
	msg := fmt.Sprintf("droplet: SHA-1 mismatch: expected %s, got %s", e.Expected, e.Actual)
	if e.Source != "" {
		msg += " (from " + e.Source + ")"
	}
	return msg
}

// Is reports whether target is ErrHashMismatch.
func (e *HashMismatchError) Is(target error) bool { return target == ErrHashMismatch }

// StatusError is an HTTP response whose status is not a success. Server
// errors (5xx) are retried by Download; client errors (4xx) are not.
// errors.Is(err, ErrNotFound) is true for a 404.
type StatusError struct {
	Method     string // request method
	URL        string // request URL, without user info
	StatusCode int    // e.g. 404
	Status     string // e.g. "404 Not Found"
}

// Error returns "droplet: METHOD URL: STATUS".
func (e *StatusError) Error() string {
	return fmt.Sprintf("droplet: %s %s: %s", e.Method, e.URL, e.Status)
}

// Is reports whether target is ErrNotFound and the status is 404.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// Temporary reports whether retrying may succeed: server errors (5xx)
// are; client errors (4xx, 408 and 429 included) and the rest are not.
func (e *StatusError) Temporary() bool {
	return e.StatusCode >= 500
}

// labelled is an error of package archive relabelled with one of this
// package's sentinels, keeping the archive error (and any OS error in
// it) in the chain.
type labelled struct {
	sentinel error
	detail   string
	err      error
}

func (e *labelled) Error() string {
	if e.detail == "" {
		return e.sentinel.Error()
	}
	return e.sentinel.Error() + ": " + e.detail
}

func (e *labelled) Unwrap() []error { return []error{e.sentinel, e.err} }

// archiveSentinels maps the sentinels of package archive to ours.
var archiveSentinels = []struct{ from, to error }{
	{archive.ErrUnsafePath, ErrUnsafePath},
	{archive.ErrNotAllowed, ErrNotAllowed},
	{archive.ErrLimitExceeded, ErrLimitExceeded},
	{archive.ErrBadArchive, ErrBadArchive},
}

// fromArchive turns an error of package archive into one of this
// package: an *archive.EntryError becomes an *EntryError, and archive's
// sentinels become ours. op prefixes errors that name no entry.
func fromArchive(op string, err error) error {
	if err == nil {
		return nil
	}
	var ee *archive.EntryError
	if errors.As(err, &ee) {
		return &EntryError{Name: ee.Name, Err: relabel(ee.Err)}
	}
	return fmt.Errorf("droplet: %s: %w", op, relabel(err))
}

// relabel swaps an archive sentinel at the head of err for ours.
func relabel(err error) error {
	for _, s := range archiveSentinels {
		if errors.Is(err, s.from) {
			detail := strings.TrimPrefix(err.Error(), s.from.Error())
			detail = strings.TrimPrefix(detail, ": ")
			return &labelled{sentinel: s.to, detail: detail, err: err}
		}
	}
	if strings.HasPrefix(err.Error(), "archive: ") {
		return &stripped{err}
	}
	return err
}

// stripped is an error of package archive shown without its prefix.
type stripped struct{ err error }

func (e *stripped) Error() string { return strings.TrimPrefix(e.err.Error(), "archive: ") }
func (e *stripped) Unwrap() error { return e.err }

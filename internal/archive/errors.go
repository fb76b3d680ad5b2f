package archive

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers branch on them with errors.Is. The errors that
// Extract and Create return for one entry are *EntryError values wrapping
// one of these (or an OS error), so errors.As gives the entry's name.
var (
	// ErrUnsafePath: an entry's name or hard-link target escapes the
	// destination, lexically ("../x") or through a symbolic link that
	// points outside it (absolute, or climbing out with ".."). Nothing is
	// written for that entry and extraction stops.
	ErrUnsafePath = errors.New("archive: unsafe path")
	// ErrLimitExceeded: the archive declares more bytes or entries than
	// the Limits allow. Extraction stops before writing past the limit.
	ErrLimitExceeded = errors.New("archive: limit exceeded")
	// ErrBadArchive: the stream is not a valid tar archive, or it is
	// truncated or corrupt (this includes a bad gzip or zstd stream in
	// ExtractAuto). Read errors of the caller's reader are returned as
	// they are, not as ErrBadArchive.
	ErrBadArchive = errors.New("archive: bad archive")
	// ErrNotAllowed: an entry's type is not allowed by the Options (a
	// device node, FIFO or unknown type with RefuseSpecial). Nothing is
	// written for that entry and extraction stops.
	ErrNotAllowed = errors.New("archive: entry type not allowed")
)

// EntryError reports the archive entry (or, for Create, the file) that
// made an operation fail. Err is the cause: one of the sentinels above,
// possibly with detail, or an OS error such as an *fs.PathError, so that
// errors.Is(err, ErrUnsafePath) and errors.Is(err, fs.ErrPermission) both
// work through it.
type EntryError struct {
	// Name is the entry's name as it appears in the archive (for Create,
	// the path relative to the source directory).
	Name string
	// Err is the cause; never nil.
	Err error
}

// Error returns "archive: entry NAME: CAUSE".
func (e *EntryError) Error() string {
	return fmt.Sprintf("archive: entry %q: %s", e.Name, strings.TrimPrefix(e.Err.Error(), "archive: "))
}

// Unwrap returns the cause.
func (e *EntryError) Unwrap() error { return e.Err }

// entryErr builds an *EntryError whose cause wraps sentinel with a detail
// message and, when cause is not nil, the underlying error as well.
func entryErr(name string, sentinel error, detail string, cause error) error {
	var err error
	switch {
	case cause != nil && detail != "":
		err = fmt.Errorf("%w: %s: %w", sentinel, detail, cause)
	case cause != nil:
		err = fmt.Errorf("%w: %w", sentinel, cause)
	case detail != "":
		err = fmt.Errorf("%w: %s", sentinel, detail)
	default:
		err = sentinel
	}
	return &EntryError{Name: name, Err: err}
}

package server

import (
	"io/fs"
	"log/slog"
	"maps"
)

// Option configures a Server. Options only set fields; New validates.
type Option func(*options)

type options struct {
	logger          *slog.Logger
	socketMode      fs.FileMode
	socketGID       int
	maxRequestBytes int64
	maxContainers   uint64
	stacks          map[string]string
	defaultStack    string
}

// Defaults of the options.
const (
	DefaultSocketMode      fs.FileMode = 0o660
	DefaultMaxRequestBytes int64       = 1 << 20
)

func defaultOptions() options {
	return options{
		socketMode:      DefaultSocketMode,
		socketGID:       -1,
		maxRequestBytes: DefaultMaxRequestBytes,
	}
}

// WithLogger sets the logger; nil (the default) logs nothing. Requests
// are logged at debug level, failures the server did not expect at warn.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithSocketMode sets the permissions of the socket that ListenAndServe
// creates (default DefaultSocketMode, 0660). Anyone who can connect can
// create containers with any bind mount, which amounts to root on the
// host: New refuses a mode that grants anything to others (o+rwx) or
// execute to anyone.
func WithSocketMode(mode fs.FileMode) Option { return func(o *options) { o.socketMode = mode } }

// WithSocketGroup makes the socket that ListenAndServe creates owned by
// group gid, so that the members of that group may use it (with the
// default mode). Default: the process's group.
func WithSocketGroup(gid int) Option { return func(o *options) { o.socketGID = gid } }

// WithMaxRequestBytes caps the JSON body of a request (default
// DefaultMaxRequestBytes); larger bodies get CodeTooLarge. Tar streams
// sent to stream in are not capped by it (a container's disk limit
// caps them).
func WithMaxRequestBytes(n int64) Option { return func(o *options) { o.maxRequestBytes = n } }

// WithMaxContainers sets the number of containers the capacity answer
// reports (garden's MaxContainers), typically the size of the Manager's
// network pool; default 0, no fixed limit. It is reported, not
// enforced: the Manager's pools enforce their own sizes.
func WithMaxContainers(n uint64) Option { return func(o *options) { o.maxContainers = n } }

// WithStacks names root filesystems: a create request whose RootFS has no
// leading "/" names one of them, and an empty RootFS takes the default
// one (see WithDefaultStack). The map is copied.
func WithStacks(stacks map[string]string) Option {
	return func(o *options) { o.stacks = maps.Clone(stacks) }
}

// WithDefaultStack names the stack (see WithStacks) used by create
// requests without a RootFS. Default: none, such requests are invalid.
func WithDefaultStack(name string) Option { return func(o *options) { o.defaultStack = name } }

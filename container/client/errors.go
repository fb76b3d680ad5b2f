package client

import (
	"errors"

	"github.com/paaskit/paaskit/container/server/wire"
)

// Errors of the client itself. The server's errors come back as the
// container package's sentinels (container.ErrNotFound, a
// *container.SpecError, …; see package wire), so errors.Is and errors.As
// work as they do against an in-process container.Manager.
var (
	// ErrUnavailable: the server could not be reached (no socket, nobody
	// listening, permission denied: the error also wraps the system
	// error) or went away before answering. Retrying later may work.
	ErrUnavailable = errors.New("client: server unavailable")
	// ErrDetached: a process stream ended before the process exited: the
	// server shut down or restarted, or Process.Close was called. The
	// process keeps running; Process.Reattach (or Container.Attach with
	// Process.Offsets) continues its output where it stopped.
	ErrDetached = errors.New("client: process stream detached")
	// ErrProtocol: the server's answer could not be understood (not a
	// paaskit warden server, or an incompatible version).
	ErrProtocol = errors.New("client: protocol error")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client: closed")

	// ErrBadRequest and ErrTooLarge are the server's refusals of a
	// malformed or oversized request (wire.ErrBadRequest,
	// wire.ErrTooLarge).
	ErrBadRequest = wire.ErrBadRequest
	ErrTooLarge   = wire.ErrTooLarge
)

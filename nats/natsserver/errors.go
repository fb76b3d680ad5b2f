package natsserver

import "errors"

// Sentinel errors.
var (
	// ErrNotReady is returned by [Start] when the server did not become
	// ready to accept clients before ctx ended or because it failed to
	// start (port in use, bad store directory); the error says which.
	ErrNotReady = errors.New("natsserver: server not ready")

	// ErrInvalidConfig is returned by [Start] for options that cannot
	// work together or out-of-range values.
	ErrInvalidConfig = errors.New("natsserver: invalid configuration")

	// ErrServerClosed is returned by [Server.InProcessConn] after
	// Shutdown.
	ErrServerClosed = errors.New("natsserver: server closed")
)

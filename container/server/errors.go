package server

import "errors"

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown
// or Close, as net/http's ErrServerClosed.
var ErrServerClosed = errors.New("server: closed")

// ErrSocketInUse: another server answers on the socket path.
var ErrSocketInUse = errors.New("server: socket in use")

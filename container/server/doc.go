// Package server serves a container.Manager to other processes, as
// warden's daemon did on warden.sock: HTTP/JSON on a unix socket, one
// route per warden request (ping, list, create, destroy, stop, info,
// run/spawn, attach/link/stream, net_in, net_out, stream_in/copy_in,
// stream_out/copy_out, limit_memory, limit_disk, limit_cpu,
// limit_bandwidth, metrics, bulk info and metrics, properties, grace
// time, capacity, quota), with process streams (stdin, stdout, stderr,
// exit status) framed over an upgraded connection. Package wire documents
// the protocol; package container/client is its Go client; servertest
// starts a server for a test.
//
//	m, _ := container.New("/var/lib/warden/depot")
//	srv, _ := server.New(m, server.WithLogger(log))
//	go srv.ListenAndServe("/run/warden.sock")
//	// on SIGTERM:
//	srv.Shutdown(ctx) // drains requests, detaches streams
//	m.Close()         // containers and processes keep running
//
// # Security
//
// Whoever can connect to the socket can create containers with any root
// filesystem and bind mount of the host, so access to the socket is
// access to root. The socket is made with mode 0660 (WithSocketMode
// allows only stricter ones) and the process's group unless
// WithSocketGroup names another; it appears at its path with those
// permissions already set.
//
// # Restarts
//
// Containers and processes belong to the Manager's depot, not to the
// server: Shutdown and Close leave them running. A server started later on
// a Manager opened on the same depot finds them again (the Manager
// re-discovers them), and a client attaches to a process from the byte
// offsets it had received to get the rest of its output, without loss or
// repetition (client.WithReattach does it by itself). A process's
// standard input belongs to the stream that started it and is closed
// when that stream ends.
//
// # Grace time and properties
//
// Properties can be set and removed, and the grace time changed, as
// garden's SetProperty, RemoveProperty and SetGraceTime did. The server
// also records the grace time as the property wire.PropertyGraceTime (as
// guardian did), which the grace time route reads, also after a restart;
// that key is reserved.
//
// # Resources
//
// Every request runs on the goroutine net/http gives it; a process stream
// holds one more (reading the client's input) and the container package's
// follower of the process. When a stream ends early (client gone,
// Shutdown) its handler returns at once, but the follower lives on until
// the process exits or the Manager is closed: the container package offers
// no way to stop following. Bodies of JSON requests are capped
// (WithMaxRequestBytes); headers are capped at 64 KiB and must arrive
// within 30 s.
//
// # Platforms
//
// The server builds everywhere; serving containers needs what package
// container needs (Linux, root). The capacity route needs Linux
// (/proc/meminfo).
package server

// Package wire is the protocol between a warden server (package
// container/server) and its clients (package container/client): the
// routes, the typed requests and responses, the error codes and the
// framing of process streams. Go programs use package client and never
// need this one; it is exported so that the protocol is documented in one
// place and other languages can speak it.
//
// # Transport
//
// HTTP/1.1 over a unix socket (warden's warden.sock), one JSON document per
// request and response body (Content-Type application/json). Request
// bodies are decoded strictly: an unknown field, trailing data or a body
// over the server's limit (1 MiB by default) is refused with
// [CodeBadRequest] or [CodeTooLarge]. Container types (container.Spec,
// container.ProcessSpec, container.Info, …) cross the wire as
// encoding/json makes them of the Go structs, under their Go field names
// (or their json tags where they have some), so that fields added to them
// later travel without a protocol change; the types of this package use
// snake_case names.
//
// The routes, after garden's ({handle} and {id} are container handles and
// process ids; the bulk routes are not under /containers/, so that no
// handle hides them):
//
//	GET    /ping                                      → {}          (warden ping → pong)
//	GET    /capacity                                  → Capacity
//	GET    /quota                                     → QuotaReport (warden repquota)
//	GET    /containers?KEY=VALUE…                     → []ContainerEntry (list, properties filter)
//	POST   /containers                CreateRequest   → ContainerEntry
//	GET    /bulk_info?handles=a,b                     → map[handle]BulkInfoEntry
//	GET    /bulk_metrics?handles=a,b                  → map[handle]BulkMetricsEntry
//	GET    /containers/{handle}                       → ContainerEntry (lookup)
//	DELETE /containers/{handle}                       → {}          (destroy)
//	PUT    /containers/{handle}/stop  StopRequest     → {}
//	GET    /containers/{handle}/info                  → container.Info
//	GET    /containers/{handle}/metrics               → container.Metrics
//	GET    /containers/{handle}/limits                → container.Limits
//	PUT    /containers/{handle}/limits container.Limits → container.Limits
//	PUT    /containers/{handle}/limits/memory  LimitMemoryRequest → container.Limits
//	PUT    /containers/{handle}/limits/cpu     LimitCPURequest    → container.Limits
//	PUT    /containers/{handle}/limits/disk    LimitDiskRequest   → container.Limits
//	PUT    /containers/{handle}/limits/bandwidth container.Bandwidth → container.Bandwidth
//	POST   /containers/{handle}/net/in   NetInRequest → container.PortMapping
//	POST   /containers/{handle}/net/out  container.NetOutRule → {}
//	PUT    /containers/{handle}/files?path=P&user=U   tar body → {}  (stream in, copy_in)
//	GET    /containers/{handle}/files?path=P          → tar body    (stream out, copy_out)
//	GET    /containers/{handle}/properties            → map[string]string
//	GET    /containers/{handle}/properties/{key}      → PropertyResponse
//	PUT    /containers/{handle}/properties/{key} PropertyRequest → {}
//	DELETE /containers/{handle}/properties/{key}      → {}
//	GET    /containers/{handle}/grace_time            → GraceTimeResponse
//	PUT    /containers/{handle}/grace_time GraceTimeRequest → {}
//	POST   /containers/{handle}/processes  RunRequest → process stream (run, spawn)
//	GET    /containers/{handle}/processes/{id}?…      → process stream (attach, link, stream)
//	PUT    /containers/{handle}/processes/{id}/signal SignalRequest → {}
//	PUT    /containers/{handle}/processes/{id}/tty    container.TTYSpec → {}
//
// Every query parameter of GET /containers is a property to match. A
// stream out that fails after its answer started carries the error in the
// trailer [TrailerStreamError].
//
// # Errors
//
// A failed request answers with an HTTP error status and an [Error] body:
// a [Code] that says what kind of failure it is, the server's message,
// and for invalid specs the field and the reason. [Error.Unwrap] gives back
// the sentinel the code stands for (container.ErrNotFound for
// [CodeNotFound], a *container.SpecError for [CodeInvalidSpec],
// fs.ErrNotExist for [CodeNotExist], …) so that errors.Is and errors.As
// work on the client as they do against an in-process Manager. The HTTP
// status is informational; the code decides.
//
// # Process streams
//
// Run and attach ask to switch protocols: the request carries
// "Connection: Upgrade" and "Upgrade: paaskit-process/1" ([Upgrade]).
// Everything that can fail before the process is streamed (a bad spec, an
// unknown handle or process, a program that does not exist) fails as an
// ordinary error response. Otherwise the server answers 101 Switching
// Protocols with the process's id and pid in the [HeaderProcessID] and
// [HeaderProcessPID] headers, and from then on both directions carry
// frames:
//
//	+--------+----------------------+-----------------+
//	| type   | length               | payload         |
//	| 1 byte | 4 bytes, big endian  | length bytes    |
//	+--------+----------------------+-----------------+
//
// From the server: [FrameStdout] and [FrameStderr] carry output bytes, in
// order, starting at the offsets the client asked for; [FrameExit] carries
// an [Exit] (JSON) once the process has exited and all its output was
// sent, after which the server closes the connection. From the client:
// [FrameStdin] carries input bytes and [FrameStdinClose] (empty) closes the
// process's standard input. A payload longer than [MaxFrame] is a protocol
// error that ends the stream. Window size changes and signals are separate
// requests (…/tty, …/signal), not frames, so that they have answers.
//
// A stream that ends without an exit frame was detached: the client went
// away, or the server shut down or restarted. The process keeps running;
// attach again with the byte offsets received so far to get the rest of
// its output without loss or repetition. The process's standard input
// belongs to the stream that started it and is closed when that stream
// ends.
package wire

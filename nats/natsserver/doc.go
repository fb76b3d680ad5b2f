// Package natsserver runs a NATS server (github.com/nats-io/nats-server)
// inside the process: the single-machine default of paaskit, where the
// DEA, the stager, the controller and the router of one machine talk
// through it. A deployment that outgrows one machine points its buses at
// a real NATS cluster instead and does not import this package, so it
// does not link the server.
//
// [Start] starts a server on a free loopback port (or a given one, or
// with no listener at all, reachable only in-process through
// [Server.InProcessConn]) and returns once it accepts clients. JetStream
// is off unless asked for with explicit memory and storage limits
// ([WithJetStream]). [Server.Shutdown] disconnects clients and returns
// once every goroutine of the server has ended.
//
// The server does not install signal handlers and logs nothing unless
// given a *slog.Logger ([WithLogger]). It needs no privileges. A Server
// is safe for concurrent use.
package natsserver

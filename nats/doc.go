// Package nats carries the DEA protocol: every message of Cloud Foundry's
// DEA (dea.advertise, dea.<id>.start, dea.stop, dea.find.droplet,
// staging.<id>.start, router.register, droplet.exited, dea.heartbeat, …)
// as a typed Go struct with the wire's field names, a Bus on the official
// NATS client with request/reply, queue groups and reconnects, and an
// embedded NATS server as the single-machine default.
//
// It does not decide what to do with the messages; the daemons under
// examples/ do. It needs no privileges and works on every platform.
package nats

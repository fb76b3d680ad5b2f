// Package instance runs app instances as the Cloud Foundry DEA did: an
// instance moves through eight states (BORN, STARTING, RUNNING, STOPPING,
// STOPPED, CRASHED, DELETED, RESUMING) along transitions kept as data;
// a registry finds instances by id, app or request fields; a resource
// manager accounts memory and disk; health checks, crash handling and
// reapers keep the registry true; snapshots written on every change let
// a restarted agent resume its instances by re-attaching to their
// containers.
//
// It does not stage apps (see package staging) nor speak NATS (see package
// nats). It consumes containers through an interface it declares, so it
// needs no privileges itself; running real instances needs whatever the
// container implementation needs (Linux and root for package container).
package instance

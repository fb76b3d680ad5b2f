// Package paaskit is a Go SDK for building container-based PaaS runtimes,
// in the lineage of Cloud Foundry's first runtime: warden (containers),
// the stager (source to droplet) and the DEA (the droplet execution agent
// that runs app instances). This package holds only documentation; the
// work is done by its subpackages, which compose as follows.
//
//   - [github.com/paaskit/paaskit/container] is warden: Linux containers
//     (namespaces, overlay root filesystems, cgroups) whose PID 1 is a small
//     agent that runs processes, keeps their output and exit status on disk,
//     and lets a new daemon re-attach to them after a restart.
//   - [github.com/paaskit/paaskit/droplet] is the unit of deployment: packing
//     and safe unpacking of droplet tarballs, a registry keyed by SHA-1,
//     verified downloads and blob stores.
//   - [github.com/paaskit/paaskit/staging] is the stager: it runs buildpacks
//     on app source inside a container and produces a droplet.
//   - [github.com/paaskit/paaskit/instance] is the DEA's core: app instances,
//     their eight-state lifecycle, health checks, crash reaping, snapshots
//     and resource accounting.
//   - [github.com/paaskit/paaskit/nats] is the DEA protocol as typed
//     messages, a bus on the official NATS client, and an embedded server.
//
// Dependencies point one way: instance uses droplet and, through an
// interface it declares, container; staging uses container and droplet;
// container, droplet and nats use none of the others. The programs under
// examples/ assemble the packages into a full DEA, a warden daemon, a
// stager and a benchmark.
//
// Everything outside internal/ and examples/ is public API.
package paaskit

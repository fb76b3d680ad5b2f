// Package container creates and manages Linux containers the way Cloud
// Foundry's warden did: each container is a set of namespaces over an
// overlay root filesystem, held in cgroups, whose PID 1 is a small agent
// that runs processes on request, writes their output and exit status to
// the container's directory in the depot, and so lets a [Manager] re-attach
// to them after the daemon that started them was restarted or killed.
//
// It is not an OCI runtime and reads no OCI bundles; it does not pull
// images. A container's root filesystem is a stack: a directory or a tarball
// used read-only as the lower layer of an overlay.
//
// # Platforms and privileges
//
// Containers need Linux and root (CAP_SYS_ADMIN for namespaces and mounts,
// write access to the cgroup hierarchies). cgroup v1 and v2 are both
// supported. On other platforms the package builds, and its functions
// return errors that wrap [errors.ErrUnsupported].
//
// # The agent
//
// A program that uses this package must call [Init] first thing in main
// (and in TestMain): the container agent is the same binary re-executed,
// and Init is where it takes over.
package container

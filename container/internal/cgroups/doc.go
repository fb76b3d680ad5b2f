// Package cgroups places containers in Linux control groups: it creates a
// cgroup per container, sets its memory, CPU, pids and device limits,
// moves processes in, reads accounting, reports OOM kills, kills
// everything inside and removes the cgroup. The container package uses it;
// nothing else should.
//
// # What it does not do
//
// No systemd integration (cgroups are created directly in the cgroup file
// system, not as scopes or slices through D-Bus), no nested cgroups below
// a container's, no CPU quotas, cpusets, block I/O or huge page limits,
// no threaded cgroups, and on cgroup v2 no device filtering yet: that
// needs an eBPF program attached to the cgroup, and [Resources.Devices] is
// ignored there.
//
// # cgroup v1 and v2
//
// [DetectMode] tells the layouts apart. On cgroup v1 (including the
// hybrid layout with a controller-less cgroup2 at /sys/fs/cgroup/unified)
// a cgroup is one directory of the same path in each of the memory, cpu,
// cpuacct, pids, devices and freezer controllers that is mounted below
// /sys/fs/cgroup. Creating those directories and adding processes go through
// github.com/containerd/cgroups/v3/cgroup1. Limits, statistics, OOM
// notification, killing and removal are plain file I/O: cgroup1 skips zero
// values (so it cannot lift a limit again), its Delete and Freeze sleep
// fixed intervals or wait without bound, and its statistics come as
// protobuf messages with more than we need.
//
// On cgroup v2 everything is plain file I/O in the unified tree at
// /sys/fs/cgroup. containerd's cgroup2 package would work on the same
// files, but it brings cilium/ebpf, logrus and go-systemd along for a
// dozen reads and writes, it too cannot lift limits, and its
// Manager.EventChan starts a goroutine nobody can stop. The v2 code is
// tested without root against fixture trees in temporary directories;
// the v1 code against the host's cgroups, as root.
//
// The two differ where the kernel does:
//
//   - Memory: v1 sets memory.limit_in_bytes and memory.memsw.limit_in_bytes
//     (when swap is accounted) to the same value, v2 memory.max and
//     memory.swap.max=0. Either way a container gets no swap.
//   - CPU: v1 cpu.shares; v2 cpu.weight converted from the shares (see
//     [Resources.CPUShares] for the formula).
//   - OOM: v1 signals an eventfd registered through cgroup.event_control,
//     v2 changes memory.events, watched with inotify. Both count kills in
//     an "oom_kill" line ([ParseOOMKill]).
//   - Kill: v2 writes cgroup.kill (Linux 5.14+); v1 freezes the cgroup,
//     kills every process and thaws it.
//   - Starting a process directly in the cgroup ([Cgroup.CgroupFD],
//     clone3 with CLONE_INTO_CGROUP) exists on v2 only.
//
// # Privileges and platforms
//
// Creating, changing and removing cgroups and moving processes need root
// (or a delegated subtree on v2). Reading statistics needs read access to
// the cgroup files. On other platforms than Linux, every call fails with
// an error wrapping errors.ErrUnsupported and [DetectMode] reports
// [Unavailable]; the parsing functions work everywhere.
//
// # Lifetimes and concurrency
//
// A [Cgroup] is a handle on kernel state: it holds no descriptors and no
// goroutines, and its methods are safe for concurrent use. The kernel
// state outlives it until [Cgroup.Delete]. An [OOMWatcher] owns a
// goroutine and a descriptor until its Close. Calls that wait (Kill,
// Delete, Add on a task still being forked) poll with a short backoff and
// give up after a bounded time; none takes a context.
package cgroups

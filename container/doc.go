// Package container creates and manages Linux containers the way Cloud
// Foundry's warden did: each container is a set of namespaces over an
// overlay root filesystem, held in cgroups, whose PID 1 is a small agent
// that runs processes on request, writes their output and exit status to
// the container's directory in the depot, and so lets a [Manager] re-attach
// to them after the daemon that started them was restarted or killed.
//
// It is not an OCI runtime and reads no OCI bundles; it does not pull
// images. A container's root filesystem is a stack: a directory or a
// tarball, used read-only as the lower layer of an overlay.
//
// # Platforms and privileges
//
// Containers need Linux and root (CAP_SYS_ADMIN for namespaces and mounts,
// write access to the cgroup hierarchies); CAP_SYS_RESOURCE is not needed.
// cgroup v1 and v2 are both supported. On other platforms the package
// builds, [New] returns an error wrapping [errors.ErrUnsupported] and
// [Init] returns false. Spec validation works everywhere.
//
// # The agent
//
// A program that uses this package must call [Init] first thing in main
// (and in TestMain): the agent is the same binary re-executed, and Init is
// where it takes over. The agent runs in new mount, pid, uts, ipc and
// network namespaces (the network namespace holds only a loopback device
// that is down; networking is another package's job), mounts the overlay,
// the bind mounts, /proc (with Docker's masked and read-only paths), a
// read-only /sys and a minimal /dev (null, zero, full, random, urandom,
// tty, a new devpts instance with ptmx, shm, mqueue), sets the host name
// and pivots into the new root. The host's cgroup file system is not
// mounted inside. It serves requests on a unix socket (mode 0600) in the
// container's depot directory and reaps every process of its namespace.
// User namespaces are not used yet.
//
// Every process starts in the container's cgroup, which holds the limits;
// the agent itself stays in the cgroup of the Manager's process, so its
// threads and memory do not count against the container's limits and the
// OOM killer acting on the container does not choose it. On cgroup v1 the
// agent's forking thread joins the container's cgroups (v1 places
// threads, not processes) and so counts as one task against the pids
// limit. Processes are forked from one agent thread
// whose capability bounding set is Docker's default 14 (root processes get
// exactly those; other users get none) and which has no_new_privs set.
// On cgroup v1 the devices controller allows only the devices of /dev
// (mknod of others is refused); cgroup v2 has no device filter here yet, so
// CAP_MKNOD is dropped there instead.
//
// # Processes and their output
//
// [Container.Run] starts a process and returns at once; [Process.Wait]
// returns its exit status. Output goes through pipes to the agent, which
// writes it to files in the depot (capped, see [WithOutputLimit]) and
// writes the exit status, atomically, after the output. [Container.Attach]
// streams a process's output from any offset and follows it live; it works
// for processes that already exited and after the Manager was restarted,
// even by a new program. A process that exits within a millisecond still
// has all its output and its status. The status file survives the death of
// the Manager's process but not a reboot, which ends the containers too.
//
// # Lifetimes
//
// A Manager owns goroutines and timers; [Manager.Close] releases them and
// leaves containers running. [Container.Stop] ends a container's
// processes (TERM, then KILL after the stop timeout) and keeps its files;
// [Container.Destroy] kills everything including the agent and removes the
// container's cgroups and depot directory. Its mounts live only in the
// container's mount namespace and disappear with the agent, so the host's
// mount table never holds them. A Manager opened on an existing depot
// re-discovers its containers (checking each agent's pid and start time)
// and cleans up those whose agent is gone and any left half-created.
//
// Grace time ([Spec.GraceTime]) is warden's: a container that sees no
// activity for that long is destroyed. Activity is any method call on the
// container or on its processes, and any process being streamed or waited
// on; [EventGraceExpired] is sent when it happens.
//
// # Hooks and the console
//
// Hooks (WithHooks) run a library user's code at warden's four points
// around clone and pivot_root and at three more on the host; see Hooks.
// Every container has a /dev/console, a terminal of its own devpts whose
// output is kept like a process's, under the id ConsoleID.
//
// # The depot
//
// A depot directory holds containers/<handle>/ (state.json, rootfs/,
// upper/, work/, agent.sock, agent.log and processes/<id>/ with stdout,
// stderr and exit.json) and stacks/<sha256>/ for imported stack tarballs.
// Two Managers should not use one depot at the same time.
//
// # Concurrency
//
// Manager, Container and Process are safe for concurrent use.
package container

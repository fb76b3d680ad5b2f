// Package instance runs app instances as Cloud Foundry's DEA (dea_ng)
// did, with what Diego added where it helps: the instance state machine,
// the start and stop sequences, health checks, crash handling, a
// registry, resource accounting, reapers, and snapshots that let a
// restarted agent resume its instances without restarting them.
//
// It drives containers and droplets through small interfaces it declares
// itself (Containers, Container, Process, DropletSource), so it is tested
// with the fakes of package instancetest and runs for real with package
// container (NewContainerBackend) and a droplet registry. It does not
// stage apps (package staging) nor speak NATS (package nats): a DEA
// daemon turns messages into Specs and Filters and events into messages.
//
// # States
//
// An instance is BORN, STARTING, RUNNING, STOPPING, STOPPED, CRASHED,
// DELETED, RESUMING or EVACUATING (State). The legal transitions are a
// table (State.Next, CheckTransition); an illegal one is a
// *TransitionError naming from and to. Every transition stamps the time
// (state_timestamp and state_<state>_timestamp) and delivers three
// events, Exiting(from), Transition(from, to) and Entering(to), to the
// listeners (Manager.Listen), in order, on one goroutine, outside locks:
// that is where a DEA registers routes (entering RUNNING), unregisters
// them (entering STOPPING, CRASHED), sends heartbeats and droplet.exited.
// DELETED is where STOPPED and reaped CRASHED instances go as they leave
// the registry.
//
// # Start
//
// Manager.Create registers a BORN instance, reserving its memory and
// disk (or registers it CRASHED with "Not enough memory resource
// available." when they do not fit, as dea_ng did). Manager.Start then:
//
//   - fetches the droplet (one Fetch shared by concurrent starts of the
//     same droplet) and, in parallel, creates the container with the
//     instance's limits: memory, cpu shares = memory MB / 8 within 1–256,
//     a pids limit (WithNprocLimit), RLIMIT_NOFILE = fds; maps a host port
//     to the same container port (NetIn) and applies the egress rules;
//   - extracts the droplet on the host into the instance's home
//     directory, <BaseDir>/instances/<id>, which the container
//     bind-mounts at /home/vcap. The extraction is done by this process,
//     outside the container's memory cgroup, so unpacking never kills a
//     small app (dea_ng ran tar in the container, and 128 MB apps died of
//     it). Files are given to the app user (WithUser);
//   - runs the start command (the Spec's, else staging_info.yml's)
//     through the launcher with the Cloud Foundry environment
//     (Environment: VCAP_APPLICATION with the DEA's fields, VCAP_SERVICES,
//     PORT, VCAP_APP_PORT, VCAP_APP_HOST, MEMORY_LIMIT, HOME, TMPDIR,
//     CF_INSTANCE_*, DATABASE_URL). The launcher sources profile.d/*,
//     app/.profile.d/* and app/.profile, then execs the command with bash
//     (DefaultLauncher). It belongs with package staging; until staging
//     has one, this package has its own and WithLauncher replaces it;
//   - health-checks the instance (HealthCheck): a TCP connection to its
//     port, an HTTP GET answered 2xx, or the process being alive; the
//     default is port when the app has routes, process otherwise, as
//     dea_ng. The readiness timeout is the Spec's, else 60 s. An optional
//     liveness check keeps checking after RUNNING (Diego's; dea_ng had
//     none) and crashes the instance after a number of failures in a row.
//
// Any failure makes the instance CRASHED with a user-facing description
// ("failed to accept connections within health check timeout", "missing
// start command", "app instance exited", "out of memory", "failed to
// start") and Start returns a *StartError carrying it.
//
// # Stop, crash, restart
//
// Manager.Stop moves the instance to STOPPING and waits until the
// listeners have seen it (routes go first), then stops the container
// (TERM, its grace time, KILL), destroys it and removes the home
// directory; STOPPED, then DELETED. A stop that does not finish stays
// STOPPING and the stopping reaper tries again.
//
// When the process exits or is OOM-killed while STARTING, RUNNING,
// RESUMING or EVACUATING, the instance crashes: exit status and
// description ("out of memory" when the process was OOM-killed or the
// container recorded it, else "app instance exited"); its output and the
// app's logs/ are kept in <BaseDir>/crashes/<id> (Attributes.InstancePath)
// until reaped; the container is destroyed first, so a CRASHED instance
// holds disk but no memory. An EVACUATING instance whose process dies
// crashes too (dea_ng left it EVACUATING).
//
// As in the DEA, the controller decides about restarts. WithRestartPolicy
// turns on Diego's schedule instead (RestartPolicy).
//
// # Registry, resources, reapers
//
// The Registry finds instances by id, app and state, and by the fields
// of a dea.stop or dea.find.droplet message (Filter, as dea_ng's
// instances_filtered_by_message), and counts instances per app for
// advertisements. The ResourceManager accounts memory and disk: capacity
// × overcommit, reserved by state (§4.2 of the DEA: memory while the
// instance lives, disk until its crash is reaped) and by staging tasks.
//
// The reapers (ReaperConfig) remove orphaned crash directories, old
// crashes (the most recent per app is kept for the crash lifetime),
// crashes under disk pressure (oldest first), retry stuck stops, destroy
// orphaned containers (seen twice in a row) and remove unreferenced
// droplets. Each decision is a pure function; the Manager runs them on
// timers and as methods (ReapCrashes, …).
//
// # Snapshot and resume
//
// Every change of interest rewrites <BaseDir>/db/instances.json
// (Snapshot), atomically (a temporary file renamed over it), with
// dea_ng's field names, on a goroutine that coalesces changes. It is
// deliberately not synced to disk: it serves restarts of the DEA
// process, and containers do not survive a reboot of the machine.
// A new Manager on the same BaseDir rebuilds the registry with Resume:
// instances go BORN → RESUMING and, by re-attaching to their still
// running processes (Container.Attach), back to RUNNING (or EVACUATING)
// without being restarted; to CRASHED when the container or process is
// gone, or when the saved state was STARTING (dea_ng#152: it stayed
// STARTING forever); STOPPING ones are stopped. Unlike dea_ng, EVACUATING
// instances are saved too.
//
// # Not here
//
// Disk limits are reserved, not enforced: package container has no disk
// quota yet. The app's environment is passed as values, not through a
// shell, so "$VAR" in a value is not expanded as dea_ng's exports did.
// warden_job_id is a string (the container's process id), not dea_ng's
// number. Staging tasks are not written to the snapshot.
//
// # Platforms, privileges, concurrency
//
// The package needs no privileges itself; real instances need what the
// container implementation needs (Linux and root for package container).
// Manager, Registry, ResourceManager and Instance are safe for concurrent
// use. A Manager owns goroutines (dispatcher, snapshot writer, reapers,
// process watchers, liveness checks); Close stops them and leaves the
// instances running, Shutdown stops the instances first.
package instance

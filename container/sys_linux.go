package container

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/moby/sys/reexec"
	"github.com/paaskit/paaskit/container/internal/cgroups"
	"golang.org/x/sys/unix"
)

func init() {
	reexec.Register(agentName, agentMain)
}

// Init must be called first thing in main (and in TestMain) of every
// program that uses a Manager: when the program was re-executed as a
// container's agent, Init runs the agent and never returns. Otherwise it
// returns false at once.
func Init() bool {
	return reexec.Init()
}

func supported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("container: needs root (effective uid 0), running as uid %d: %w", os.Geteuid(), os.ErrPermission)
	}
	if cgroups.DetectMode() == cgroups.Unavailable {
		return fmt.Errorf("container: no cgroup hierarchy found: %w", errors.ErrUnsupported)
	}
	return nil
}

// start makes the container's directories and cgroup, hands them to an
// agent (a spare started ahead of need when there is one) and waits until
// the agent runs in its new root.
func (c *Container) start(ctx context.Context) (retErr error) {
	for _, d := range []string{"rootfs", "upper", "work", "processes"} {
		if err := os.Mkdir(filepath.Join(c.dir, d), 0o700); err != nil {
			return err
		}
	}
	// The overlay's root takes the upper directory's mode: the
	// container's users must be able to search it.
	for _, d := range []string{"rootfs", "upper"} {
		if err := os.Chmod(filepath.Join(c.dir, d), 0o755); err != nil {
			return err
		}
	}
	loop, err := c.diskPrepare()
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if loop != nil {
		defer loop.Close() // the agent's mount holds the device from then on
	}
	hooks := c.m.opts.hooks
	var sp *spareAgent
	if len(hooks.ParentBeforeClone) > 0 {
		// The hooks run before this container's agent exists: no spare.
		if err := c.runHooks(ctx, HookParentBeforeClone, hooks.ParentBeforeClone); err != nil {
			return err
		}
		sp, err = startAgent(c.m.reaper, nil)
	} else {
		sp, err = c.m.spares.take()
	}
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	defer sp.ctl.Close()
	c.state.AgentPID, c.state.AgentStartTime = sp.pid, sp.startTime
	// Only the container's processes live in its cgroup: the agent stays
	// in the Manager's, so its threads and memory do not count against
	// the container's limits and the OOM killer never picks it. A spare
	// brings a cgroup its forking thread has joined already.
	var cg *cgroups.Cgroup
	if sp.cg != nil {
		if err = sp.cg.Rename(c.state.CgroupPath); err == nil {
			cg = sp.cg
			err = cg.Update(cgroupResources(c.state.Spec.Limits))
		} else {
			sp.kill()
		}
	} else {
		cg, err = cgroups.New(c.state.CgroupPath, cgroupResources(c.state.Spec.Limits))
	}
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	c.cg = cg
	// From here teardown finds and kills the agent, and removes the
	// cgroup, through the state file.
	if err := c.saveState(); err != nil {
		sp.kill()
		return err
	}

	var files [agentFiles]*os.File
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	l, err := listenUnix(c.socketPath())
	if err != nil {
		return fmt.Errorf("agent socket: %w", err)
	}
	files[fileListener], err = l.File()
	l.Close() // the agent owns the socket from now on
	if err != nil {
		return err
	}
	if files[fileLog], err = os.OpenFile(filepath.Join(c.dir, "agent.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return err
	}
	hasOOM := true
	if files[fileOOM], err = os.Open(cg.OOMCounterFile()); errors.Is(err, fs.ErrNotExist) {
		hasOOM = false
		files[fileOOM], err = os.Open(os.DevNull)
	}
	if err != nil {
		return err
	}
	hasCgFD := true
	if files[fileCgroup], err = cg.CgroupFD(); errors.Is(err, errors.ErrUnsupported) {
		hasCgFD = false
		files[fileCgroup], err = os.Open(os.DevNull)
	}
	if err != nil {
		return err
	}
	cfg := &agentConfig{
		Handle:       c.handle,
		Rootfs:       filepath.Join(c.dir, "rootfs"),
		Lower:        c.state.Stack,
		Upper:        filepath.Join(c.dir, "upper"),
		Work:         filepath.Join(c.dir, "work"),
		ProcessesDir: c.processesDir(),
		Hostname:     c.state.Spec.Hostname,
		BindMounts:   c.state.Spec.BindMounts,
		Env:          c.state.Spec.Env,
		User:         c.state.Spec.User,
		OutputLimit:  c.m.opts.outputLimit,
		OOMFile:      hasOOM,
		NoNewPrivs:   !c.state.Spec.Security.AllowNewPrivileges,
		AppTasks:     cg.ThreadFiles(),
		AppCgFD:      hasCgFD,
	}
	if cfg.Caps, cfg.Seccomp, cfg.MaskedPaths, cfg.ReadonlyPaths, err = c.state.Spec.Security.resolved(); err != nil {
		return err
	}
	if cgroups.DetectMode() == cgroups.Unified {
		// No device filter on v2 yet: no mknod at all instead.
		cfg.Caps = slices.DeleteFunc(cfg.Caps, func(c int) bool { return c == unix.CAP_MKNOD })
	}
	if loop != nil {
		cfg.DiskDevice = loop.Name()
		cfg.DiskMount = filepath.Join(c.dir, "disk")
	}
	if ns := c.state.Net; ns != nil {
		cfg.ResolvConf = c.m.net.resolvConf()
		cfg.Hosts = fmt.Sprintf("127.0.0.1 localhost\n%s %s\n", ns.IP, c.state.Spec.Hostname)
	}

	cfg.ChildBeforePivot, cfg.ChildAfterPivot = hooks.ChildBeforePivot, hooks.ChildAfterPivot
	if sp.cg != nil {
		cfg.AppTasks = nil // the spare's thread is in the cgroup already
	}
	if err := c.runHooks(ctx, HookParentAfterClone, hooks.ParentAfterClone); err != nil {
		return err
	}
	cfg.HookState = c.hookState("")
	if err := sendConfig(sp.ctl, cfg, files); err != nil {
		return fmt.Errorf("configure agent: %w", err)
	}
	readyMsg := make(chan string, 1)
	go func() {
		b := make([]byte, 4096)
		n, _ := sp.ctl.Read(b)
		readyMsg <- strings.TrimSpace(string(b[:max(n, 0)]))
	}()
	// Child hooks have their own timeouts, added to the setup's.
	wait := c.m.opts.setupTimeout
	for _, h := range append(slices.Clone(hooks.ChildBeforePivot), hooks.ChildAfterPivot...) {
		wait += cmp.Or(h.Timeout, DefaultHookTimeout)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		sp.ctl.SetReadDeadline(time.Now())
		return fmt.Errorf("%w: setup took longer than %v", ErrAgent, wait)
	case msg := <-readyMsg:
		if fd, ok := strings.CutPrefix(msg, "ok disk="); ok && c.state.Disk != nil {
			c.state.Disk.AgentFD, _ = strconv.Atoi(fd)
			if err := c.imageBaseline(); err != nil {
				return fmt.Errorf("disk: %w", err)
			}
			msg = "ok"
		}
		if parts := strings.SplitN(msg, "\x00", 4); len(parts) == 4 && parts[0] == "hook" {
			return &HookError{Point: parts[1], Name: parts[2], Err: errors.New(parts[3])}
		}
		if msg != "ok" {
			if msg == "" {
				msg = "agent exited during setup"
				if b, err := os.ReadFile(filepath.Join(c.dir, "agent.log")); err == nil && len(b) > 0 {
					msg += ": " + strings.TrimSpace(string(b))
				}
			}
			return fmt.Errorf("%w: %s", ErrAgent, msg)
		}
	case <-ctx.Done():
		sp.ctl.SetReadDeadline(time.Now())
		return ctx.Err()
	}
	return c.watchOOM()
}

// listenUnix listens on a unix socket at path with mode 0600. The socket
// file is not removed when the listener is closed: the agent keeps using
// it. Paths too long for sun_path are bound through /proc/self/fd.
func listenUnix(path string) (*net.UnixListener, error) {
	addr := path
	if len(path) >= 100 {
		dir, err := os.Open(filepath.Dir(path))
		if err != nil {
			return nil, err
		}
		defer dir.Close()
		addr = fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	}
	// No umask games: the umask is the whole process's, and other
	// goroutines create files meanwhile. The socket's directory is 0700,
	// so no one else reaches it before the chmod.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(addr, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func dialUnix(ctx context.Context, d *net.Dialer, path string) (net.Conn, error) {
	if len(path) < 100 {
		return d.DialContext(ctx, "unix", path)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return d.DialContext(ctx, "unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)))
}

// procStartTime returns the start time of a process, in clock ticks since
// boot (field 22 of /proc/<pid>/stat).
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(string(b))
}

// killAgent kills the process with that pid if it is still the one that
// started at startTime (a pidfd pins the process while it is checked).
func killAgent(pid int, startTime uint64) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if st, err := procStartTime(pid); err == nil && st == startTime {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
}

// waitGone waits until the process with that pid and start time no longer
// runs (it may stay a zombie until its parent reaps it; that counts as
// gone). It waits on a pidfd, not by sleeping.
func waitGone(pid int, startTime uint64, timeout time.Duration) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return os.NewSyscallError("pidfd_open", err)
	}
	defer unix.Close(fd)
	if st, err := procStartTime(pid); err != nil || st != startTime {
		return nil // another process has that pid now
	}
	deadline := time.Now().Add(timeout)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return fmt.Errorf("container: agent pid %d still runs after %v", pid, timeout)
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("poll(pidfd)", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// reaper reaps the agents this process started (they are its children
// until it exits), on SIGCHLD, without touching other children.
type reaper struct {
	mu   sync.Mutex
	pids map[int]bool
	sig  chan os.Signal
	done chan struct{}
}

func newReaper() *reaper {
	r := &reaper{pids: map[int]bool{}, sig: make(chan os.Signal, 16), done: make(chan struct{})}
	signal.Notify(r.sig, syscall.SIGCHLD)
	go r.loop()
	return r
}

func (r *reaper) add(pid int) { r.pids[pid] = true } // caller holds r.mu

func (r *reaper) loop() {
	defer close(r.done)
	for range r.sig {
		r.mu.Lock()
		for pid := range r.pids {
			var ws unix.WaitStatus
			if n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); n == pid || errors.Is(err, unix.ECHILD) {
				delete(r.pids, pid)
			}
		}
		r.mu.Unlock()
	}
}

func (r *reaper) close() {
	signal.Stop(r.sig)
	close(r.sig)
	<-r.done
}

// follow streams a process's output files from the offsets in pio and
// returns its exit status once the status file exists and the output was
// drained. It waits for changes in the process's directory with the
// Manager's inotify watcher.
func (m *Manager) follow(ctx context.Context, dir string, pio ProcessIO) (ExitStatus, error) {
	sub, err := m.watcher.watch(dir)
	if err != nil {
		return ExitStatus{}, err
	}
	defer m.watcher.unwatch(sub)
	var files [2]*os.File
	for i, name := range []string{"stdout", "stderr"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return ExitStatus{}, err
		}
		defer f.Close()
		off := pio.StdoutOffset
		if i == 1 {
			off = pio.StderrOffset
		}
		if off > 0 {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return ExitStatus{}, err
			}
		}
		files[i] = f
	}
	writers := [2]io.Writer{pio.Stdout, pio.Stderr}
	recheck := time.NewTicker(time.Second)
	defer recheck.Stop()
	for {
		// Look for the status before draining: once it exists, the agent
		// has written everything the process printed before exiting.
		st, statusErr := readExit(dir)
		for i := range files {
			if err := drain(files[i], writers[i]); err != nil {
				return ExitStatus{}, err
			}
		}
		if statusErr == nil {
			return st, nil
		}
		if !errors.Is(statusErr, fs.ErrNotExist) {
			return ExitStatus{}, statusErr
		}
		select {
		case <-sub.changed:
		case <-recheck.C: // in case an event was lost
		case <-sub.gone:
			return ExitStatus{}, fmt.Errorf("container: process directory %s: %w", dir, ErrNotFound)
		case <-ctx.Done():
			return ExitStatus{}, ctx.Err()
		}
	}
}

// dirWatcher is one inotify instance shared by all the followers of a
// Manager. (Closing an inotify instance waits for an RCU grace period,
// milliseconds: one per process would make every Wait that slow.)
type dirWatcher struct {
	f    *os.File
	fd   int
	mu   sync.Mutex
	subs map[int32]map[*dirSub]bool // watch descriptor → subscribers
	done chan struct{}
}

// dirSub is one follower's subscription: changed receives a value (at
// most one pending) after every change in the directory; gone is closed
// when the directory is removed.
type dirSub struct {
	wd      int32
	changed chan struct{}
	gone    chan struct{}
}

func newDirWatcher() (*dirWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	w := &dirWatcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, subs: map[int32]map[*dirSub]bool{}, done: make(chan struct{})}
	go w.loop()
	return w, nil
}

func (w *dirWatcher) watch(dir string) (*dirSub, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wd, err := unix.InotifyAddWatch(w.fd, dir, unix.IN_MODIFY|unix.IN_MOVED_TO|unix.IN_CREATE|unix.IN_DELETE_SELF)
	if err != nil {
		return nil, &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	s := &dirSub{wd: int32(wd), changed: make(chan struct{}, 1), gone: make(chan struct{})}
	if w.subs[s.wd] == nil {
		w.subs[s.wd] = map[*dirSub]bool{}
	}
	w.subs[s.wd][s] = true
	return s, nil
}

func (w *dirWatcher) unwatch(s *dirSub) {
	w.mu.Lock()
	defer w.mu.Unlock()
	subs := w.subs[s.wd]
	if !subs[s] {
		return
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(w.subs, s.wd)
		unix.InotifyRmWatch(w.fd, uint32(s.wd))
	}
}

func (w *dirWatcher) loop() {
	defer close(w.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return // closed
		}
		w.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 { // events were lost: wake everyone
				for _, subs := range w.subs {
					for s := range subs {
						select {
						case s.changed <- struct{}{}:
						default:
						}
					}
				}
				continue
			}
			for s := range w.subs[ev.Wd] {
				if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_IGNORED) != 0 {
					delete(w.subs[ev.Wd], s)
					close(s.gone)
					continue
				}
				select {
				case s.changed <- struct{}{}:
				default:
				}
			}
			if ev.Mask&unix.IN_IGNORED != 0 {
				delete(w.subs, ev.Wd)
			}
		}
		w.mu.Unlock()
	}
}

func (w *dirWatcher) close() {
	w.f.Close()
	<-w.done
}

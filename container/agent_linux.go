package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/moby/sys/user"
	"github.com/paaskit/paaskit/container/internal/seccomp"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The agent is PID 1 of every container: the host program re-executed by
// the Manager with the name agentName as argv[0]; Init dispatches to
// agentMain. It starts with one inherited file descriptor, fdControl, a
// SOCK_SEQPACKET socket to the Manager. The agent may be started ahead of
// need (a spare, see spare_linux.go) and waits there for one message: its
// agentConfig as JSON, with the files of agentFiles attached (SCM_RIGHTS).
// It answers "ok" once the container is set up, or the error that stopped
// it, and exits when the socket closes before a message arrives.
const fdControl = 3

// fdBinary is the sealed in-memory copy of the program that the agent was
// executed from (see sealedSelf); the agent closes it first thing.
const fdBinary = 4

// agentFiles are the files sent with the config, in this order.
const (
	fileListener = iota // the listening unix socket in the depot
	fileLog             // the agent's log, its stdout and stderr
	fileOOM             // the container cgroup's OOM counter file (or /dev/null)
	fileCgroup          // the container cgroup's directory on v2 (or /dev/null)
	agentFiles
)

// agentConfig is what the agent needs to set the container up.
type agentConfig struct {
	Handle       string      `json:"handle"`
	Rootfs       string      `json:"rootfs"` // the overlay's mount point
	Lower        string      `json:"lower"`
	Upper        string      `json:"upper"`
	Work         string      `json:"work"`
	ProcessesDir string      `json:"processes_dir"`
	Hostname     string      `json:"hostname"`
	BindMounts   []BindMount `json:"bind_mounts,omitempty"`
	Env          []string    `json:"env,omitempty"`
	User         string      `json:"user,omitempty"`
	OutputLimit  int64       `json:"output_limit"`
	OOMFile      bool        `json:"oom_file,omitempty"`
	// The security profile, resolved: the bounding set, the seccomp
	// program (none when unconfined), the masked and read-only paths.
	Caps          []int                `json:"caps"`
	Seccomp       []bpf.RawInstruction `json:"seccomp,omitempty"`
	MaskedPaths   []string             `json:"masked_paths"`
	ReadonlyPaths []string             `json:"readonly_paths"`
	NoNewPrivs    bool                 `json:"no_new_privs"`
	// The agent stays in the Manager's cgroup; its processes start in
	// the container's, which holds the limits. On v1 the spawner thread
	// moves itself there through these tasks files; on v2 every fork
	// clones into the cgroup directory sent as fileCgroup.
	AppTasks []string `json:"app_tasks,omitempty"`
	AppCgFD  bool     `json:"app_cg_fd,omitempty"`
	// With the image quota backend: the loop device of the container's
	// writable layer, mounted at DiskMount in the agent's namespace.
	DiskDevice string `json:"disk_device,omitempty"`
	DiskMount  string `json:"disk_mount,omitempty"`
	// Child hooks, and what they learn of the container (HookState).
	ChildBeforePivot []Hook    `json:"child_before_pivot,omitempty"`
	ChildAfterPivot  []Hook    `json:"child_after_pivot,omitempty"`
	HookState        HookState `json:"hook_state"`
	// With networking: written to /etc/resolv.conf and /etc/hosts.
	ResolvConf string `json:"resolv_conf,omitempty"`
	Hosts      string `json:"hosts,omitempty"`
}

// agent is the state of a running agent.
type agent struct {
	cfg   agentConfig
	procs *os.Root // the container's processes directory in the depot
	oom   *os.File // nil when the host has no OOM counter

	spawnMu   sync.Mutex     // serialises fork: rlimits and oom_score_adj are set on the agent around it
	forks     chan forkReq   // served by the spawner thread
	protected bool           // the agent's oom_score_adj is -1000
	spawner   *spawnerThread // started early for a spare, else by restrict
	cgroup    int            // v2: the container cgroup's directory, -1 on v1
	disk      *os.File       // the image backend's file system root
	console   *os.File       // the console terminal, kept open

	mu      sync.Mutex
	running map[int]*agentProcess // by pid
	byID    map[string]*agentProcess
	early   map[int]syscall.WaitStatus // reaped before their spawn registered them
	stopped bool
	changed chan struct{} // closed and replaced whenever a child is reaped
}

type agentProcess struct {
	id      string
	pid     int
	oomBase uint64
	exited  chan syscall.WaitStatus
	pty     *os.File // the terminal's master, for processes with one
}

const agentName = "paaskit-container-agent"

// agentMain runs the agent; it never returns.
func agentMain() {
	// Not dumpable: container processes may not ptrace the agent or read
	// its memory through /proc/1/mem. (Exec makes its children dumpable
	// again.)
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	unix.Close(fdBinary) // the sealed copy this program was started from
	// Descriptors the Manager's process inherited without close-on-exec
	// came along; none of them may reach a container process.
	unix.CloseRange(fdControl, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	ctl := os.NewFile(fdControl, "control")
	var early *spawnerThread
	if tasks := os.Getenv(envSpareTasks); tasks != "" {
		// The Manager hands the spare out only once its thread has
		// joined the cgroup, which Create then renames.
		early = startSpawner(strings.Split(tasks, "\n"))
		if early.joined != nil {
			ctl.Write([]byte(early.joined.Error()))
			os.Exit(1)
		}
		ctl.Write([]byte("joined"))
	}
	cfg, files, err := receiveConfig(ctl)
	if err != nil {
		os.Exit(1) // the Manager went away, or sent nonsense: nothing to set up
	}
	// From here on the agent's output goes to the container's log.
	unix.Dup3(int(files[fileLog].Fd()), 1, 0)
	unix.Dup3(int(files[fileLog].Fd()), 2, 0)
	files[fileLog].Close()
	a, l, err := agentSetup(cfg, files, early)
	if err != nil {
		var he *HookError
		if errors.As(err, &he) { // sent so that the Manager can rebuild it
			ctl.Write([]byte(strings.Join([]string{"hook", he.Point, he.Name, he.Err.Error()}, "\x00")))
		} else {
			ctl.Write([]byte(err.Error()))
		}
		os.Exit(1)
	}
	// Ask for SIGCHLD before anything can be started: a child that exits
	// before the reaper listens would stay a zombie no one waits for.
	sig := make(chan os.Signal, 64)
	signal.Notify(sig, syscall.SIGCHLD)
	go a.reap(sig)
	// What setup allocated is garbage now: give it back, since an idle
	// agent's memory is paid once per container.
	debug.FreeOSMemory()
	if a.disk != nil {
		// The Manager measures and grows the file system through this fd.
		fmt.Fprintf(ctl, "ok disk=%d", a.disk.Fd())
	} else {
		ctl.Write([]byte("ok"))
	}
	ctl.Close()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				os.Exit(0)
			}
			continue
		}
		go a.serve(c)
	}
}

// receiveConfig reads the one message the Manager sends a new agent.
func receiveConfig(ctl *os.File) (*agentConfig, []*os.File, error) {
	buf := make([]byte, maxMessage)
	oob := make([]byte, unix.CmsgSpace(agentFiles*4))
	n, oobn, _, _, err := unix.Recvmsg(int(ctl.Fd()), buf, oob, 0)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, nil, fmt.Errorf("control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != agentFiles {
		return nil, nil, fmt.Errorf("control files: %d, %v", len(fds), err)
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		unix.CloseOnExec(fd)
		files[i] = os.NewFile(uintptr(fd), "agent file")
	}
	var cfg agentConfig
	if err := json.Unmarshal(buf[:n], &cfg); err != nil {
		return nil, nil, err
	}
	return &cfg, files, nil
}

// sendConfig is the Manager's side of receiveConfig.
func sendConfig(ctl *os.File, cfg *agentConfig, files [agentFiles]*os.File) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if len(b) > maxMessage {
		return fmt.Errorf("agent config of %d bytes is too long", len(b))
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return unix.Sendmsg(int(ctl.Fd()), b, unix.UnixRights(fds...), nil, 0)
}

func agentSetup(cfg *agentConfig, files []*os.File, spawner *spawnerThread) (*agent, net.Listener, error) {
	// Container processes cannot signal their PID 1 to death: the signals
	// that would end a Go program are caught and dropped. They are caught,
	// not ignored, because ignored dispositions survive execve and the
	// container's processes must start with default ones.
	sink := make(chan os.Signal, 16)
	signal.Notify(sink, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGTTIN, syscall.SIGTTOU)
	go func() {
		for range sink {
		}
	}()
	a := &agent{
		cfg:     *cfg,
		running: map[int]*agentProcess{},
		byID:    map[string]*agentProcess{},
		early:   map[int]syscall.WaitStatus{},
		changed: make(chan struct{}),
		cgroup:  -1,
		spawner: spawner,
	}
	if cfg.OOMFile {
		a.oom = files[fileOOM]
	} else {
		files[fileOOM].Close()
	}
	if cfg.AppCgFD {
		a.cgroup = int(files[fileCgroup].Fd())
	} else {
		files[fileCgroup].Close()
	}
	l, err := net.FileListener(files[fileListener])
	files[fileListener].Close() // FileListener made its own copy
	if err != nil {
		return nil, nil, fmt.Errorf("listener: %w", err)
	}
	procs, err := os.OpenRoot(cfg.ProcessesDir)
	if err != nil {
		return nil, nil, err
	}
	a.procs = procs
	// Before the pivot: the spawner opens the container cgroup's files by
	// path.
	if err := a.restrict(); err != nil {
		return nil, nil, err
	}
	if a.cfg.DiskDevice != "" {
		if a.disk, err = mountDisk(&a.cfg); err != nil {
			return nil, nil, fmt.Errorf("disk: %w", err)
		}
	}
	if err := setupRootfs(&a.cfg); err != nil {
		return nil, nil, err
	}
	if err := a.setupConsole(); err != nil {
		return nil, nil, fmt.Errorf("console: %w", err)
	}
	st := a.cfg.HookState
	st.Point, st.Rootfs = HookChildAfterPivot, "/"
	if err := runHooks(context.Background(), a.cfg.ChildAfterPivot, st, os.Stderr); err != nil {
		return nil, nil, err
	}
	return a, l, nil
}

// ConsoleID is the process id under which a container's /dev/console is
// kept: Attach to it to read what was written to the console. It is never
// a Run's.
const ConsoleID = "console"

// setupConsole gives the container a /dev/console: a terminal of its own
// devpts whose other end the agent holds, copying what is written there
// to the depot like a process's output (process ConsoleID). The agent
// also keeps the terminal open, so the console never hangs up.
func (a *agent) setupConsole() error {
	master, err := os.OpenFile("/dev/pts/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return os.NewSyscallError("ioctl(TIOCSPTLCK)", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return os.NewSyscallError("ioctl(TIOCGPTN)", err)
	}
	slavePath := "/dev/pts/" + strconv.Itoa(n)
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return err
	}
	if f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	}
	if err := mount(slavePath, "/dev/console", "", unix.MS_BIND, ""); err != nil {
		master.Close()
		slave.Close()
		return err
	}
	if err := a.procs.Mkdir(ConsoleID, 0o700); err != nil {
		return err
	}
	out, err := a.procs.OpenFile(ConsoleID+"/stdout", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := a.procs.WriteFile(ConsoleID+"/stderr", nil, 0o600); err != nil {
		return err
	}
	a.console = slave
	go copyCapped(out, master, a.cfg.OutputLimit, nil)
	return nil
}

// restrict sets what every container process inherits from the agent:
// default rlimits and (from the spawner thread) the bounding set and
// no_new_privs, and an oom_score_adj that keeps the agent itself out of
// the OOM killer's reach.
func (a *agent) restrict() error {
	if err := applyRLimits(DefaultRLimits()); err != nil {
		return err
	}
	// Best effort: lowering oom_score_adj needs CAP_SYS_RESOURCE, which
	// root lacks on some hosts. Without it the agent keeps the default
	// score and, being small, is still unlikely to be the OOM killer's
	// choice.
	a.protected = os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0) == nil
	a.forks = make(chan forkReq)
	if a.spawner == nil {
		a.spawner = startSpawner(a.cfg.AppTasks)
	}
	a.spawner.agent <- a
	return <-a.spawner.started
}

// envSpareTasks, set by the Manager for a spare agent on cgroup v1, lists
// (one per line) the tasks files of the cgroup the spare's spawner thread
// joins at once, ahead of need: the first attach to a new cgroup waits
// for an RCU grace period, milliseconds that would otherwise be Create's.
const envSpareTasks = "PAASKIT_SPARE_TASKS"

// spawnerThread is the locked thread that forks every container process.
type spawnerThread struct {
	joined  error       // from joining the cgroup, reported at configure
	agent   chan *agent // the configured agent, once
	started chan error  // closed (or an error) once restricted
}

// startSpawner starts the spawner thread and makes it join the cgroup of
// the given tasks files right away; it then waits for the agent's
// configuration (restrict).
func startSpawner(tasks []string) *spawnerThread {
	s := &spawnerThread{agent: make(chan *agent), started: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the agent
		// Go starts new threads from a template thread, not from a locked
		// one, so no other thread inherits this one's cgroups or limits.
		tid := strconv.Itoa(unix.Gettid())
		for _, f := range tasks {
			if err := os.WriteFile(f, []byte(tid), 0); err != nil {
				s.joined = fmt.Errorf("move spawner to the container's cgroup: %w", err)
				break
			}
		}
		close(ready)
		a := <-s.agent
		a.spawn(s)
	}()
	<-ready
	return s
}

// spawn restricts the spawner thread as the configuration says, then
// forks what it is asked to, for ever.
func (a *agent) spawn(s *spawnerThread) {
	started := s.started
	if s.joined != nil {
		started <- s.joined
		return
	}
	if err := dropBoundingSet(a.cfg.Caps); err != nil {
		started <- err
		return
	}
	if a.cfg.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			started <- os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
			return
		}
	}
	// Last: from here on this thread's own system calls are filtered too,
	// and it only forks and execs.
	if len(a.cfg.Seccomp) > 0 {
		if err := seccomp.Install(a.cfg.Seccomp); err != nil {
			started <- err
			return
		}
	}
	close(started)
	for r := range a.forks {
		if a.cgroup >= 0 {
			r.attr.Sys.UseCgroupFD = true
			r.attr.Sys.CgroupFD = a.cgroup
		}
		pid, err := syscall.ForkExec(r.prog, r.argv, r.attr)
		r.reply <- forkResult{pid, err}
	}
}

type forkReq struct {
	prog  string
	argv  []string
	attr  *syscall.ProcAttr
	reply chan forkResult
}

type forkResult struct {
	pid int
	err error
}

func (a *agent) serve(c net.Conn) {
	defer c.Close()
	r := newMessageReader(c)
	var req agentRequest
	if err := readMessage(r, &req); err != nil {
		writeMessage(c, agentResponse{Error: "bad request: " + err.Error(), Code: errCodeInvalid})
		return
	}
	var resp agentResponse
	var err error
	switch req.Op {
	case opPing:
	case opRun:
		var stdin *os.File
		resp.PID, stdin, err = a.run(req.Process)
		if err == nil && stdin != nil {
			writeMessage(c, resp)
			io.Copy(stdin, r) // the rest of the connection is stdin
			stdin.Close()
			return
		}
	case opSignal:
		err = a.signal(req.ID, syscall.Signal(req.Signal))
	case opStop:
		a.stop(req.Kill, time.Duration(req.Grace))
	case opList:
		resp.Processes = a.list()
	case opResize:
		if req.TTY == nil {
			err = fmt.Errorf("%w: resize without a size", ErrInvalidSpec)
		} else {
			err = a.resize(req.ID, *req.TTY)
		}
	default:
		err = fmt.Errorf("%w: unknown op %q", ErrInvalidSpec, req.Op)
	}
	if err != nil {
		resp = agentResponse{Error: err.Error(), Code: codeOf(err)}
	}
	writeMessage(c, resp)
}

func (a *agent) list() []agentProcRef {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]agentProcRef, 0, len(a.byID))
	for id, p := range a.byID {
		out = append(out, agentProcRef{ID: id, PID: p.pid})
	}
	return out
}

func (a *agent) signal(id string, sig syscall.Signal) error {
	a.mu.Lock()
	p, ok := a.byID[id]
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no running process %q", ErrNotFound, id)
	}
	if err := unix.Kill(p.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// stop refuses new processes, sends TERM to every process of the
// container (unless kill), waits up to grace for them to exit, then KILLs
// what is left and waits until only the agent remains.
func (a *agent) stop(kill bool, grace time.Duration) {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	defer a.endConsole()
	if !kill {
		unix.Kill(-1, unix.SIGTERM)
		deadline := time.NewTimer(grace)
		defer deadline.Stop()
		for !a.empty() {
			a.mu.Lock()
			changed := a.changed
			a.mu.Unlock()
			select {
			case <-changed:
			case <-deadline.C:
				goto killAll
			}
		}
		return
	}
killAll:
	for !a.empty() {
		a.mu.Lock()
		changed := a.changed
		a.mu.Unlock()
		unix.Kill(-1, unix.SIGKILL)
		select {
		case <-changed:
		case <-time.After(100 * time.Millisecond): // a process forked after the kill
		}
	}
}

// endConsole writes the console's exit status once the container is
// stopped, so that followers of its output finish.
func (a *agent) endConsole() {
	if _, err := a.procs.Stat(ConsoleID + "/" + exitFile); err == nil {
		return
	}
	b, _ := json.Marshal(ExitStatus{ExitedAt: time.Now().UTC()})
	if err := a.procs.WriteFile(ConsoleID+"/"+exitFile+".tmp", b, 0o600); err == nil {
		a.procs.Rename(ConsoleID+"/"+exitFile+".tmp", ConsoleID+"/"+exitFile)
	}
}

// empty reports whether the agent is the only process of its namespace.
func (a *agent) empty() bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != 1 {
			// Zombies still listed count as gone once reaped; a reaped
			// pid disappears from /proc, so just count live entries.
			return false
		}
	}
	return true
}

// reap waits for every child (spawned processes and orphans reparented to
// PID 1) and hands the statuses of spawned ones to their watchers.
func (a *agent) reap(sig <-chan os.Signal) {
	for range sig {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			a.mu.Lock()
			if p, ok := a.running[pid]; ok {
				delete(a.running, pid)
				p.exited <- ws
			} else {
				a.early[pid] = ws
			}
			a.mu.Unlock()
		}
		a.mu.Lock()
		close(a.changed)
		a.changed = make(chan struct{})
		a.mu.Unlock()
	}
}

func (a *agent) oomCount() uint64 {
	if a.oom == nil {
		return 0
	}
	n, _ := readOOMKill(a.oom)
	return n
}

// readOOMKill reads the "oom_kill N" line of a cgroup's memory.oom_control
// (v1) or memory.events (v2) from an open file.
func readOOMKill(f *os.File) (uint64, error) {
	buf := make([]byte, 4096)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, nil
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// run starts a process. Its output goes through pipes to files in the
// process's directory; its exit status is written there when it exits,
// after its output has been drained.
func (a *agent) run(ps *agentProc) (int, *os.File, error) {
	if ps == nil {
		return 0, nil, fmt.Errorf("%w: run without a process", ErrInvalidSpec)
	}
	a.mu.Lock()
	stopped := a.stopped
	a.mu.Unlock()
	if stopped {
		return 0, nil, ErrStopped
	}
	u := ps.User
	if u == "" {
		u = a.cfg.User
	}
	if u == "" {
		u = "root"
	}
	eu, err := user.GetExecUserPath(u, &user.ExecUser{Home: "/"}, "/etc/passwd", "/etc/group")
	if err != nil {
		return 0, nil, fmt.Errorf("%w: user %q: %v", ErrInvalidSpec, u, err)
	}
	env := mergeEnv([]string{"PATH=" + defaultPath, "HOME=" + eu.Home, "USER=" + u}, a.cfg.Env, ps.Env)
	prog, err := lookPathIn(ps.Path, envValue(env, "PATH"))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	dir := ps.Dir
	if dir == "" {
		dir = eu.Home
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			dir = "/"
		}
	}
	if err := checkDir(dir); err != nil {
		return 0, nil, err
	}
	if err := a.procs.Mkdir(ps.ID, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return 0, nil, fmt.Errorf("%w: process %q", ErrAlreadyExists, ps.ID)
		}
		return 0, nil, err
	}
	stdout, err := a.procs.OpenFile(ps.ID+"/stdout", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, err
	}
	stderr, err := a.procs.OpenFile(ps.ID+"/stderr", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		stdout.Close()
		return 0, nil, err
	}
	var files []uintptr
	var parentEnds, childEnds []*os.File
	if ps.TTY != nil {
		files, parentEnds, childEnds, err = childTTY(ps.TTY)
	} else {
		files, parentEnds, childEnds, err = childPipes(ps.Stdin)
	}
	if err != nil {
		stdout.Close()
		stderr.Close()
		return 0, nil, err
	}
	groups := make([]uint32, len(eu.Sgids))
	for i, g := range eu.Sgids {
		groups[i] = uint32(g)
	}
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Setctty:    ps.TTY != nil, // the terminal, as fd 0, becomes the controlling one
			Credential: &syscall.Credential{Uid: uint32(eu.Uid), Gid: uint32(eu.Gid), Groups: groups},
		},
	}
	p := &agentProcess{id: ps.ID, exited: make(chan syscall.WaitStatus, 1), oomBase: a.oomCount()}
	if ps.TTY != nil {
		p.pty = parentEnds[1]
	}
	pid, err := a.fork(prog, append([]string{ps.Path}, ps.Args...), attr, ps.Limits)
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		for _, f := range parentEnds {
			if f != nil {
				f.Close()
			}
		}
		stdout.Close()
		stderr.Close()
		a.procs.RemoveAll(ps.ID)
		return 0, nil, fmt.Errorf("%w: start %s: %v", ErrInvalidSpec, ps.Path, err)
	}
	p.pid = pid
	a.mu.Lock()
	a.byID[ps.ID] = p
	if ws, ok := a.early[pid]; ok {
		delete(a.early, pid)
		p.exited <- ws
	} else {
		a.running[pid] = p
	}
	a.mu.Unlock()
	go a.watch(p, parentEnds[1], parentEnds[2], stdout, stderr)
	stdin := parentEnds[0]
	if ps.TTY != nil && ps.Stdin {
		// Input goes to the terminal; it stays open for output until
		// the process is gone, so the caller writes to a duplicate.
		stdin, err = dupFile(p.pty)
		if err != nil {
			return pid, nil, nil
		}
	}
	return pid, stdin, nil
}

// childTTY allocates a terminal from the container's devpts for a
// process: the child gets the terminal as fds 0, 1 and 2; parentEnds[1]
// is the master (output, input and resizing), [0] and [2] are nil.
func childTTY(ts *TTYSpec) (files []uintptr, parentEnds, childEnds []*os.File, err error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("allocate a terminal: %w", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: ts.Rows, Cols: ts.Columns}); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, nil, nil, err
	}
	fd := tty.Fd()
	return []uintptr{fd, fd, fd}, []*os.File{nil, ptmx, nil}, []*os.File{tty}, nil
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// resize sets the window size of a process's terminal.
func (a *agent) resize(id string, ts TTYSpec) error {
	a.mu.Lock()
	p, ok := a.byID[id]
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no running process %q", ErrNotFound, id)
	}
	if p.pty == nil {
		return fmt.Errorf("%w: process %q has no terminal", ErrInvalidSpec, id)
	}
	return pty.Setsize(p.pty, &pty.Winsize{Rows: ts.Rows, Cols: ts.Columns})
}

// checkDir refuses a working directory that is not a directory of the
// container's root reached without magic links: a cwd of /proc/self/fd/N
// could be a descriptor of the host (CVE-2024-21626).
func checkDir(dir string) error {
	fd, err := unix.Openat2(unix.AT_FDCWD, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_IN_ROOT,
	})
	if err != nil {
		return fmt.Errorf("%w: working directory %q: %v", ErrInvalidSpec, dir, err)
	}
	unix.Close(fd)
	return nil
}

// childPipes makes the child's stdin (/dev/null or a pipe), stdout and
// stderr pipes. files are the child's fds; parentEnds[0] is the stdin
// writer (nil without stdin), [1] and [2] the output readers.
func childPipes(withStdin bool) (files []uintptr, parentEnds, childEnds []*os.File, err error) {
	defer func() {
		if err != nil {
			for _, f := range append(parentEnds, childEnds...) {
				if f != nil {
					f.Close()
				}
			}
		}
	}()
	parentEnds = make([]*os.File, 3)
	var in *os.File
	if withStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, parentEnds, childEnds, err
		}
		in, parentEnds[0] = r, w
	} else {
		in, err = os.Open("/dev/null")
		if err != nil {
			return nil, parentEnds, childEnds, err
		}
	}
	childEnds = append(childEnds, in)
	for i := 1; i <= 2; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, parentEnds, childEnds, err
		}
		parentEnds[i] = r
		childEnds = append(childEnds, w)
	}
	for _, f := range childEnds {
		files = append(files, f.Fd())
	}
	return files, parentEnds, childEnds, nil
}

// fork starts the process with the rlimits and oom_score_adj it must
// inherit, set on the agent for the duration of the fork.
func (a *agent) fork(prog string, argv []string, attr *syscall.ProcAttr, limits RLimits) (int, error) {
	a.spawnMu.Lock()
	defer a.spawnMu.Unlock()
	restore, err := overrideRLimits(limits)
	if err != nil {
		return 0, err
	}
	defer restore()
	if a.protected {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte("0"), 0); err != nil {
			return 0, err
		}
		defer os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)
	}
	reply := make(chan forkResult, 1)
	a.forks <- forkReq{prog, argv, attr, reply}
	r := <-reply
	return r.pid, r.err
}

// watch copies the process's output to its files, waits for it to exit
// and writes its exit status after the output (bounded: a background
// child that keeps the pipes open does not hold the status back).
func (a *agent) watch(p *agentProcess, outR, errR, outF, errF *os.File) {
	limit := a.cfg.OutputLimit
	var dropped [2]int64
	var wg sync.WaitGroup
	var active atomic.Int64 // bumped by every read of output
	drained := make(chan struct{})
	for i, pair := range [][2]*os.File{{outR, outF}, {errR, errF}} {
		if pair[0] == nil { // a terminal: one stream, on stdout
			pair[1].Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dropped[i] = copyCapped(pair[1], pair[0], limit, func() { active.Add(1) })
			pair[0].Close()
			pair[1].Close()
		}()
	}
	go func() { wg.Wait(); close(drained) }()
	ws := <-p.exited
	// The output ends when the pipes close, which a background child of
	// the process can put off for ever: then the status is written once
	// the output has been quiet for a second.
	quiet := time.NewTicker(time.Second)
	for seen := active.Load(); ; {
		select {
		case <-drained:
		case <-quiet.C:
			if now := active.Load(); now != seen {
				seen = now
				continue
			}
		}
		break
	}
	quiet.Stop()
	st := ExitStatus{Code: ws.ExitStatus(), ExitedAt: time.Now().UTC()}
	if ws.Signaled() {
		st.Signal = int(ws.Signal())
		st.Code = 128 + st.Signal
		st.OOMKilled = ws.Signal() == syscall.SIGKILL && a.oomCount() > p.oomBase
	}
	select {
	case <-drained:
		st.StdoutDropped, st.StderrDropped = dropped[0], dropped[1]
	default:
	}
	b, _ := json.Marshal(st)
	tmp := p.id + "/exit.json.tmp"
	if err := a.procs.WriteFile(tmp, b, 0o600); err == nil {
		a.procs.Rename(tmp, p.id+"/"+exitFile)
	}
	a.mu.Lock()
	delete(a.byID, p.id)
	a.mu.Unlock()
}

// copyCapped copies r to w until EOF, keeping at most limit bytes (no cap
// when limit <= 0); past the cap it writes a marker once and counts what
// it drops. It calls read after every read that got data.
func copyCapped(w io.Writer, r io.Reader, limit int64, read func()) (dropped int64) {
	// Small: every stream of every process holds one for its lifetime,
	// and a pipe hands over at most 64 KiB at a time anyway.
	buf := make([]byte, 8<<10)
	var written int64
	for {
		n, err := r.Read(buf)
		if n > 0 && read != nil {
			read()
		}
		if n > 0 {
			chunk := buf[:n]
			if limit > 0 && written+int64(n) > limit {
				keep := max(limit-written, 0)
				if keep > 0 {
					w.Write(chunk[:keep])
					written += keep
				}
				if dropped == 0 {
					fmt.Fprintf(w, "\n[paaskit: output limit of %d bytes reached; the rest is dropped]\n", limit)
				}
				dropped += int64(n) - keep
			} else {
				w.Write(chunk)
				written += int64(n)
			}
		}
		if err != nil {
			return dropped
		}
	}
}

func mergeEnv(lists ...[]string) []string {
	idx := map[string]int{}
	var out []string
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := idx[k]; ok {
				out[i] = kv
				continue
			}
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// lookPathIn resolves prog inside the container (the agent's root is the
// container's root, so no host path is ever consulted).
func lookPathIn(prog, pathEnv string) (string, error) {
	if strings.Contains(prog, "/") {
		return prog, nil
	}
	for _, d := range strings.Split(pathEnv, ":") {
		if d == "" || !path.IsAbs(d) {
			continue
		}
		p := path.Join(d, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", prog, pathEnv)
}

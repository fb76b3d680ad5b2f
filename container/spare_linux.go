package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paaskit/paaskit/container/internal/cgroups"
	"golang.org/x/sys/unix"
)

// Starting an agent (exec of this program, the Go runtime starting, new
// namespaces) is the largest part of Create. So the Manager keeps one
// agent started ahead of need, a spare, waiting on its control socket for
// a container to set up; Create takes it and a new spare starts in the
// background. A spare is in new namespaces but in no container cgroup and
// owns nothing: if the Manager dies, its control socket closes and the
// spare exits.

// spareAgent is a started agent waiting for its config.
type spareAgent struct {
	pid       int
	startTime uint64
	ctl       *os.File // the Manager's end of the control socket
	// cg, on cgroup v1, is the cgroup the spare's forking thread has
	// already joined; Create renames it to the container's.
	cg *cgroups.Cgroup
}

// kill kills an unused spare and removes its cgroup.
func (s *spareAgent) kill() {
	unix.Kill(s.pid, unix.SIGKILL) // our child: the pid is ours until reaped
	s.ctl.Close()
	if s.cg != nil {
		waitGone(s.pid, s.startTime, 10*time.Second)
		s.cg.Delete()
	}
}

// spareCgroupMark is in the name of every spare's cgroup, so that a
// Manager opened after a crash can find and remove those left behind.
const spareCgroupMark = "-spare-"

// spares keeps at most one spare agent.
type spares struct {
	reaper *reaper
	// newCgroup makes a spare's cgroup, or returns nil when spares do not
	// get one (cgroup v2, where CLONE_INTO_CGROUP places processes).
	newCgroup func() (*cgroups.Cgroup, error)
	ctx       context.Context
	mu        sync.Mutex
	spare     *spareAgent
	refill    chan struct{}
	done      chan struct{}
}

func newSpares(ctx context.Context, r *reaper, newCgroup func() (*cgroups.Cgroup, error)) *spares {
	s := &spares{reaper: r, newCgroup: newCgroup, ctx: ctx, refill: make(chan struct{}, 1), done: make(chan struct{})}
	s.refill <- struct{}{}
	go s.loop()
	return s
}

// loop starts a spare whenever asked and there is none, until ctx ends;
// then it kills the spare left.
func (s *spares) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.ctx.Done():
			s.mu.Lock()
			if s.spare != nil {
				s.spare.kill()
				s.spare = nil
			}
			s.mu.Unlock()
			return
		case <-s.refill:
		}
		s.mu.Lock()
		has := s.spare != nil
		s.mu.Unlock()
		if has {
			continue
		}
		cg, err := s.newCgroup()
		if err != nil {
			continue // take starts one itself and reports the error
		}
		sp, err := startAgent(s.reaper, cg)
		if err != nil {
			if cg != nil {
				cg.Delete()
			}
			continue
		}
		s.mu.Lock()
		if s.ctx.Err() != nil || s.spare != nil {
			sp.kill()
		} else {
			s.spare = sp
		}
		s.mu.Unlock()
	}
}

// take returns the spare, or a freshly started agent when there is none,
// and asks for a new spare.
func (s *spares) take() (*spareAgent, error) {
	s.mu.Lock()
	sp := s.spare
	s.spare = nil
	s.mu.Unlock()
	select {
	case s.refill <- struct{}{}:
	default:
	}
	if sp != nil {
		return sp, nil
	}
	return startAgent(s.reaper, nil)
}

// close kills the spare and stops the loop; the Manager's ctx must be
// cancelled first.
func (s *spares) close() { <-s.done }

// sealedSelf is a copy of this program in a sealed memfd, made once per
// process: agents run from it, so nothing in a container can write to the
// binary of the host's program through /proc/<agent>/exe.
var sealedSelf = sync.OnceValues(func() (*os.File, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	src, err := os.Open(exe)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("paaskit-agent", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "paaskit-agent")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
	}
	return f, nil
})

// startAgent starts this program as an agent in new mount, pid, uts, ipc
// and network namespaces, waiting for its config.
func startAgent(r *reaper, cg *cgroups.Cgroup) (*spareAgent, error) {
	self, err := sealedSelf()
	if err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "agent control"), os.NewFile(uintptr(fds[1]), "agent control")
	defer theirs.Close()
	cmd := &exec.Cmd{
		// Executed from the sealed copy, which becomes its fd 4 (the
		// agent closes it): /proc/1/exe in the container is a memfd that
		// cannot be written (CVE-2019-5736).
		Path:       fmt.Sprintf("/proc/self/fd/%d", fdBinary),
		Args:       []string{agentName},
		Env:        []string{"GOGC=50", "GOMAXPROCS=1"},
		ExtraFiles: []*os.File{theirs, self},
		SysProcAttr: &syscall.SysProcAttr{
			Setsid:     true,
			Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET,
		},
	}
	if cg != nil {
		cmd.Env = append(cmd.Env, envSpareTasks+"="+strings.Join(cg.ThreadFiles(), "\n"))
	}
	r.mu.Lock() // the reaper must not miss this child
	err = cmd.Start()
	if err == nil {
		r.add(cmd.Process.Pid)
	}
	r.mu.Unlock()
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("start agent: %w", err)
	}
	sp := &spareAgent{pid: cmd.Process.Pid, ctl: ours}
	cmd.Process.Release()
	if sp.startTime, err = procStartTime(sp.pid); err != nil {
		sp.kill()
		return nil, err
	}
	if cg != nil {
		// Wait until the agent's forking thread is in the cgroup: only
		// then may Create rename it.
		ours.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, 4096)
		n, err := ours.Read(b)
		ours.SetReadDeadline(time.Time{})
		if err != nil || string(b[:n]) != "joined" {
			sp.kill()
			return nil, fmt.Errorf("start agent: join the spare cgroup: %s%v", b[:max(n, 0)], err)
		}
		sp.cg = cg
	}
	return sp, nil
}

// newSpareCgroup makes the cgroup a spare's forking thread joins ahead of
// need, on cgroup v1 (on v2 processes are cloned into the container's
// cgroup, which needs nothing ahead).
func (m *Manager) newSpareCgroup() (*cgroups.Cgroup, error) {
	if cgroups.DetectMode() != cgroups.Legacy {
		return nil, nil
	}
	name := fmt.Sprintf("%s%s%d-%s", m.depotHash(), spareCgroupMark, os.Getpid(), randomID())
	return cgroups.New(filepath.Join(m.opts.cgroupParent, name), cgroups.Resources{Devices: true})
}

// removeSpareCgroups removes the cgroups of spares that a Manager of this
// depot left behind, named with that Manager's pid: when no process has
// that pid any more, the spare (which exits by itself once its Manager is
// gone) is killed and its cgroup removed. Spares of a Manager that still
// runs are left alone.
func (m *Manager) removeSpareCgroups() error {
	names, err := cgroups.Children(m.opts.cgroupParent)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, m.depotHash()+spareCgroupMark)
		if !ok {
			continue
		}
		owner, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(owner); err == nil && pid != os.Getpid() && unix.Kill(pid, 0) == nil {
			continue // its Manager runs
		}
		cg, err := cgroups.Load(filepath.Join(m.opts.cgroupParent, n))
		if err != nil {
			continue
		}
		errs = append(errs, cg.Kill(), cg.Delete())
	}
	return errors.Join(errs...)
}

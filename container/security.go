package container

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/sys/capability"
	"github.com/paaskit/paaskit/container/internal/seccomp"
	"golang.org/x/net/bpf"
)

// SecurityProfile is how a container's processes are confined. Its zero
// value is the secure default; every field that weakens it must be set on
// purpose.
//
// What no profile changes: processes start in new mount, pid, uts, ipc
// and network namespaces, with no_new_privs set unless AllowNewPrivileges,
// empty inheritable and ambient capability sets, only file descriptors 0,
// 1 and 2 open, a working directory inside the container's root, and the
// agent's binary out of reach (it runs from a sealed in-memory copy and is
// not dumpable). User namespaces are not used yet: container root is host
// root, confined by capabilities, seccomp, the masked paths and the
// devices cgroup.
type SecurityProfile struct {
	// Capabilities is the bounding set, by name ("CAP_CHOWN"); nil means
	// DefaultCapabilities. Root processes get exactly these, other users
	// none.
	Capabilities []string `json:"capabilities,omitempty"`
	// Seccomp filters every process's system calls; nil means
	// DefaultSeccompProfile(). SeccompUnconfined() turns filtering off.
	Seccomp *SeccompProfile `json:"seccomp,omitempty"`
	// MaskedPaths are hidden (files read empty, directories are empty);
	// nil means DefaultMaskedPaths.
	MaskedPaths []string `json:"masked_paths,omitempty"`
	// ReadonlyPaths are mounted read-only; nil means DefaultReadonlyPaths.
	ReadonlyPaths []string `json:"readonly_paths,omitempty"`
	// AllowNewPrivileges leaves no_new_privs unset, so setuid binaries
	// and file capabilities work. For trusted code only.
	AllowNewPrivileges bool `json:"allow_new_privileges,omitempty"`
}

// DefaultCapabilities is Docker's default bounding set for containers.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultMaskedPaths and DefaultReadonlyPaths are Docker's lists.
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// SeccompAction is what a filter does with a system call.
type SeccompAction uint32

// Seccomp actions; see also SeccompErrno.
const (
	SeccompAllow       = SeccompAction(seccomp.RetAllow)
	SeccompKillProcess = SeccompAction(seccomp.RetKillProcess)
)

// SeccompErrno fails the system call with errno.
func SeccompErrno(errno syscall.Errno) SeccompAction {
	return SeccompAction(seccomp.RetErrno | uint32(errno)&0xffff)
}

// SeccompOp compares a system call argument.
type SeccompOp int

// The comparisons of SeccompArg.
const (
	SeccompEq       = SeccompOp(seccomp.OpEq)       // arg == Value
	SeccompNe       = SeccompOp(seccomp.OpNe)       // arg != Value
	SeccompMaskedEq = SeccompOp(seccomp.OpMaskedEq) // arg & Mask == Value
)

// SeccompArg is a condition on argument Index (0 to 5).
type SeccompArg struct {
	Index uint      `json:"index"`
	Op    SeccompOp `json:"op"`
	Value uint64    `json:"value"`
	Mask  uint64    `json:"mask,omitempty"`
}

// SeccompRule gives the system calls Names the Action when all Args hold.
// The rules naming one call are tried in their order; when none applies,
// the call gets the profile's DefaultAction. Names unknown on the host's
// architecture are skipped.
type SeccompRule struct {
	Names  []string      `json:"names"`
	Action SeccompAction `json:"action"`
	Args   []SeccompArg  `json:"args,omitempty"`
}

// SeccompProfile is a system call filter, as data: users may take the
// default and add or remove rules. Other architectures than the host's,
// and the x32 ABI, are refused with ENOSYS.
type SeccompProfile struct {
	DefaultAction SeccompAction `json:"default_action"`
	Syscalls      []SeccompRule `json:"syscalls"`
}

// SeccompUnconfined returns the profile that filters nothing.
func SeccompUnconfined() *SeccompProfile { return &SeccompProfile{DefaultAction: SeccompAllow} }

// seccompDenied are the system calls the default profile refuses (EPERM),
// after Docker's default: the keyring, BPF, perf, modules, kexec, clocks,
// mounting and the new mount API, namespaces by setns, swap, reboot,
// accounting, quotas, handles to arbitrary files, userfaultfd, io_uring,
// fanotify, obsolete and unimplemented calls, and kcmp.
var seccompDenied = []string{
	"acct", "add_key", "adjtimex", "afs_syscall", "bdflush", "bpf", "clock_adjtime",
	"clock_settime", "create_module", "delete_module", "fanotify_init", "finit_module",
	"fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "getpmsg", "init_module",
	"io_uring_enter", "io_uring_register", "io_uring_setup", "ioperm", "iopl", "kcmp",
	"kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "migrate_pages",
	"mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
	"open_by_handle_at", "open_tree", "perf_event_open", "pivot_root", "putpmsg",
	"query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "security",
	"set_mempolicy", "setns", "settimeofday", "swapoff", "swapon", "syslog", "sysfs",
	"_sysctl", "tuxcall", "umount", "umount2", "uselib", "userfaultfd", "ustat", "vhangup",
	"vm86", "vm86old", "vserver",
}

// Linux's values (the same on x86_64 and arm64), spelled out so that the
// profile builds on every platform.
const (
	// nsFlags are the flags of clone and unshare that make namespaces:
	// CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
	// NEWNET.
	nsFlags      = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
	linuxEPERM   = syscall.Errno(1)
	linuxENOSYS  = syscall.Errno(38)
	linuxTIOCSTI = 0x5412
)

// DefaultSeccompProfile returns a fresh copy of the default profile: an
// allowlist of every system call the host's architecture has, less those
// of Docker's default denials, with a default of EPERM (so calls added by
// newer kernels are refused); clone and unshare may not make namespaces;
// clone3, whose flags a filter cannot read, fails with ENOSYS so C
// libraries fall back to clone; ioctl may not push input into a terminal
// (TIOCSTI, TIOCLINUX); personality may only choose the usual ones.
func DefaultSeccompProfile() *SeccompProfile {
	eperm := SeccompErrno(linuxEPERM)
	special := []string{"clone", "clone3", "unshare", "ioctl", "personality"}
	var allowed []string
	for name := range syscallTable() {
		if !slices.Contains(seccompDenied, name) && !slices.Contains(special, name) {
			allowed = append(allowed, name)
		}
	}
	slices.Sort(allowed)
	return &SeccompProfile{
		DefaultAction: eperm,
		Syscalls: []SeccompRule{
			{Names: allowed, Action: SeccompAllow},
			{Names: []string{"clone", "unshare"}, Action: SeccompAllow, Args: []SeccompArg{{Index: 0, Op: SeccompMaskedEq, Mask: nsFlags, Value: 0}}},
			{Names: []string{"clone3"}, Action: SeccompErrno(linuxENOSYS)},
			{Names: []string{"ioctl"}, Action: eperm, Args: []SeccompArg{{Index: 1, Op: SeccompMaskedEq, Mask: 0xffffffff, Value: linuxTIOCSTI}}},
			{Names: []string{"ioctl"}, Action: eperm, Args: []SeccompArg{{Index: 1, Op: SeccompMaskedEq, Mask: 0xffffffff, Value: 0x541C /* TIOCLINUX */}}},
			{Names: []string{"ioctl"}, Action: SeccompAllow},
			{Names: []string{"personality"}, Action: SeccompAllow, Args: []SeccompArg{{Index: 0, Op: SeccompEq, Value: 0}}},
			{Names: []string{"personality"}, Action: SeccompAllow, Args: []SeccompArg{{Index: 0, Op: SeccompEq, Value: 0x0008}}},
			{Names: []string{"personality"}, Action: SeccompAllow, Args: []SeccompArg{{Index: 0, Op: SeccompEq, Value: 0x20000}}},
			{Names: []string{"personality"}, Action: SeccompAllow, Args: []SeccompArg{{Index: 0, Op: SeccompEq, Value: 0x20008}}},
			{Names: []string{"personality"}, Action: SeccompAllow, Args: []SeccompArg{{Index: 0, Op: SeccompEq, Value: 0xffffffff}}},
		},
	}
}

// capabilityNumbers resolves capability names ("CAP_CHOWN", any case) to
// their numbers.
func capabilityNumbers(names []string) ([]int, error) {
	known := map[string]int{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = int(c)
	}
	out := make([]int, 0, len(names))
	for _, n := range names {
		nr, ok := known[strings.ToUpper(n)]
		if !ok {
			return nil, specErr("Security.Capabilities", "unknown capability %q", n)
		}
		out = append(out, nr)
	}
	return out, nil
}

// resolved fills the profile's nil fields with the defaults and compiles
// what the agent needs.
func (p SecurityProfile) resolved() (caps []int, filter []bpf.RawInstruction, masked, readonly []string, err error) {
	names := p.Capabilities
	if names == nil {
		names = DefaultCapabilities
	}
	if caps, err = capabilityNumbers(names); err != nil {
		return
	}
	if p.Seccomp == nil {
		filter, err = defaultSeccompProgram()
	} else {
		filter, err = p.Seccomp.compile()
	}
	if err != nil {
		return
	}
	masked, readonly = p.MaskedPaths, p.ReadonlyPaths
	if masked == nil {
		masked = DefaultMaskedPaths
	}
	if readonly == nil {
		readonly = DefaultReadonlyPaths
	}
	for _, l := range [][]string{masked, readonly} {
		for _, path := range l {
			if !strings.HasPrefix(path, "/proc/") && !strings.HasPrefix(path, "/sys/") {
				err = specErr("Security", "masked or read-only path %q is not below /proc or /sys", path)
				return
			}
		}
	}
	return
}

func (p *SecurityProfile) seccompRules() []SeccompRule {
	if p.Seccomp == nil {
		return nil
	}
	return p.Seccomp.Syscalls
}

// defaultSeccompProgram is the default profile compiled, once per
// process: building and compiling it costs about as much as a fork.
var defaultSeccompProgram = sync.OnceValues(func() ([]bpf.RawInstruction, error) {
	return DefaultSeccompProfile().compile()
})

// syscallTable is the host architecture's table of system call numbers.
func syscallTable() map[string]uint32 {
	if runtime.GOARCH == "arm64" {
		return seccomp.SyscallsArm64
	}
	return seccomp.SyscallsAmd64
}

// compile turns p into a BPF program for the host's architecture; an
// unconfined profile compiles to nothing.
func (p *SeccompProfile) compile() ([]bpf.RawInstruction, error) {
	if p.DefaultAction == SeccompAllow && len(p.Syscalls) == 0 {
		return nil, nil
	}
	arch := seccomp.ArchX86_64
	if runtime.GOARCH == "arm64" {
		arch = seccomp.ArchAArch64
	} else if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("%w: seccomp on %s", ErrInvalidSpec, runtime.GOARCH)
	}
	table := syscallTable()
	f := seccomp.Filter{Arch: arch, Default: uint32(p.DefaultAction), ForeignArch: seccomp.RetErrno | uint32(linuxENOSYS)}
	for _, r := range p.Syscalls {
		args := make([]seccomp.Arg, len(r.Args))
		for i, a := range r.Args {
			if a.Index > 5 {
				return nil, specErr("Security.Seccomp", "argument index %d of %s", a.Index, strings.Join(r.Names, ","))
			}
			args[i] = seccomp.Arg{Index: a.Index, Op: seccomp.Op(a.Op), Value: a.Value, Mask: a.Mask}
		}
		for _, name := range r.Names {
			if nr, ok := table[name]; ok {
				f.Rules = append(f.Rules, seccomp.Rule{Nr: nr, Args: args, Ret: uint32(r.Action)})
			}
		}
	}
	return seccomp.Compile(f)
}

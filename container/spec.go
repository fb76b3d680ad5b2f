package container

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Spec says what container to create. The zero value is not valid: at least
// RootFS is required. Create validates it with Validate and does not keep
// a reference to it.
type Spec struct {
	// Handle names the container; optional (a random one is made when
	// empty). 1 to 64 characters of [A-Za-z0-9_.-], not starting with a
	// dot or a dash.
	Handle string

	// RootFS is the stack: a directory, or a .tar, .tar.gz or .tgz file
	// (imported once into the depot and shared by every container made
	// from the same bytes). Required. It is used read-only as the lower
	// layer of an overlay; each container writes to its own upper layer.
	RootFS string

	// BindMounts are host paths mounted into the container. Optional.
	BindMounts []BindMount

	// Env is the environment of every process, as KEY=value, before the
	// process's own Env. Optional.
	Env []string

	// Hostname of the container; optional, the handle (cut to 63
	// characters) when empty.
	Hostname string

	// Properties are string labels, matched by Manager.List. Optional.
	Properties map[string]string

	// Limits are the container's cgroup limits. Optional: zero fields
	// mean no limit.
	Limits Limits

	// GraceTime: when set, the Manager destroys the container after it
	// has seen no activity on it for that long (see Manager). Zero means
	// never.
	GraceTime time.Duration

	// User that processes run as when their ProcessSpec names none: a
	// name from the container's /etc/passwd, or "uid:gid". Optional,
	// "root" when empty.
	User string

	// Security confines the container's processes; the zero value is the
	// secure default (see SecurityProfile).
	Security SecurityProfile
}

// BindMount mounts a host path into the container.
type BindMount struct {
	SrcPath  string // absolute host path; must exist
	DstPath  string // absolute path inside the container; created when missing
	ReadOnly bool
}

// Limits are a container's cgroup limits. Zero fields mean no limit.
type Limits struct {
	// MemoryBytes caps memory (and memory+swap where the host accounts
	// swap, so the container cannot swap). At least 4 MiB when set.
	MemoryBytes int64
	// CPUShares is the relative CPU weight on cgroup v1 (2 to 262144;
	// 1024 is the kernel's default); converted to cpu.weight on v2.
	CPUShares uint64
	// PidsMax caps the number of processes and threads.
	PidsMax int64
	// DiskBytes and DiskInodes cap the container's writable layer (see
	// QuotaBackend for how, per host). At least 4 MiB and 64 inodes
	// when set.
	DiskBytes, DiskInodes int64
}

// RLimits are per-process resource limits, as setrlimit(2). Nil fields
// keep the container's limits.
//
// The container's limits are [DefaultRLimits], soft and hard, each lowered
// to the host's hard limit where that is lower. A process's RLimits set its
// soft limits, at most the container's hard limits (a larger value is an
// invalid spec): the agent forks every process and must get its own limits
// back afterwards, and raising a hard limit needs CAP_SYS_RESOURCE, which
// root lacks on some hosts.
type RLimits struct {
	AS, Core, CPU, Data, Fsize, Locks, Memlock, Msgqueue, Nice, Nofile, Nproc, RSS, Rtprio, Sigpending, Stack *uint64
}

// DefaultRLimits are the limits of every container: no core files and
// 65536 open files (or the host's hard limit, when lower). The others are
// the host's.
func DefaultRLimits() RLimits {
	zero, nofile := uint64(0), uint64(65536)
	return RLimits{Core: &zero, Nofile: &nofile}
}

// ProcessSpec says what process to run in a container.
type ProcessSpec struct {
	// ID names the process; optional (generated when empty). Same
	// characters as a handle.
	ID string
	// Path of the program inside the container; required. A name without
	// a slash is looked up in the PATH of Env (or the default PATH).
	Path string
	// Args are the arguments after the program name. Optional.
	Args []string
	// Env is added after the container's Env. Optional.
	Env []string
	// Dir is the working directory inside the container; optional, the
	// user's home directory (or "/") when empty.
	Dir string
	// User runs the process as a user of the container's /etc/passwd, by
	// name or as "uid:gid"; optional, the container's default user.
	User string
	// Limits are the process's rlimits; nil fields keep the defaults.
	Limits RLimits
	// TTY, when set, runs the process on a terminal of the container's
	// own devpts, as its session leader with the terminal as controlling
	// tty. Its output (stdout and stderr together, with the terminal's
	// line discipline, such as "\r\n" line ends) is kept as stdout.
	TTY *TTYSpec
}

// TTYSpec is a terminal's window size.
type TTYSpec struct {
	Rows    uint16 `json:"rows"`
	Columns uint16 `json:"columns"`
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	// Code is the exit code, or 128 + the signal number when the process
	// was killed by a signal (the shell's convention).
	Code int `json:"code"`
	// Signal is the signal that killed the process, or 0.
	Signal int `json:"signal,omitempty"`
	// OOMKilled is true when the kernel's OOM killer killed the process.
	OOMKilled bool `json:"oom_killed,omitempty"`
	// StdoutDropped and StderrDropped count the bytes dropped past the
	// output limit.
	StdoutDropped int64 `json:"stdout_dropped,omitempty"`
	StderrDropped int64 `json:"stderr_dropped,omitempty"`
	// ExitedAt is when the agent saw the process exit.
	ExitedAt time.Time `json:"exited_at"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// MaxHandleLen is the longest handle (and process id) accepted.
const MaxHandleLen = 64

func validName(field, s string) error {
	if !nameRE.MatchString(s) {
		return specErr(field, "%q must be 1 to %d characters of [A-Za-z0-9_.-], not starting with '.' or '-'", s, MaxHandleLen)
	}
	return nil
}

// Validate reports the first problem of s as a *SpecError, or nil. It
// checks what can be checked without touching the host, except that bind
// mount sources are checked when the container is created.
func (s *Spec) Validate() error {
	if s.Handle != "" {
		if err := validName("Handle", s.Handle); err != nil {
			return err
		}
	}
	if s.RootFS == "" {
		return specErr("RootFS", "required")
	}
	if !filepath.IsAbs(s.RootFS) {
		return specErr("RootFS", "%q is not an absolute path", s.RootFS)
	}
	for i, m := range s.BindMounts {
		f := fmt.Sprintf("BindMounts[%d]", i)
		if !filepath.IsAbs(m.SrcPath) {
			return specErr(f+".SrcPath", "%q is not an absolute path", m.SrcPath)
		}
		if !path.IsAbs(m.DstPath) || path.Clean(m.DstPath) == "/" {
			return specErr(f+".DstPath", "%q is not an absolute path below /", m.DstPath)
		}
		for _, p := range []string{"/proc", "/sys", "/dev"} {
			if c := path.Clean(m.DstPath); c == p || strings.HasPrefix(c, p+"/") {
				return specErr(f+".DstPath", "%q is inside %s, which the container sets up itself", m.DstPath, p)
			}
		}
	}
	if err := validEnv("Env", s.Env); err != nil {
		return err
	}
	if s.Hostname != "" && (len(s.Hostname) > 63 || !hostnameRE.MatchString(s.Hostname)) {
		return specErr("Hostname", "%q is not a valid host name (RFC 1123 label, at most 63 characters)", s.Hostname)
	}
	for k := range s.Properties {
		if k == "" {
			return specErr("Properties", "empty key")
		}
	}
	if s.Limits.MemoryBytes < 0 || (s.Limits.MemoryBytes > 0 && s.Limits.MemoryBytes < 4<<20) {
		return specErr("Limits.MemoryBytes", "%d is below 4 MiB", s.Limits.MemoryBytes)
	}
	if s.Limits.CPUShares != 0 && (s.Limits.CPUShares < 2 || s.Limits.CPUShares > 262144) {
		return specErr("Limits.CPUShares", "%d is outside 2..262144", s.Limits.CPUShares)
	}
	if s.Limits.PidsMax < 0 {
		return specErr("Limits.PidsMax", "%d is negative", s.Limits.PidsMax)
	}
	if s.Limits.DiskBytes < 0 || (s.Limits.DiskBytes > 0 && s.Limits.DiskBytes < 4<<20) {
		return specErr("Limits.DiskBytes", "%d is below 4 MiB", s.Limits.DiskBytes)
	}
	if s.Limits.DiskInodes < 0 || (s.Limits.DiskInodes > 0 && s.Limits.DiskInodes < 64) {
		return specErr("Limits.DiskInodes", "%d is below 64", s.Limits.DiskInodes)
	}
	if s.GraceTime < 0 {
		return specErr("GraceTime", "%v is negative", s.GraceTime)
	}
	if err := validUser("User", s.User); err != nil {
		return err
	}
	if _, err := capabilityNumbers(s.Security.Capabilities); err != nil {
		return err
	}
	for _, r := range s.Security.seccompRules() {
		for _, a := range r.Args {
			if a.Index > 5 {
				return specErr("Security.Seccomp", "argument index %d of %v", a.Index, r.Names)
			}
		}
	}
	return nil
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

func validEnv(field string, env []string) error {
	for i, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return specErr(fmt.Sprintf("%s[%d]", field, i), "%q is not KEY=value", kv)
		}
	}
	return nil
}

func validUser(field, u string) error {
	if u == "" {
		return nil
	}
	if strings.ContainsAny(u, "\x00\n/") {
		return specErr(field, "%q is not a user name or uid:gid", u)
	}
	if a, b, ok := strings.Cut(u, ":"); ok {
		if _, err := strconv.ParseUint(a, 10, 32); err != nil {
			return specErr(field, "%q: uid is not a number", u)
		}
		if _, err := strconv.ParseUint(b, 10, 32); err != nil {
			return specErr(field, "%q: gid is not a number", u)
		}
	}
	return nil
}

// Validate reports the first problem of p as a *SpecError, or nil.
func (p *ProcessSpec) Validate() error {
	if p.ID != "" {
		if err := validName("ID", p.ID); err != nil {
			return err
		}
	}
	if p.Path == "" {
		return specErr("Path", "required")
	}
	if strings.ContainsRune(p.Path, 0) {
		return specErr("Path", "contains NUL")
	}
	for i, a := range p.Args {
		if strings.ContainsRune(a, 0) {
			return specErr(fmt.Sprintf("Args[%d]", i), "contains NUL")
		}
	}
	if err := validEnv("Env", p.Env); err != nil {
		return err
	}
	if p.Dir != "" && !path.IsAbs(p.Dir) {
		return specErr("Dir", "%q is not an absolute path", p.Dir)
	}
	return validUser("User", p.User)
}

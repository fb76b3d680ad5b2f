package wire

import (
	"time"

	"github.com/paaskit/paaskit/container"
)

// Protocol constants of process streams.
const (
	// Upgrade is the protocol a process stream switches to (the
	// request's Upgrade header and the 101 answer's).
	Upgrade = "paaskit-process/1"
	// HeaderProcessID and HeaderProcessPID carry, in the 101 answer, the
	// process's id and its pid in the container (0 when not known).
	HeaderProcessID  = "X-Process-Id"
	HeaderProcessPID = "X-Process-Pid"
)

// TrailerStreamError is the trailer of a stream out answer that carries
// an Error (as JSON) when the tar stream failed after it started; the
// client then returns that error instead of io.EOF.
const TrailerStreamError = "X-Stream-Error"

// Query parameters of the attach route.
const (
	// QueryStdoutOffset and QueryStderrOffset skip that many bytes of
	// the kept output (decimal; default 0).
	QueryStdoutOffset = "stdout_offset"
	QueryStderrOffset = "stderr_offset"
	// QueryStdout and QueryStderr ask for that stream ("1" or "true");
	// a stream not asked for is not sent.
	QueryStdout = "stdout"
	QueryStderr = "stderr"
	// QueryHandles is the comma-separated handle list of the bulk routes
	// (empty: every container).
	QueryHandles = "handles"
	// QueryPath and QueryUser are the file routes' container path and,
	// for stream in, the owner of the extracted files.
	QueryPath = "path"
	QueryUser = "user"
)

// PropertyGraceTime is the property under which the server records a
// container's grace time at create (a Go duration string such as "5m0s"),
// so that it survives a server restart; see GraceTimeResponse. The key is
// reserved: a create request that sets it is refused.
const PropertyGraceTime = "paaskit.grace_time"

// Empty is the body of answers that carry nothing.
type Empty struct{}

// Capacity is what the host offers (garden's Capacity).
type Capacity struct {
	// MemoryBytes is the host's memory (MemTotal of /proc/meminfo).
	MemoryBytes uint64 `json:"memory_in_bytes"`
	// DiskBytes is the size of the file system that holds the depot;
	// DiskFreeBytes what is free on it for the server.
	DiskBytes     uint64 `json:"disk_in_bytes"`
	DiskFreeBytes uint64 `json:"disk_free_in_bytes"`
	// MaxContainers is how many containers the server can hold (the
	// size of its network pool with networking); 0: no fixed limit.
	MaxContainers uint64 `json:"max_containers"`
	// Containers is how many it holds now.
	Containers uint64 `json:"containers"`
}

// CreateRequest creates a container. The Spec is the container package's,
// whole; a RootFS without a leading "/" names one of the server's stacks
// (empty: the server's default stack).
type CreateRequest struct {
	Spec container.Spec `json:"spec"`
}

// ContainerEntry describes a container in the answers to create, lookup
// and list: what a client keeps of it (its properties never change).
type ContainerEntry struct {
	Handle     string            `json:"handle"`
	Path       string            `json:"path"` // its directory in the server's depot
	Properties map[string]string `json:"properties,omitempty"`
}

// StopRequest stops a container (warden's stop): SIGTERM, then SIGKILL
// after the server's stop timeout, or SIGKILL at once with Kill.
type StopRequest struct {
	Kill bool `json:"kill,omitempty"`
}

// LimitMemoryRequest sets a container's memory limit, leaving its other
// limits (warden's limit_memory); 0 lifts it.
type LimitMemoryRequest struct {
	LimitInBytes int64 `json:"limit_in_bytes"`
}

// LimitCPURequest sets a container's CPU shares, leaving its other limits
// (warden's limit_cpu); 0 goes back to the kernel's default.
type LimitCPURequest struct {
	LimitInShares uint64 `json:"limit_in_shares"`
}

// LimitDiskRequest sets a container's disk limit (warden's limit_disk).
type LimitDiskRequest struct {
	ByteLimit  uint64 `json:"byte_limit"`
	InodeLimit uint64 `json:"inode_limit"`
}

// NetInRequest forwards a host port to a container port (warden's
// net_in); zeros take a port from the pool and the same port.
type NetInRequest struct {
	HostPort      uint16 `json:"host_port,omitempty"`
	ContainerPort uint16 `json:"container_port,omitempty"`
}

// RunRequest starts a process (warden's spawn and run, garden's Run). The
// Spec is the container package's, whole. Stdin, Stdout and Stderr say
// which streams the client connects: without Stdin the process reads
// /dev/null; an output stream not asked for is kept in the depot but not
// sent.
type RunRequest struct {
	Spec   container.ProcessSpec `json:"spec"`
	Stdin  bool                  `json:"stdin,omitempty"`
	Stdout bool                  `json:"stdout,omitempty"`
	Stderr bool                  `json:"stderr,omitempty"`
}

// SignalRequest sends a signal (its number) to a process.
type SignalRequest struct {
	Signal int `json:"signal"`
}

// Exit is the payload of an exit frame: how the process ended, or why it
// could not be followed to its end (Error set, Status zero).
type Exit struct {
	Status container.ExitStatus `json:"status"`
	Error  *Error               `json:"error,omitempty"`
}

// BulkInfoEntry is one container's entry in a bulk info answer.
type BulkInfoEntry struct {
	Info  *container.Info `json:"info,omitempty"`
	Error *Error          `json:"error,omitempty"`
}

// BulkMetricsEntry is one container's entry in a bulk metrics answer.
type BulkMetricsEntry struct {
	Metrics *container.Metrics `json:"metrics,omitempty"`
	Error   *Error             `json:"error,omitempty"`
}

// PropertyResponse is the value of one property.
type PropertyResponse struct {
	Value string `json:"value"`
}

// GraceTimeResponse is a container's grace time as recorded by the
// server (see PropertyGraceTime): 0 means none, or a container created
// without the server (directly on its Manager).
type GraceTimeResponse struct {
	GraceTime Duration `json:"grace_time"`
}

// PropertyRequest sets one property (PUT .../properties/{key}).
type PropertyRequest struct {
	Value string `json:"value"`
}

// GraceTimeRequest sets a container's grace time (PUT .../grace_time);
// 0 turns it off.
type GraceTimeRequest struct {
	GraceTime Duration `json:"grace_time"`
}

// QuotaReport is the server's disk quota report (warden's repquota).
type QuotaReport struct {
	// Backend enforces disk limits; Tried says why the backends tried
	// before it were not taken.
	Backend container.QuotaBackend `json:"backend"`
	Tried   []string               `json:"tried,omitempty"`
	Entries []QuotaEntry           `json:"entries"`
}

// QuotaEntry is one container's line of a QuotaReport.
type QuotaEntry struct {
	Handle string              `json:"handle"`
	Usage  container.DiskUsage `json:"usage"`
	Error  *Error              `json:"error,omitempty"`
}

// Duration is a time.Duration that crosses the wire as a Go duration
// string ("1m30s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

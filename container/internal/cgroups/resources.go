package cgroups

import (
	"errors"
	"math"
)

// Limits of the [Resources] fields, checked by [Resources.Validate].
const (
	// MinMemoryLimit is the smallest accepted non-zero MemoryLimit (1 MiB):
	// below it a container cannot even exec its first program.
	MinMemoryLimit = 1 << 20
	// MinCPUShares and MaxCPUShares bound a non-zero CPUShares; they are
	// the kernel's MIN_SHARES and MAX_SHARES for cgroup v1 cpu.shares.
	MinCPUShares = 2
	// MaxCPUShares is the largest accepted CPUShares (1<<18).
	MaxCPUShares = 262144
)

// Resources are the limits of a cgroup. The zero value means "no limits":
// every field is optional and 0 means unlimited (or, for CPUShares, the
// kernel default). Resources is a plain value, safe to copy.
type Resources struct {
	// MemoryLimit is the memory limit in bytes; 0 means no limit. A
	// container gets no swap: on v1 the same value goes to
	// memory.limit_in_bytes and, when swap accounting is on (the
	// memory.memsw.* files exist), memory.memsw.limit_in_bytes; on v2 it
	// goes to memory.max, and memory.swap.max is set to 0.
	MemoryLimit int64

	// CPUShares is the relative CPU weight in cgroup v1 units (2..262144,
	// default 1024); 0 leaves the current value (the kernel default for a
	// new cgroup). On v1 it is written to cpu.shares; on v2 it is converted
	// to cpu.weight (1..10000, default 100) with the formula of runc and
	// crun (opencontainers/cgroups ConvertCPUSharesToCgroupV2Value since
	// runc 1.3.1 / crun 1.23), which maps 2→1, 1024→100 and 262144→10000
	// exactly:
	//
	//	l = log2(shares)
	//	weight = ceil(10^((l*l + 125*l)/612 - 7/34))
	//
	// (the older linear formula 1 + (shares-2)*9999/262142 mapped the
	// default 1024 to 39, starving containers next to v2-native ones).
	CPUShares uint64

	// PidsMax is the largest number of tasks (processes and threads) in
	// the cgroup, written to pids.max; 0 means no limit ("max").
	PidsMax int64

	// Devices restricts device access to a default allowlist. On v1 the
	// devices controller first denies everything ("a"), then allows read,
	// write and mknod ("rwm") of /dev/null (c 1:3), zero (1:5), full (1:7), random (1:8), urandom
	// (1:9), tty (5:0), ptmx (5:2) and the pseudo-terminals (136:*). On v2
	// device access is controlled by an eBPF program attached to the
	// cgroup, which this package does not implement yet: Devices is
	// ignored there. Unlike Docker, mknod of other devices is refused too:
	// a container has no use for device nodes it cannot open.
	Devices bool
}

// Validate reports whether r is acceptable: no negative value, CPUShares
// 0 or in [MinCPUShares]..[MaxCPUShares], MemoryLimit 0 or at least
// [MinMemoryLimit]. Each bad field is reported as a [*ResourceError]
// (wrapping [ErrInvalid]); several are joined with errors.Join.
func (r Resources) Validate() error {
	var errs []error
	switch {
	case r.MemoryLimit < 0:
		errs = append(errs, &ResourceError{Field: "MemoryLimit", Value: r.MemoryLimit, Reason: "must not be negative"})
	case r.MemoryLimit > 0 && r.MemoryLimit < MinMemoryLimit:
		errs = append(errs, &ResourceError{Field: "MemoryLimit", Value: r.MemoryLimit, Reason: "must be 0 (no limit) or at least 1 MiB"})
	}
	if r.CPUShares != 0 && (r.CPUShares < MinCPUShares || r.CPUShares > MaxCPUShares) {
		v := int64(math.MaxInt64)
		if r.CPUShares <= math.MaxInt64 {
			v = int64(r.CPUShares)
		}
		errs = append(errs, &ResourceError{Field: "CPUShares", Value: v, Reason: "must be 0 (default) or in 2..262144"})
	}
	if r.PidsMax < 0 {
		errs = append(errs, &ResourceError{Field: "PidsMax", Value: r.PidsMax, Reason: "must not be negative"})
	}
	return errors.Join(errs...)
}

// sharesToWeight converts cgroup v1 cpu.shares to cgroup v2 cpu.weight
// with the runc/crun formula documented on [Resources.CPUShares]. 0 stays
// 0 ("leave unset"); values are clamped to the v1 range first.
func sharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= MinCPUShares:
		return 1
	case shares >= MaxCPUShares:
		return 10000
	}
	l := math.Log2(float64(shares))
	exp := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exp)))
}

// v1DeviceRule is one line written to devices.deny or devices.allow.
type v1DeviceRule struct {
	allow bool
	rule  string
}

// defaultDeviceRules is the v1 allowlist of [Resources.Devices], in the
// order it is written.
var defaultDeviceRules = []v1DeviceRule{
	{false, "a"},
	{true, "c 1:3 rwm"},
	{true, "c 1:5 rwm"},
	{true, "c 1:7 rwm"},
	{true, "c 1:8 rwm"},
	{true, "c 1:9 rwm"},
	{true, "c 5:0 rwm"},
	{true, "c 5:2 rwm"},
	{true, "c 136:* rwm"},
}

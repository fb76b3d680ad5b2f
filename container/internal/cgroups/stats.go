package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Stats is a snapshot of a cgroup's accounting, returned by
// [Cgroup.Stats]. Values of a controller the cgroup is not in (say, pids
// not mounted) are zero.
type Stats struct {
	// Memory is the memory controller's accounting.
	Memory MemoryStats
	// CPU is the CPU time used by the cgroup's tasks.
	CPU CPUStats
	// Pids is the pids controller's accounting.
	Pids PidsStats
}

// MemoryStats is the memory accounting of a cgroup. The embedded
// [MemoryCounters] are the cgroup's own values as memory.stat reports
// them; Total holds the hierarchical ones (this cgroup and its
// descendants).
type MemoryStats struct {
	// Usage is the memory charged to the cgroup in bytes (v1
	// memory.usage_in_bytes, v2 memory.current).
	Usage uint64
	// Limit is the memory limit in bytes; 0 means no limit (v1 reports
	// "no limit" as a huge number, v2 as "max").
	Limit uint64
	// OOMKill counts the tasks the kernel's OOM killer killed in the
	// cgroup (the oom_kill line of v1 memory.oom_control or v2
	// memory.events).
	OOMKill uint64

	// MemoryCounters are the cgroup's own counters (v1 memory.stat
	// without the total_ prefix). On v2, memory.stat is hierarchical
	// already, so they equal Total.
	MemoryCounters
	// Total are the hierarchical counters: the total_* lines on v1, the
	// same as MemoryCounters on v2.
	Total MemoryCounters

	// Raw is memory.stat as read, key by key, for anything not above.
	Raw map[string]uint64
}

// MemoryCounters are the commonly used lines of memory.stat, in bytes
// except for the page fault counts. On v2 the v1 names are mapped to their
// equivalents: Cache is "file", RSS is "anon", MappedFile is
// "file_mapped", and Swap comes from memory.swap.current.
type MemoryCounters struct {
	Cache        uint64 // page cache
	RSS          uint64 // anonymous memory
	MappedFile   uint64 // page cache mapped into address spaces
	Swap         uint64 // swap used
	PgFault      uint64 // page faults (count)
	PgMajFault   uint64 // major page faults (count)
	InactiveAnon uint64 // anonymous memory on the inactive LRU list
	ActiveAnon   uint64 // anonymous memory on the active LRU list
	InactiveFile uint64 // page cache on the inactive LRU list
	ActiveFile   uint64 // page cache on the active LRU list
	Unevictable  uint64 // memory that cannot be reclaimed (mlocked, …)
}

// CPUStats is the CPU time used by the cgroup's tasks, in nanoseconds. On
// v1 it comes from the cpuacct controller (cpuacct.usage, and
// cpuacct.usage_user/usage_sys or, on old kernels, cpuacct.stat at
// USER_HZ resolution); on v2 from cpu.stat (microsecond resolution).
type CPUStats struct {
	UsageNS  uint64 // total CPU time
	UserNS   uint64 // time in user mode
	SystemNS uint64 // time in kernel mode
}

// PidsStats is the pids controller's accounting.
type PidsStats struct {
	// Current is the number of tasks (processes and threads).
	Current uint64
	// Limit is pids.max; 0 means no limit.
	Limit uint64
}

// ParseOOMKill reads the "oom_kill N" line of a cgroup v1
// memory.oom_control or cgroup v2 memory.events file and returns N. A
// file without that line (kernels before 4.13) is an error.
func ParseOOMKill(r io.Reader) (uint64, error) {
	m, err := parseFlatKeyed(r)
	if err != nil {
		return 0, err
	}
	n, ok := m["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("cgroups: no oom_kill counter (kernel older than 4.13?)")
	}
	return n, nil
}

// parseFlatKeyed parses a "key value" per line cgroup file (memory.stat,
// cpu.stat, memory.events, memory.oom_control, cpuacct.stat).
func parseFlatKeyed(r io.Reader) (map[string]uint64, error) {
	m := map[string]uint64{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("cgroups: malformed line %q: want \"key value\"", line)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cgroups: malformed line %q: %w", line, err)
		}
		m[k] = n
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read: %w", err)
	}
	return m, nil
}

// v1Unlimited is the smallest value v1 treats as "no limit": the kernel
// reports an unset limit as PAGE_COUNTER_MAX pages in bytes, a little below
// 1<<63 and always above this.
const v1Unlimited = 1 << 62

// parseLimit parses a single-value limit file: "max" (v2) or a number at
// or above v1Unlimited (v1) is 0, meaning no limit.
func parseLimit(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n < 0 { // v1 can report -1
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroups: malformed limit %q: %w", s, err)
	}
	if n >= v1Unlimited {
		return 0, nil
	}
	return n, nil
}

// parseUint parses a single-value counter file.
func parseUint(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroups: malformed value %q: %w", strings.TrimSpace(s), err)
	}
	return n, nil
}

// v1MemoryCounters picks the counters of a v1 memory.stat; prefix is ""
// for the cgroup's own values and "total_" for the hierarchical ones.
func v1MemoryCounters(m map[string]uint64, prefix string) MemoryCounters {
	return MemoryCounters{
		Cache:        m[prefix+"cache"],
		RSS:          m[prefix+"rss"],
		MappedFile:   m[prefix+"mapped_file"],
		Swap:         m[prefix+"swap"],
		PgFault:      m[prefix+"pgfault"],
		PgMajFault:   m[prefix+"pgmajfault"],
		InactiveAnon: m[prefix+"inactive_anon"],
		ActiveAnon:   m[prefix+"active_anon"],
		InactiveFile: m[prefix+"inactive_file"],
		ActiveFile:   m[prefix+"active_file"],
		Unevictable:  m[prefix+"unevictable"],
	}
}

// v2MemoryCounters maps a v2 memory.stat to the v1 names; swap is
// memory.swap.current, which memory.stat does not hold.
func v2MemoryCounters(m map[string]uint64, swap uint64) MemoryCounters {
	return MemoryCounters{
		Cache:        m["file"],
		RSS:          m["anon"],
		MappedFile:   m["file_mapped"],
		Swap:         swap,
		PgFault:      m["pgfault"],
		PgMajFault:   m["pgmajfault"],
		InactiveAnon: m["inactive_anon"],
		ActiveAnon:   m["active_anon"],
		InactiveFile: m["inactive_file"],
		ActiveFile:   m["active_file"],
		Unevictable:  m["unevictable"],
	}
}

// v2CPUStats converts a v2 cpu.stat (microseconds) to nanoseconds.
func v2CPUStats(m map[string]uint64) CPUStats {
	return CPUStats{
		UsageNS:  m["usage_usec"] * 1000,
		UserNS:   m["user_usec"] * 1000,
		SystemNS: m["system_usec"] * 1000,
	}
}

// userHZ is the unit of v1 cpuacct.stat: USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

// v1CPUTicks converts a v1 cpuacct.stat ("user N", "system N" in USER_HZ
// ticks) to nanoseconds.
func v1CPUTicks(m map[string]uint64) (user, system uint64) {
	const nsPerTick = 1_000_000_000 / userHZ
	return m["user"] * nsPerTick, m["system"] * nsPerTick
}

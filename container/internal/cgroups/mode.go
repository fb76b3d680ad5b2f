package cgroups

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Mode is the cgroup layout of the host.
type Mode int

const (
	// Unavailable means no cgroup hierarchy is mounted (or the platform is
	// not Linux): [New] and [Load] fail.
	Unavailable Mode = iota
	// Legacy is cgroup v1, including the "hybrid" layout where a
	// controller-less cgroup2 tree is mounted at /sys/fs/cgroup/unified
	// next to the v1 controllers.
	Legacy
	// Unified is cgroup v2 with the unified hierarchy at /sys/fs/cgroup.
	Unified
)

// String returns "unavailable", "legacy" or "unified".
func (m Mode) String() string {
	switch m {
	case Unavailable:
		return "unavailable"
	case Legacy:
		return "legacy"
	case Unified:
		return "unified"
	default:
		return "Mode(" + strconv.Itoa(int(m)) + ")"
	}
}

// hostRoot is where the host mounts its cgroup hierarchies: the unified
// tree itself on v2, the parent of the controller mounts on v1.
const hostRoot = "/sys/fs/cgroup"

// DetectMode reports the cgroup layout of the host, probing the file
// system on the first call only: Unified when
// /sys/fs/cgroup/cgroup.controllers exists, Legacy when a v1 controller
// is mounted below /sys/fs/cgroup, Unavailable otherwise (always on other
// platforms than Linux). It is safe for concurrent use.
func DetectMode() Mode { return detectedMode() }

var detectedMode = sync.OnceValue(func() Mode { return detectMode(hostRoot) })

// v1Controllers are the cgroup v1 controllers a cgroup is created in, when
// mounted: those that limit (memory, cpu, pids, devices), account
// (cpuacct) or stop (freezer) its processes. The others (cpuset, blkio,
// net_cls, perf_event, …) are left alone: every controller a process
// joins costs an attach, and an attach waits for an RCU grace period.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids", "devices", "freezer"}

func detectMode(root string) Mode {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return Unified
	}
	for _, c := range v1Controllers {
		if _, err := os.Stat(filepath.Join(root, c, "cgroup.procs")); err == nil {
			return Legacy
		}
	}
	return Unavailable
}

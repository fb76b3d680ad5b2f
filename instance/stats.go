package instance

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// Stats are a running instance's figures, as dea.find.droplet's "stats"
// with include_stats (see package nats for the wire form).
type Stats struct {
	Name string   // the app's name
	URIs []string // its routes
	Host string   // the DEA's address
	Port int      // the host port
	// Uptime is the time since the instance entered RUNNING.
	Uptime time.Duration
	// MemQuota and DiskQuota are the limits in bytes; FDsQuota the file
	// descriptor limit.
	MemQuota, DiskQuota int64
	FDsQuota            int64
	Usage               Usage
}

// Usage is one sample of an instance's resource use.
type Usage struct {
	Time time.Time
	// CPU is the CPU used since the previous sample (or since the
	// container started, for the first), in percent of one core.
	CPU float64
	// Mem is the memory used, in bytes: RSS and cache, less the inactive
	// file cache, as dea_ng's StatCollector.
	Mem int64
	// Disk is the bytes used by the instance's home directory.
	Disk int64
}

// Stats samples an instance's usage from its container's metrics. An
// instance without a container (not started, stopped, crashed) returns
// an error wrapping ErrNotFound.
func (m *Manager) Stats(ctx context.Context, inst *Instance) (Stats, error) {
	inst.mu.Lock()
	a, ctr := inst.a, inst.ctr
	inst.mu.Unlock()
	if ctr == nil || (a.State != StateRunning && a.State != StateEvacuating && a.State != StateStarting) {
		return Stats{}, fmt.Errorf("instance %q: no running container: %w", a.InstanceID, ErrNotFound)
	}
	info, err := ctr.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("instance %q: %w", a.InstanceID, err)
	}
	now := time.Now()
	st := Stats{
		Name: a.ApplicationName, URIs: a.ApplicationURIs, Host: m.opts.localIP, Port: a.InstanceHostPort,
		MemQuota: a.Limits.Mem << 20, DiskQuota: a.Limits.Disk << 20, FDsQuota: a.Limits.FDs,
	}
	if !a.StateRunningTimestamp.IsZero() {
		st.Uptime = now.Sub(a.StateRunningTimestamp.Time)
	}
	mem := info.Memory.Total
	if mem.RSS+mem.Cache == 0 {
		mem = info.Memory.MemoryCounters
	}
	used := int64(mem.RSS+mem.Cache) - int64(mem.InactiveFile)
	st.Usage = Usage{Time: now, Mem: max(used, 0), Disk: dirSize(m.homeDir(a.InstanceID))}

	inst.mu.Lock()
	prev := inst.cpu
	inst.cpu = cpuSample{at: now, usage: info.CPU.Usage}
	inst.mu.Unlock()
	since := prev.at
	if since.IsZero() {
		since = info.CreatedAt
	}
	if el := now.Sub(since); el > 0 && info.CPU.Usage >= prev.usage {
		st.Usage.CPU = float64(info.CPU.Usage-prev.usage) / float64(el.Nanoseconds()) * 100
	}
	return st, nil
}

// dirSize returns the bytes of the regular files below dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

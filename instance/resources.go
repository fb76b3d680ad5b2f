package instance

import (
	"fmt"
	"math"
)

// Defaults of ResourceConfig: dea_ng's resources.memory_mb and the BOSH
// job's disk_mb, both with an overcommit factor of 1.
const (
	DefaultMemoryMB = 8192
	DefaultDiskMB   = 32000
)

// ResourceConfig is a DEA's capacity. Zero fields mean the defaults.
type ResourceConfig struct {
	MemoryMB               int64   // physical memory given to instances, MB
	MemoryOvercommitFactor float64 // capacity = MemoryMB × factor
	DiskMB                 int64   // disk given to instances, MB
	DiskOvercommitFactor   float64 // capacity = DiskMB × factor
	MinimumStagingMemoryMB int64   // for NumberReservableStagers; default 1024
	MinimumStagingDiskMB   int64   // likewise; default 2048
}

func (c ResourceConfig) withDefaults() ResourceConfig {
	if c.MemoryMB == 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if c.DiskMB == 0 {
		c.DiskMB = DefaultDiskMB
	}
	if c.MemoryOvercommitFactor == 0 {
		c.MemoryOvercommitFactor = 1
	}
	if c.DiskOvercommitFactor == 0 {
		c.DiskOvercommitFactor = 1
	}
	if c.MinimumStagingMemoryMB == 0 {
		c.MinimumStagingMemoryMB = 1024
	}
	if c.MinimumStagingDiskMB == 0 {
		c.MinimumStagingDiskMB = 2048
	}
	return c
}

func (c ResourceConfig) validate() error {
	switch {
	case c.MemoryMB < 0:
		return specErr("Resources.MemoryMB", "negative")
	case c.DiskMB < 0:
		return specErr("Resources.DiskMB", "negative")
	case c.MemoryOvercommitFactor < 0 || math.IsNaN(c.MemoryOvercommitFactor) || math.IsInf(c.MemoryOvercommitFactor, 0):
		return specErr("Resources.MemoryOvercommitFactor", "must be a positive number")
	case c.DiskOvercommitFactor < 0 || math.IsNaN(c.DiskOvercommitFactor) || math.IsInf(c.DiskOvercommitFactor, 0):
		return specErr("Resources.DiskOvercommitFactor", "must be a positive number")
	}
	return nil
}

// ResourceManager accounts a DEA's memory and disk (dea_ng's
// ResourceManager, PROTOCOL.md §4.2). Reservations are not recorded
// separately: they are the limits of the registered instances, by state
// (memory for BORN, STARTING, RUNNING, STOPPING, RESUMING, EVACUATING;
// disk for those and CRASHED), plus the staging tasks' reservations. All
// figures are in MB. It is safe for concurrent use.
type ResourceManager struct {
	reg *Registry
	cfg ResourceConfig
}

// NewResourceManager returns a ResourceManager for the instances of reg
// with the capacity of cfg.
func NewResourceManager(reg *Registry, cfg ResourceConfig) (*ResourceManager, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &ResourceManager{reg: reg, cfg: cfg}, nil
}

// StagingReservation is what a staging task holds.
type StagingReservation struct {
	TaskID   string // required, unique
	MemoryMB int64
	DiskMB   int64
	// DropletSHA1 is the droplet the task produced, once known: it keeps
	// the droplet from being reaped. Optional.
	DropletSHA1 string
}

// Resources is a consistent view of a ResourceManager at one moment.
type Resources struct {
	MemoryCapacity, DiskCapacity   int64
	ReservedMemory, ReservedDisk   int64
	RemainingMemory, RemainingDisk int64
	// AvailableMemoryRatio is 1 − reserved/capacity (likewise disk).
	AvailableMemoryRatio, AvailableDiskRatio float64
}

// MemoryCapacity returns MemoryMB × MemoryOvercommitFactor.
func (rm *ResourceManager) MemoryCapacity() int64 {
	return int64(float64(rm.cfg.MemoryMB) * rm.cfg.MemoryOvercommitFactor)
}

// DiskCapacity returns DiskMB × DiskOvercommitFactor.
func (rm *ResourceManager) DiskCapacity() int64 {
	return int64(float64(rm.cfg.DiskMB) * rm.cfg.DiskOvercommitFactor)
}

// reservedLocked: the caller holds rm.reg.mu.
func (rm *ResourceManager) reservedLocked() (mem, disk int64) {
	for _, s := range States {
		if s.reservesMemory() {
			mem += rm.reg.mem[s]
		}
		if s.reservesDisk() {
			disk += rm.reg.disk[s]
		}
	}
	for _, st := range rm.reg.staging {
		mem += st.MemoryMB
		disk += st.DiskMB
	}
	return mem, disk
}

// Snapshot returns every figure at once.
func (rm *ResourceManager) Snapshot() Resources {
	rm.reg.mu.Lock()
	mem, disk := rm.reservedLocked()
	rm.reg.mu.Unlock()
	r := Resources{
		MemoryCapacity: rm.MemoryCapacity(), DiskCapacity: rm.DiskCapacity(),
		ReservedMemory: mem, ReservedDisk: disk,
	}
	r.RemainingMemory = r.MemoryCapacity - mem
	r.RemainingDisk = r.DiskCapacity - disk
	r.AvailableMemoryRatio = ratio(mem, r.MemoryCapacity)
	r.AvailableDiskRatio = ratio(disk, r.DiskCapacity)
	return r
}

func ratio(reserved, capacity int64) float64 {
	if capacity <= 0 {
		return 0
	}
	return 1 - float64(reserved)/float64(capacity)
}

// ReservedMemory returns the MB of memory reserved.
func (rm *ResourceManager) ReservedMemory() int64 { return rm.Snapshot().ReservedMemory }

// ReservedDisk returns the MB of disk reserved.
func (rm *ResourceManager) ReservedDisk() int64 { return rm.Snapshot().ReservedDisk }

// RemainingMemory returns capacity − reserved (negative when
// overcommitted beyond the capacity, after a resume for example).
func (rm *ResourceManager) RemainingMemory() int64 { return rm.Snapshot().RemainingMemory }

// RemainingDisk returns capacity − reserved.
func (rm *ResourceManager) RemainingDisk() int64 { return rm.Snapshot().RemainingDisk }

// AvailableMemoryRatio returns 1 − reserved/capacity.
func (rm *ResourceManager) AvailableMemoryRatio() float64 { return rm.Snapshot().AvailableMemoryRatio }

// AvailableDiskRatio returns 1 − reserved/capacity.
func (rm *ResourceManager) AvailableDiskRatio() float64 { return rm.Snapshot().AvailableDiskRatio }

// CanReserve reports whether mem and disk MB are both available.
func (rm *ResourceManager) CanReserve(mem, disk int64) bool {
	return rm.ConstrainedResource(mem, disk) == ""
}

// ConstrainedResource returns "disk" when disk MB are not available, else
// "memory" when mem MB are not, else "" (dea_ng's
// get_constrained_resource: disk is checked first).
func (rm *ResourceManager) ConstrainedResource(mem, disk int64) string {
	rm.reg.mu.Lock()
	defer rm.reg.mu.Unlock()
	return rm.constrainedLocked(mem, disk)
}

func (rm *ResourceManager) constrainedLocked(mem, disk int64) string {
	rmem, rdisk := rm.reservedLocked()
	switch {
	case rm.DiskCapacity()-rdisk < disk:
		return "disk"
	case rm.MemoryCapacity()-rmem < mem:
		return "memory"
	}
	return ""
}

func (rm *ResourceManager) resourceErrorLocked(res string, mem, disk int64) *ResourceError {
	rmem, rdisk := rm.reservedLocked()
	if res == "disk" {
		return &ResourceError{Resource: res, Requested: disk, Remaining: rm.DiskCapacity() - rdisk}
	}
	return &ResourceError{Resource: res, Requested: mem, Remaining: rm.MemoryCapacity() - rmem}
}

// NumberReservable returns how many reservations of mem and disk MB fit
// in what remains (0 when either is 0 or less).
func (rm *ResourceManager) NumberReservable(mem, disk int64) int {
	if mem <= 0 || disk <= 0 {
		return 0
	}
	s := rm.Snapshot()
	n := min(s.RemainingMemory/mem, s.RemainingDisk/disk)
	return int(max(n, 0))
}

// NumberReservableStagers returns NumberReservable of the minimum staging
// sizes (dea_ng's reservable_stagers metric).
func (rm *ResourceManager) NumberReservableStagers() int {
	return rm.NumberReservable(rm.cfg.MinimumStagingMemoryMB, rm.cfg.MinimumStagingDiskMB)
}

// ReserveStaging reserves a staging task's memory and disk. A task id
// already reserved returns an error wrapping ErrAlreadyExists; when the
// resources are not available, a *ResourceError.
func (rm *ResourceManager) ReserveStaging(r StagingReservation) error {
	if r.TaskID == "" || r.MemoryMB < 0 || r.DiskMB < 0 {
		return specErr("StagingReservation", "task id required, sizes non-negative")
	}
	rm.reg.mu.Lock()
	defer rm.reg.mu.Unlock()
	if _, ok := rm.reg.staging[r.TaskID]; ok {
		return fmt.Errorf("instance: staging task %q: %w", r.TaskID, ErrAlreadyExists)
	}
	if res := rm.constrainedLocked(r.MemoryMB, r.DiskMB); res != "" {
		return rm.resourceErrorLocked(res, r.MemoryMB, r.DiskMB)
	}
	rm.reg.staging[r.TaskID] = r
	return nil
}

// UpdateStaging replaces a staging reservation's droplet (sizes are
// kept). An unknown task returns an error wrapping ErrNotFound.
func (rm *ResourceManager) UpdateStaging(taskID, dropletSHA1 string) error {
	rm.reg.mu.Lock()
	defer rm.reg.mu.Unlock()
	r, ok := rm.reg.staging[taskID]
	if !ok {
		return fmt.Errorf("instance: staging task %q: %w", taskID, ErrNotFound)
	}
	r.DropletSHA1 = dropletSHA1
	rm.reg.staging[taskID] = r
	return nil
}

// ReleaseStaging releases a staging task's reservation; releasing one
// that is not reserved does nothing.
func (rm *ResourceManager) ReleaseStaging(taskID string) {
	rm.reg.mu.Lock()
	defer rm.reg.mu.Unlock()
	delete(rm.reg.staging, taskID)
}

// Staging returns the staging reservations.
func (rm *ResourceManager) Staging() []StagingReservation {
	rm.reg.mu.Lock()
	defer rm.reg.mu.Unlock()
	out := make([]StagingReservation, 0, len(rm.reg.staging))
	for _, r := range rm.reg.staging {
		out = append(out, r)
	}
	return out
}

// registerReserving registers inst when its limits fit, atomically with
// the check, and returns a *ResourceError when they do not (inst is then
// not registered). With force, it registers without checking (resume).
func (rm *ResourceManager) registerReserving(inst *Instance, force bool) error {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	rm.reg.mu.Lock()
	defer rm.reg.mu.Unlock()
	if !force {
		mem, disk := inst.a.Limits.Mem, inst.a.Limits.Disk
		if res := rm.constrainedLocked(mem, disk); res != "" {
			return rm.resourceErrorLocked(res, mem, disk)
		}
	}
	return rm.reg.registerLocked(inst)
}

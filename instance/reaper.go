package instance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/paaskit/paaskit/container"
)

// ReaperConfig sets the reapers' intervals (a zero interval turns that
// reaper off) and thresholds (a zero threshold, lifetime or timeout
// means DefaultReaperConfig's). DefaultReaperConfig has dea_ng's values;
// the zero ReaperConfig turns every reaper off (their methods still work
// when called).
type ReaperConfig struct {
	// OrphanedCrashesInterval: remove crash directories of instances the
	// registry does not know (10 s).
	OrphanedCrashesInterval time.Duration
	// CrashesInterval: keep, per app, only the most recent CRASHED
	// instance, and only for CrashLifetime (10 s).
	CrashesInterval time.Duration
	// DiskPressureInterval: while the crashes' file system uses more
	// than BlockUsageThreshold of its blocks or InodeUsageThreshold of
	// its inodes, remove the oldest crash (10 s).
	DiskPressureInterval time.Duration
	// StoppingInterval: stop again the instances STOPPING for longer
	// than StoppingTimeout (10 s).
	StoppingInterval time.Duration
	// ContainersInterval: destroy containers of this package
	// (PropertyOwner) that no instance references, once seen so on two
	// passes in a row (600 s).
	ContainersInterval time.Duration
	// DropletsInterval: remove droplets no instance or staging task
	// references, when the droplet source is a DropletStore (60 s).
	DropletsInterval time.Duration

	CrashLifetime       time.Duration // 1 h
	StoppingTimeout     time.Duration // 60 s
	BlockUsageThreshold float64       // 0.8
	InodeUsageThreshold float64       // 0.8
}

// DefaultReaperConfig returns dea_ng's intervals and thresholds
// (PROTOCOL.md §2.6).
func DefaultReaperConfig() ReaperConfig {
	return ReaperConfig{
		OrphanedCrashesInterval: 10 * time.Second,
		CrashesInterval:         10 * time.Second,
		DiskPressureInterval:    10 * time.Second,
		StoppingInterval:        10 * time.Second,
		ContainersInterval:      600 * time.Second,
		DropletsInterval:        60 * time.Second,
		CrashLifetime:           time.Hour,
		StoppingTimeout:         60 * time.Second,
		BlockUsageThreshold:     0.8,
		InodeUsageThreshold:     0.8,
	}
}

func (c ReaperConfig) withDefaults() ReaperConfig {
	d := DefaultReaperConfig()
	if c.CrashLifetime == 0 {
		c.CrashLifetime = d.CrashLifetime
	}
	if c.StoppingTimeout == 0 {
		c.StoppingTimeout = d.StoppingTimeout
	}
	if c.BlockUsageThreshold == 0 {
		c.BlockUsageThreshold = d.BlockUsageThreshold
	}
	if c.InodeUsageThreshold == 0 {
		c.InodeUsageThreshold = d.InodeUsageThreshold
	}
	return c
}

func (c ReaperConfig) validate() error {
	for _, d := range []time.Duration{c.OrphanedCrashesInterval, c.CrashesInterval, c.DiskPressureInterval,
		c.StoppingInterval, c.ContainersInterval, c.DropletsInterval, c.CrashLifetime, c.StoppingTimeout} {
		if d < 0 {
			return specErr("Reapers", "negative duration %v", d)
		}
	}
	if c.BlockUsageThreshold < 0 || c.BlockUsageThreshold > 1 || c.InodeUsageThreshold < 0 || c.InodeUsageThreshold > 1 {
		return specErr("Reapers", "usage thresholds must be within 0..1")
	}
	return nil
}

// DiskUsage is how full a file system is, as ratios of used to total.
type DiskUsage struct {
	BlockRatio, InodeRatio float64
}

// startReapers starts one goroutine per enabled reaper.
func (m *Manager) startReapers() {
	c := m.opts.reapers
	for _, r := range []struct {
		every time.Duration
		run   func(context.Context) ([]string, error)
	}{
		{c.OrphanedCrashesInterval, m.ReapOrphanedCrashes},
		{c.CrashesInterval, m.ReapCrashes},
		{c.DiskPressureInterval, m.ReapCrashesUnderDiskPressure},
		{c.StoppingInterval, m.ReapStopping},
		{c.ContainersInterval, m.ReapOrphanedContainers},
		{c.DropletsInterval, m.ReapUnreferencedDroplets},
	} {
		if r.every <= 0 {
			continue
		}
		m.goTracked(func() {
			t := time.NewTicker(r.every)
			defer t.Stop()
			for {
				select {
				case <-m.ctx.Done():
					return
				case <-t.C:
					if _, err := r.run(m.ctx); err != nil && m.ctx.Err() == nil {
						m.log.Warn("reaper", "err", err)
					}
				}
			}
		})
	}
}

// crashRecord is what the crash reapers decide on.
type crashRecord struct {
	id, app string
	at      time.Time
}

// orphanedCrashDirs returns the crash directories (instance ids) that
// no registered instance owns.
func orphanedCrashDirs(dirs []string, known map[string]bool) []string {
	var out []string
	for _, d := range dirs {
		if !known[d] {
			out = append(out, d)
		}
	}
	return out
}

// oldCrashes returns the crashes to reap: per app all but the most
// recent, and the most recent too once older than lifetime.
func oldCrashes(crashes []crashRecord, now time.Time, lifetime time.Duration) []string {
	newest := make(map[string]crashRecord)
	for _, c := range crashes {
		if n, ok := newest[c.app]; !ok || c.at.After(n.at) || c.at.Equal(n.at) && c.id > n.id {
			newest[c.app] = c
		}
	}
	var out []string
	for _, c := range crashes {
		if newest[c.app].id != c.id || now.Sub(c.at) > lifetime {
			out = append(out, c.id)
		}
	}
	slices.Sort(out)
	return out
}

// crashUnderDiskPressure returns the oldest crash when usage is over
// either threshold.
func crashUnderDiskPressure(crashes []crashRecord, u DiskUsage, blockMax, inodeMax float64) (string, bool) {
	if len(crashes) == 0 || u.BlockRatio <= blockMax && u.InodeRatio <= inodeMax {
		return "", false
	}
	oldest := slices.MinFunc(crashes, func(a, b crashRecord) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id))
	})
	return oldest.id, true
}

// stuckStopping returns the instances STOPPING since longer than
// timeout.
func stuckStopping(stopping []crashRecord, now time.Time, timeout time.Duration) []string {
	var out []string
	for _, s := range stopping {
		if now.Sub(s.at) > timeout {
			out = append(out, s.id)
		}
	}
	slices.Sort(out)
	return out
}

// orphanedContainers returns the containers to destroy (orphaned now and
// on the previous pass) and the orphans to remember for the next pass.
func orphanedContainers(handles []string, known, suspects map[string]bool) (destroy []string, next map[string]bool) {
	next = make(map[string]bool)
	for _, h := range handles {
		if known[h] {
			continue
		}
		if suspects[h] {
			destroy = append(destroy, h)
		} else {
			next[h] = true
		}
	}
	slices.Sort(destroy)
	return destroy, next
}

// unreferencedDroplets returns the droplets nothing uses.
func unreferencedDroplets(have []string, used map[string]bool) []string {
	var out []string
	for _, d := range have {
		if !used[d] {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func (m *Manager) records(state State) []crashRecord {
	insts := m.reg.ByState(state)
	out := make([]crashRecord, 0, len(insts))
	for _, inst := range insts {
		a := inst.Attributes()
		at := a.StateTimestamp.Time
		if state == StateCrashed && !a.StateCrashedTimestamp.IsZero() {
			at = a.StateCrashedTimestamp.Time
		}
		out = append(out, crashRecord{id: a.InstanceID, app: a.ApplicationID, at: at})
	}
	return out
}

// reapCrash deletes a CRASHED instance by id.
func (m *Manager) reapCrash(ctx context.Context, id string) error {
	inst, err := m.reg.Lookup(id)
	if err != nil {
		return err
	}
	return m.Delete(ctx, inst)
}

// ReapOrphanedCrashes removes the crash directories of instances the
// registry does not know and returns their ids.
func (m *Manager) ReapOrphanedCrashes(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(m.paths.crashes)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(ents))
	for _, e := range ents {
		dirs = append(dirs, e.Name())
	}
	known := make(map[string]bool)
	for _, inst := range m.reg.All() {
		known[inst.ID()] = true
	}
	var errs []error
	var done []string
	for _, id := range orphanedCrashDirs(dirs, known) {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		if err := os.RemoveAll(m.crashDir(id)); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, id)
	}
	return done, errors.Join(errs...)
}

// ReapCrashes keeps, per app, only the most recent CRASHED instance and
// only for the crash lifetime; it deletes the others (with their logs)
// and returns their ids.
func (m *Manager) ReapCrashes(ctx context.Context) ([]string, error) {
	return m.reapIDs(ctx, oldCrashes(m.records(StateCrashed), time.Now(), m.opts.reapers.CrashLifetime), m.reapCrash)
}

// ReapCrashesUnderDiskPressure deletes the oldest CRASHED instance while
// the crashes' file system is fuller than the thresholds, and returns
// the ids deleted. On platforms where usage cannot be read it does
// nothing.
func (m *Manager) ReapCrashesUnderDiskPressure(ctx context.Context) ([]string, error) {
	var done []string
	c := m.opts.reapers
	for {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		m.mu.Lock()
		usage := m.diskUsage
		m.mu.Unlock()
		u, err := usage(m.paths.crashes)
		if errors.Is(err, errors.ErrUnsupported) {
			return done, nil
		}
		if err != nil {
			return done, err
		}
		id, ok := crashUnderDiskPressure(m.records(StateCrashed), u, c.BlockUsageThreshold, c.InodeUsageThreshold)
		if !ok {
			return done, nil
		}
		if err := m.reapCrash(ctx, id); err != nil {
			return done, err
		}
		done = append(done, id)
	}
}

// ReapStopping stops again (see Stop) the instances STOPPING for longer
// than the stopping timeout, in parallel, and returns their ids.
func (m *Manager) ReapStopping(ctx context.Context) ([]string, error) {
	ids := stuckStopping(m.records(StateStopping), time.Now(), m.opts.reapers.StoppingTimeout)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			inst, err := m.reg.Lookup(id)
			if err == nil {
				err = m.Stop(ctx, inst)
			}
			if err != nil && !errors.Is(err, ErrNotFound) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return ids, errors.Join(errs...)
}

// ReapOrphanedContainers destroys the containers this package made
// (PropertyOwner) that no registered instance references, once they were
// found orphaned on two passes in a row (a container being created
// between two passes is not taken for an orphan). It returns the handles
// destroyed. Call it once after Resume at boot, as dea_ng did.
func (m *Manager) ReapOrphanedContainers(ctx context.Context) ([]string, error) {
	handles, err := m.cfg.Containers.List(ctx, map[string]string{PropertyOwner: OwnerInstance})
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool)
	for _, inst := range m.reg.All() {
		known[inst.Attributes().WardenHandle] = true
	}
	m.mu.Lock()
	destroy, next := orphanedContainers(handles, known, m.suspects)
	m.suspects = next
	m.mu.Unlock()
	return m.reapIDs(ctx, destroy, func(ctx context.Context, h string) error {
		c, err := m.cfg.Containers.Lookup(ctx, h)
		if err == nil {
			err = c.Destroy(ctx)
		}
		if errors.Is(err, container.ErrNotFound) {
			return nil
		}
		return err
	})
}

// ReapUnreferencedDroplets removes, when the droplet source is a
// DropletStore, the droplets that no registered instance and no staging
// reservation references, and returns their SHA-1s. Call it after Resume
// at boot, as dea_ng did; never before.
func (m *Manager) ReapUnreferencedDroplets(ctx context.Context) ([]string, error) {
	store, ok := m.cfg.Droplets.(DropletStore)
	if !ok {
		return nil, nil
	}
	have, err := store.SHA1s(ctx)
	if err != nil {
		return nil, err
	}
	used := make(map[string]bool)
	for _, inst := range m.reg.All() {
		used[inst.Attributes().DropletSHA1] = true
	}
	for _, s := range m.res.Staging() {
		used[s.DropletSHA1] = true
	}
	return m.reapIDs(ctx, unreferencedDroplets(have, used), store.Remove)
}

func (m *Manager) reapIDs(ctx context.Context, ids []string, reap func(context.Context, string) error) ([]string, error) {
	var done []string
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		if err := reap(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("reap %s: %w", id, err))
			continue
		}
		done = append(done, id)
	}
	return done, errors.Join(errs...)
}

package instance

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
)

// Registry holds the instances of one DEA, indexed by instance id, by
// app and by state (dea_ng's InstanceRegistry). It is safe for
// concurrent use. Its zero value is not usable; use NewRegistry.
//
// An instance's state and the reservations of the ResourceManager are
// kept up to date by the instance's transitions while it is registered.
type Registry struct {
	mu      sync.Mutex
	byID    map[string]*entry
	byApp   map[string]map[*Instance]*entry
	byState [len(stateNames)]map[*Instance]*entry
	// reserved MB per state, for the ResourceManager.
	mem, disk [len(stateNames)]int64
	staging   map[string]StagingReservation
}

// entry is the registry's copy of what it indexes and filters on, so that
// it never needs an instance's lock while holding its own.
type entry struct {
	inst    *Instance
	id      string
	app     string
	version string
	index   int
	state   State
	mem     int64
	disk    int64
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	r := &Registry{
		byID:    make(map[string]*entry),
		byApp:   make(map[string]map[*Instance]*entry),
		staging: make(map[string]StagingReservation),
	}
	for s := range r.byState {
		r.byState[s] = make(map[*Instance]*entry)
	}
	return r
}

// Register adds inst. An instance id already registered returns an error
// wrapping ErrAlreadyExists; an instance registered in another Registry
// too.
func (r *Registry) Register(inst *Instance) error {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.registerLocked(inst)
}

// registerLocked: the caller holds inst.mu and r.mu.
func (r *Registry) registerLocked(inst *Instance) error {
	id := inst.a.InstanceID
	if inst.reg != nil {
		return fmt.Errorf("instance %q: registered already: %w", id, ErrAlreadyExists)
	}
	if _, ok := r.byID[id]; ok {
		return fmt.Errorf("instance %q: %w", id, ErrAlreadyExists)
	}
	e := &entry{
		inst: inst, id: id, app: inst.a.ApplicationID, version: inst.a.ApplicationVersion,
		index: inst.a.InstanceIndex, state: inst.a.State, mem: inst.a.Limits.Mem, disk: inst.a.Limits.Disk,
	}
	r.byID[id] = e
	apps := r.byApp[e.app]
	if apps == nil {
		apps = make(map[*Instance]*entry)
		r.byApp[e.app] = apps
	}
	apps[inst] = e
	r.byState[e.state][inst] = e
	r.mem[e.state] += e.mem
	r.disk[e.state] += e.disk
	inst.reg = r
	return nil
}

// Unregister removes the instance with that id and returns it, or
// returns an error wrapping ErrNotFound. It does not change the
// instance's state (the Manager moves it to DELETED).
func (r *Registry) Unregister(id string) (*Instance, error) {
	r.mu.Lock()
	e, ok := r.byID[id]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("instance %q: %w", id, ErrNotFound)
	}
	e.inst.mu.Lock()
	defer e.inst.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[id] != e {
		return nil, fmt.Errorf("instance %q: %w", id, ErrNotFound)
	}
	r.removeLocked(e)
	return e.inst, nil
}

func (r *Registry) removeLocked(e *entry) {
	delete(r.byID, e.id)
	if apps := r.byApp[e.app]; apps != nil {
		delete(apps, e.inst)
		if len(apps) == 0 {
			delete(r.byApp, e.app)
		}
	}
	delete(r.byState[e.state], e.inst)
	r.mem[e.state] -= e.mem
	r.disk[e.state] -= e.disk
	e.inst.reg = nil
}

// moved records a transition; the caller holds i.mu.
func (r *Registry) moved(i *Instance, from, to State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byID[i.a.InstanceID]
	if e == nil || e.inst != i {
		return
	}
	delete(r.byState[from], i)
	r.byState[to][i] = e
	r.mem[from] -= e.mem
	r.disk[from] -= e.disk
	r.mem[to] += e.mem
	r.disk[to] += e.disk
	e.state = to
}

// renamed records a change of id or version; the caller holds i.mu.
func (r *Registry) renamed(i *Instance, oldID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byID[oldID]
	if e == nil || e.inst != i {
		return fmt.Errorf("instance %q: %w", oldID, ErrNotFound)
	}
	if newID := i.a.InstanceID; newID != oldID {
		if _, taken := r.byID[newID]; taken {
			return fmt.Errorf("instance %q: %w", newID, ErrAlreadyExists)
		}
		delete(r.byID, oldID)
		r.byID[newID] = e
		e.id = newID
	}
	e.version = i.a.ApplicationVersion
	return nil
}

// Lookup returns the instance with that id, or an error wrapping
// ErrNotFound.
func (r *Registry) Lookup(id string) (*Instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byID[id]; ok {
		return e.inst, nil
	}
	return nil, fmt.Errorf("instance %q: %w", id, ErrNotFound)
}

// Len returns the number of registered instances.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// All returns every instance, ordered by app, index and id.
func (r *Registry) All() []*Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	es := make([]*entry, 0, len(r.byID))
	for _, e := range r.byID {
		es = append(es, e)
	}
	return sorted(es)
}

// ByApp returns the instances of an app, ordered by index and id.
func (r *Registry) ByApp(appID string) []*Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	es := make([]*entry, 0, len(r.byApp[appID]))
	for _, e := range r.byApp[appID] {
		es = append(es, e)
	}
	return sorted(es)
}

// ByState returns the instances in any of the states, ordered by app,
// index and id.
func (r *Registry) ByState(states ...State) []*Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	var es []*entry
	for _, s := range states {
		if s.valid() {
			for _, e := range r.byState[s] {
				es = append(es, e)
			}
		}
	}
	return sorted(es)
}

// CountByState returns how many instances are in each state (states
// with none are left out).
func (r *Registry) CountByState() map[State]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[State]int)
	for _, s := range States {
		if n := len(r.byState[s]); n > 0 {
			out[s] = n
		}
	}
	return out
}

// AppIDToCount returns, per app, the number of its registered instances,
// whatever their state (dea_ng's app_id_to_count, advertised in
// dea.advertise and dea.shutdown).
func (r *Registry) AppIDToCount() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.byApp))
	for app, m := range r.byApp {
		out[app] = len(m)
	}
	return out
}

// Filter selects instances as a dea.stop or dea.find.droplet message
// does (dea_ng's instances_filtered_by_message): the app is required,
// every other field is optional and an empty one does not filter.
type Filter struct {
	// Droplet is the app's GUID. Required: a Filter without it selects
	// nothing.
	Droplet string
	// Version selects instances of that app version.
	Version string
	// Instances selects instances by id; InstanceIDs is its older name,
	// used only when Instances is empty.
	Instances   []string
	InstanceIDs []string
	// Indices selects instances by index.
	Indices []int
	// States selects instances by state.
	States []State
}

// Validate reports a missing Droplet or an invalid state as a
// *SpecError.
func (f *Filter) Validate() error {
	if f.Droplet == "" {
		return specErr("Droplet", "required")
	}
	for i, s := range f.States {
		if !s.valid() {
			return specErr(fmt.Sprintf("States[%d]", i), "not a state: %d", int(s))
		}
	}
	return nil
}

// Match reports whether f selects an instance with these attributes.
func (f *Filter) Match(a *Attributes) bool {
	return f.match(a.ApplicationID, a.ApplicationVersion, a.InstanceID, a.InstanceIndex, a.State)
}

func (f *Filter) match(app, version, id string, index int, state State) bool {
	if f.Droplet == "" || app != f.Droplet {
		return false
	}
	if f.Version != "" && version != f.Version {
		return false
	}
	ids := f.Instances
	if len(ids) == 0 {
		ids = f.InstanceIDs
	}
	if len(ids) > 0 && !slices.Contains(ids, id) {
		return false
	}
	if len(f.Indices) > 0 && !slices.Contains(f.Indices, index) {
		return false
	}
	if len(f.States) > 0 && !slices.Contains(f.States, state) {
		return false
	}
	return true
}

// Find returns the instances f selects, ordered by index and id; none
// when f has no Droplet. It looks only at the app's instances, so its
// cost does not grow with the size of the registry.
func (r *Registry) Find(f Filter) []*Instance {
	if f.Droplet == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var es []*entry
	for _, e := range r.byApp[f.Droplet] {
		if f.match(e.app, e.version, e.id, e.index, e.state) {
			es = append(es, e)
		}
	}
	return sorted(es)
}

func sorted(es []*entry) []*Instance {
	slices.SortFunc(es, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.index, b.index), cmp.Compare(a.id, b.id))
	})
	out := make([]*Instance, len(es))
	for i, e := range es {
		out[i] = e.inst
	}
	return out
}

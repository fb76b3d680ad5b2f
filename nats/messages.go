package nats

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Message is implemented by every message type of this package. Validate
// reports every rule of the protocol the message breaks, as
// [*ValidationError]s joined with [errors.Join]; nil means the message is
// good to send (or to act on).
type Message interface {
	Validate() error
}

// Extra holds the members of a JSON object that the Go type does not
// know, by name, as the raw JSON they had. Decoding fills it; encoding
// writes its members back next to the known fields, so a message from a
// newer peer is relayed without losing anything. A name in Extra that is
// also a known field makes encoding fail. Nil when there were none.
type Extra = map[string]json.RawMessage

// Limits are the resource limits of an app instance, as Cloud Controller
// sends them in the start message. Zero means "not set" (the DEA applies
// its defaults); negative values are invalid.
type Limits struct {
	// Mem is the memory limit in MiB.
	Mem int `json:"mem"`
	// Disk is the disk quota in MiB.
	Disk int `json:"disk"`
	// FDs is the limit on open file descriptors.
	FDs int `json:"fds"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

func (l Limits) check(c *checker, prefix string) {
	c.nonNegative(prefix+".mem", int64(l.Mem))
	c.nonNegative(prefix+".disk", int64(l.Disk))
	c.nonNegative(prefix+".fds", int64(l.FDs))
}

// EgressRule is one rule of a security group, as Cloud Controller's
// EgressNetworkRulesPresenter writes it into start and staging messages.
type EgressRule struct {
	// Protocol is "tcp", "udp", "icmp" or "all". Required.
	Protocol string `json:"protocol"`
	// Destination is a CIDR, an address or an address range
	// ("10.0.0.1-10.0.0.9"). Required.
	Destination string `json:"destination"`
	// Ports is a port, a range ("8000-9000") or a comma-separated list;
	// tcp and udp only.
	Ports string `json:"ports,omitzero"`
	// Type and Code are the ICMP type and code; nil when not given.
	Type *int `json:"type,omitzero"`
	Code *int `json:"code,omitzero"`
	// Log asks for the packets to be logged.
	Log bool `json:"log,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

func checkEgress(c *checker, field string, rules []EgressRule) {
	for i, r := range rules {
		p := fmt.Sprintf("%s[%d]", field, i)
		c.required(p+".protocol", r.Protocol)
		c.required(p+".destination", r.Destination)
	}
}

// StartMessage is Cloud Controller's order to run one instance of an app,
// sent to one DEA on dea.<uuid>.start (see [DEAStart]) and embedded, with
// SHA1 empty, in a [StagingRequest]. The DEA's own names for some fields
// differ (droplet is the application id, sha1 the droplet's hash,
// executableUri the droplet's download URL); the Go names follow the wire.
type StartMessage struct {
	// Droplet is the app's GUID (the DEA's application_id). Required.
	Droplet string `json:"droplet"`
	// Name is the app's name.
	Name string `json:"name"`
	// Stack is the name of the root filesystem the app runs on.
	Stack string `json:"stack,omitzero"`
	// URIs are the routes of the app.
	URIs []string `json:"uris"`
	// Prod is the app's "production" flag.
	Prod bool `json:"prod"`
	// SHA1 is the hex SHA-1 of the droplet, the key of the DEA's droplet
	// registry. Required on dea.<uuid>.start; empty (null) inside a
	// staging request, as the droplet does not exist yet.
	SHA1 string `json:"sha1,omitzero"`
	// ExecutableFile is always "deprecated".
	ExecutableFile string `json:"executableFile,omitzero"`
	// ExecutableURI is where to download the droplet from. Required.
	ExecutableURI string `json:"executableUri"`
	// Version is the app version's GUID; it changes on every restage and
	// on changes of the app's settings.
	Version string `json:"version"`
	// Services are the service bindings, each as Cloud Controller's
	// ServiceBindingPresenter wrote it (kept verbatim).
	Services []json.RawMessage `json:"services"`
	// Limits are the instance's resource limits.
	Limits Limits `json:"limits"`
	// Env is the environment as "KEY=VALUE" strings.
	Env []string `json:"env"`
	// CCPartition names the Cloud Controller that sent the message.
	CCPartition string `json:"cc_partition,omitzero"`
	// Console asks for a console port (historic).
	Console bool `json:"console"`
	// Debug is the debug mode ("run", "suspend"), empty when off.
	Debug string `json:"debug,omitzero"`
	// StartCommand overrides the start command detected by staging.
	StartCommand string `json:"start_command,omitzero"`
	// HealthCheckTimeout is the health check's timeout in seconds; zero
	// means the DEA's default.
	HealthCheckTimeout int `json:"health_check_timeout,omitzero"`
	// VCAPApplication is the VCAP_APPLICATION object from Cloud
	// Controller, kept verbatim; the DEA merges its own fields into it.
	VCAPApplication json.RawMessage `json:"vcap_application,omitzero"`
	// Index is the instance's index, from 0.
	Index int `json:"index"`
	// EgressNetworkRules are the app's security group rules.
	EgressNetworkRules []EgressRule `json:"egress_network_rules,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports missing droplet, sha1 or executableUri, a malformed
// sha1 or URL, negative limits, index or timeout, empty uris and env
// entries that are not KEY=VALUE.
func (m StartMessage) Validate() error {
	c := checker{msg: "StartMessage"}
	m.check(&c, "", true)
	return c.err()
}

func (m *StartMessage) check(c *checker, prefix string, requireSHA1 bool) {
	c.required(prefix+"droplet", m.Droplet)
	if requireSHA1 || m.SHA1 != "" {
		c.sha1(prefix+"sha1", m.SHA1)
	}
	c.absURL(prefix+"executableUri", m.ExecutableURI, true)
	c.nonNegative(prefix+"index", int64(m.Index))
	c.nonNegative(prefix+"health_check_timeout", int64(m.HealthCheckTimeout))
	m.Limits.check(c, prefix+"limits")
	c.nonEmptyEach(prefix+"uris", m.URIs)
	c.env(prefix+"env", m.Env)
	checkEgress(c, prefix+"egress_network_rules", m.EgressNetworkRules)
}

// InstanceFilter selects instances of one app. It is the part that
// dea.stop and dea.find.droplet share, and [InstanceFilter.Match]
// applies it as the DEA's InstanceRegistry did. Empty lists do not
// filter.
type InstanceFilter struct {
	// Droplet is the app's GUID. Required: a filter without it matches
	// nothing.
	Droplet string `json:"droplet"`
	// Version, when set, selects instances of that app version only.
	Version string `json:"version,omitzero"`
	// Instances selects instances by id.
	Instances []string `json:"instances,omitzero"`
	// InstanceIDs is the older name of Instances; it is used only when
	// Instances is empty.
	InstanceIDs []string `json:"instance_ids,omitzero"`
	// Indices selects instances by index.
	Indices []int `json:"indices,omitzero"`
	// States selects instances by state.
	States []State `json:"states,omitzero"`
}

func (f *InstanceFilter) check(c *checker) {
	c.required("droplet", f.Droplet)
	c.nonEmptyEach("instances", f.Instances)
	c.nonEmptyEach("instance_ids", f.InstanceIDs)
	for i, x := range f.Indices {
		c.nonNegative(fmt.Sprintf("indices[%d]", i), int64(x))
	}
	for i, s := range f.States {
		c.state(fmt.Sprintf("states[%d]", i), s)
	}
}

// Match reports whether the instance described by the arguments is
// selected by f.
func (f *InstanceFilter) Match(droplet, version, instanceID string, index int, state State) bool {
	if f.Droplet == "" || droplet != f.Droplet {
		return false
	}
	if f.Version != "" && version != f.Version {
		return false
	}
	ids := f.Instances
	if len(ids) == 0 {
		ids = f.InstanceIDs
	}
	if len(ids) > 0 && !slices.Contains(ids, instanceID) {
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

// StopMessage asks every DEA to stop the instances it selects
// (dea.stop). Cloud Controller sends {droplet} to stop an app,
// {droplet, version, indices} to scale down and {droplet, instances} to
// stop given instances. A DEA receiving exactly {droplet} also stops the
// app's staging tasks.
type StopMessage struct {
	InstanceFilter `json:",embed"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing droplet (a stop with nothing to match),
// negative indices, unknown states and empty instance ids.
func (m StopMessage) Validate() error {
	c := checker{msg: "StopMessage"}
	m.InstanceFilter.check(&c)
	return c.err()
}

// UpdateMessage tells DEAs an app's routes or version changed
// (dea.update).
type UpdateMessage struct {
	// Droplet is the app's GUID. Required.
	Droplet string `json:"droplet"`
	// URIs are the app's routes now.
	URIs []string `json:"uris"`
	// Version is the app's version now.
	Version string `json:"version,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing droplet and empty uris.
func (m UpdateMessage) Validate() error {
	c := checker{msg: "UpdateMessage"}
	c.required("droplet", m.Droplet)
	c.nonEmptyEach("uris", m.URIs)
	return c.err()
}

// FindDropletRequest asks every DEA about the instances it selects
// (dea.find.droplet). Each DEA answers with one [FindDropletResponse]
// per matching instance, so use [RequestMany].
type FindDropletRequest struct {
	InstanceFilter `json:",embed"`
	// Path, when set, asks for a signed directory-server URL of that path
	// in each instance (FileURIV2 of the reply).
	Path string `json:"path,omitzero"`
	// IncludeStats asks for the Stats of running instances.
	IncludeStats bool `json:"include_stats,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports what [StopMessage.Validate] reports.
func (m FindDropletRequest) Validate() error {
	c := checker{msg: "FindDropletRequest"}
	m.InstanceFilter.check(&c)
	return c.err()
}

// FindDropletResponse describes one instance, in reply to a
// [FindDropletRequest].
type FindDropletResponse struct {
	// DEA is the uuid of the DEA running the instance. Required.
	DEA string `json:"dea"`
	// Droplet is the app's GUID. Required.
	Droplet string `json:"droplet"`
	// Version is the app version the instance runs.
	Version string `json:"version"`
	// Instance is the instance id. Required.
	Instance string `json:"instance"`
	// Index is the instance's index.
	Index int `json:"index"`
	// State is the instance's state. Required.
	State State `json:"state"`
	// StateTimestamp is when the instance entered State, in seconds since
	// the epoch.
	StateTimestamp float64 `json:"state_timestamp"`
	// Staged is "/<instance id>".
	Staged string `json:"staged,omitzero"`
	// FileURIV2 is the signed directory-server URL of the requested path.
	FileURIV2 string `json:"file_uri_v2,omitzero"`
	// Stats are the instance's figures, when asked for and running.
	Stats *InstanceStats `json:"stats,omitzero"`

	// FileURI, Credentials, DebugIP, DebugPort, ConsoleIP and ConsolePort
	// are read by Cloud Controller v1 only; current DEAs do not send them.
	FileURI     string   `json:"file_uri,omitzero"`
	Credentials []string `json:"credentials,omitzero"`
	DebugIP     string   `json:"debug_ip,omitzero"`
	DebugPort   int      `json:"debug_port,omitzero"`
	ConsoleIP   string   `json:"console_ip,omitzero"`
	ConsolePort int      `json:"console_port,omitzero"`

	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports missing dea, droplet, instance or state, a negative
// index, and bad stats.
func (m FindDropletResponse) Validate() error {
	c := checker{msg: "FindDropletResponse"}
	c.required("dea", m.DEA)
	c.required("droplet", m.Droplet)
	c.required("instance", m.Instance)
	c.nonNegative("index", int64(m.Index))
	c.state("state", m.State)
	c.nonNegativeFloat("state_timestamp", m.StateTimestamp)
	if s := m.Stats; s != nil {
		c.port("stats.port", s.Port, true)
		c.nonNegativeFloat("stats.uptime", s.Uptime)
		c.nonNegative("stats.mem_quota", s.MemQuota)
		c.nonNegative("stats.disk_quota", s.DiskQuota)
		c.nonNegative("stats.fds_quota", int64(s.FDsQuota))
		c.nonNegativeFloat("stats.usage.cpu", s.Usage.CPU)
		c.nonNegative("stats.usage.mem", s.Usage.Mem)
		c.nonNegative("stats.usage.disk", s.Usage.Disk)
	}
	return c.err()
}

// InstanceStats are a running instance's figures in a
// [FindDropletResponse].
type InstanceStats struct {
	// Name is the app's name.
	Name string `json:"name"`
	// URIs are the app's routes.
	URIs []string `json:"uris"`
	// Host is the DEA's IP address.
	Host string `json:"host"`
	// Port is the instance's port on the host.
	Port int `json:"port"`
	// Uptime is the time since the instance started, in seconds.
	Uptime float64 `json:"uptime"`
	// MemQuota and DiskQuota are the limits in bytes.
	MemQuota  int64 `json:"mem_quota"`
	DiskQuota int64 `json:"disk_quota"`
	// FDsQuota is the limit on open file descriptors.
	FDsQuota int `json:"fds_quota"`
	// Usage is the latest sample.
	Usage InstanceUsage `json:"usage"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// InstanceUsage is one sample of an instance's resource usage.
type InstanceUsage struct {
	// Time is when the sample was taken, as Ruby's Time#to_s wrote it
	// ("2013-06-10 16:12:20 +0000").
	Time string `json:"time"`
	// CPU is the CPU use in percent of one core.
	CPU float64 `json:"cpu"`
	// Mem and Disk are the bytes used.
	Mem  int64 `json:"mem"`
	Disk int64 `json:"disk"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// HeartbeatMessage is a DEA's periodic report of its instances
// (dea.heartbeat), read by the health manager. It lists the instances in
// STARTING, RUNNING, CRASHED and EVACUATING.
//
// Decoding it has a fast path for the shape DEAs send (see
// [HeartbeatMessage.UnmarshalJSON]): a heartbeat of 1,000 instances
// decodes in well under a millisecond on a current machine.
type HeartbeatMessage struct {
	// DEA is the uuid of the reporting DEA. Required.
	DEA string `json:"dea"`
	// Droplets are the instances.
	Droplets []HeartbeatInstance `json:"droplets"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing dea and, per instance, a missing droplet or
// instance id or state and a negative index.
func (m HeartbeatMessage) Validate() error {
	c := checker{msg: "HeartbeatMessage"}
	c.required("dea", m.DEA)
	for i := range m.Droplets {
		d := &m.Droplets[i]
		if d.Droplet != "" && d.Instance != "" && d.Index >= 0 && d.State.Valid() && d.StateTimestamp >= 0 {
			continue // the common case, without formatting paths
		}
		p := fmt.Sprintf("droplets[%d].", i)
		c.required(p+"droplet", d.Droplet)
		c.required(p+"instance", d.Instance)
		c.nonNegative(p+"index", int64(d.Index))
		c.state(p+"state", d.State)
		c.nonNegativeFloat(p+"state_timestamp", d.StateTimestamp)
	}
	return c.err()
}

// HeartbeatInstance is one instance in a [HeartbeatMessage].
type HeartbeatInstance struct {
	// CCPartition is the cc_partition of the instance's start message.
	CCPartition string `json:"cc_partition,omitzero"`
	// Droplet is the app's GUID. Required.
	Droplet string `json:"droplet"`
	// Version is the app version the instance runs.
	Version string `json:"version"`
	// Instance is the instance id. Required.
	Instance string `json:"instance"`
	// Index is the instance's index.
	Index int `json:"index"`
	// State is the instance's state. Required.
	State State `json:"state"`
	// StateTimestamp is when the instance entered State, in seconds since
	// the epoch.
	StateTimestamp float64 `json:"state_timestamp"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// ExitedMessage says an instance stopped running (droplet.exited).
// Current DEAs send it only for crashes; older ones also on stop,
// shutdown and evacuation.
type ExitedMessage struct {
	// CCPartition is the cc_partition of the instance's start message.
	CCPartition string `json:"cc_partition,omitzero"`
	// Droplet is the app's GUID. Required.
	Droplet string `json:"droplet"`
	// Version is the app version the instance ran.
	Version string `json:"version"`
	// Instance is the instance id. Required.
	Instance string `json:"instance"`
	// Index is the instance's index.
	Index int `json:"index"`
	// Reason says why it exited. Required.
	Reason ExitReason `json:"reason"`
	// ExitStatus is the process's exit status; -1 when unknown. A null on
	// the wire decodes as 0.
	ExitStatus int `json:"exit_status"`
	// ExitDescription is e.g. "app instance exited" or "out of memory".
	ExitDescription string `json:"exit_description"`
	// CrashTimestamp is when the instance crashed, in seconds since the
	// epoch; set for crashes only.
	CrashTimestamp int64 `json:"crash_timestamp,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing droplet, instance or reason, a negative
// index or crash timestamp.
func (m ExitedMessage) Validate() error {
	c := checker{msg: "ExitedMessage"}
	c.required("droplet", m.Droplet)
	c.required("instance", m.Instance)
	c.nonNegative("index", int64(m.Index))
	if !m.Reason.Valid() {
		c.add("reason", "required")
	}
	c.nonNegative("crash_timestamp", m.CrashTimestamp)
	return c.err()
}

// ShutdownMessage is a DEA's goodbye (dea.shutdown), sent when it shuts
// down or starts to evacuate; Cloud Controller forgets its advertisement.
type ShutdownMessage struct {
	// ID is the DEA's uuid. Required.
	ID string `json:"id"`
	// IP is the DEA's IP address.
	IP string `json:"ip"`
	// Version is the DEA's software version.
	Version string `json:"version"`
	// AppIDToCount is the number of instances per app GUID.
	AppIDToCount map[string]int `json:"app_id_to_count"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing id and negative counts.
func (m ShutdownMessage) Validate() error {
	c := checker{msg: "ShutdownMessage"}
	c.required("id", m.ID)
	c.countMap("app_id_to_count", m.AppIDToCount)
	return c.err()
}

// AdvertiseMessage is a DEA's periodic offer (dea.advertise, every 5 s by
// default), from which Cloud Controller picks where to place instances.
type AdvertiseMessage struct {
	// ID is the DEA's uuid. Required.
	ID string `json:"id"`
	// Stacks are the stacks the DEA can run.
	Stacks []string `json:"stacks"`
	// URL is the DEA's HTTPS service URL; empty when it has none.
	URL string `json:"url,omitzero"`
	// AvailableMemory and AvailableDisk are the MiB still reservable.
	AvailableMemory int `json:"available_memory"`
	AvailableDisk   int `json:"available_disk"`
	// AppIDToCount is the number of instances per app GUID.
	AppIDToCount map[string]int `json:"app_id_to_count"`
	// PlacementProperties carry the DEA's zone.
	PlacementProperties PlacementProperties `json:"placement_properties"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing id, empty stacks, negative capacities or
// counts, and a URL that is not absolute.
func (m AdvertiseMessage) Validate() error {
	c := checker{msg: "AdvertiseMessage"}
	c.required("id", m.ID)
	c.nonEmptyEach("stacks", m.Stacks)
	c.absURL("url", m.URL, false)
	c.nonNegative("available_memory", int64(m.AvailableMemory))
	c.nonNegative("available_disk", int64(m.AvailableDisk))
	c.countMap("app_id_to_count", m.AppIDToCount)
	return c.err()
}

// PlacementProperties are where a DEA stands, for placement.
type PlacementProperties struct {
	// Zone is the DEA's availability zone ("default" when not configured).
	Zone string `json:"zone,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// StagingAdvertiseMessage is a stager's periodic offer
// (staging.advertise), sent in reply to staging.locate and by DEAs
// before 2016.
type StagingAdvertiseMessage struct {
	// ID is the DEA's uuid. Required.
	ID string `json:"id"`
	// Stacks are the stacks the DEA can stage for.
	Stacks []string `json:"stacks"`
	// AvailableMemory and AvailableDisk are the MiB still reservable.
	AvailableMemory int `json:"available_memory"`
	AvailableDisk   int `json:"available_disk"`
	// PlacementProperties carry the DEA's zone; older DEAs omit it.
	PlacementProperties *PlacementProperties `json:"placement_properties,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing id, empty stacks and negative capacities.
func (m StagingAdvertiseMessage) Validate() error {
	c := checker{msg: "StagingAdvertiseMessage"}
	c.required("id", m.ID)
	c.nonEmptyEach("stacks", m.Stacks)
	c.nonNegative("available_memory", int64(m.AvailableMemory))
	c.nonNegative("available_disk", int64(m.AvailableDisk))
	return c.err()
}

// LocateMessage asks DEAs (dea.locate) or stagers (staging.locate) to
// advertise now. Its payload carries nothing; an empty payload decodes
// as a LocateMessage, and any members are kept in Extra.
type LocateMessage struct {
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate never fails.
func (m LocateMessage) Validate() error { return nil }

package instance

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paaskit/paaskit/container"
)

// Spec says what instance to run: the fields of a dea.<id>.start message
// after dea_ng's translate_attributes (index→instance_index,
// droplet→application_id, sha1→droplet_sha1, env list→environment map,
// …). The JSON names are dea_ng's snapshot names. The zero value is not
// valid: ApplicationID, DropletSHA1 and Limits.Mem are required.
//
// A Spec is copied into the instance; its maps and slices are then
// shared and must not be modified by the caller.
type Spec struct {
	// CCPartition is the controller partition; optional, echoed in
	// droplet.exited and heartbeats.
	CCPartition string `json:"cc_partition,omitempty"`

	// InstanceID names the instance; optional (32 random hex digits when
	// empty, as dea_ng's VCAP.secure_uuid).
	InstanceID string `json:"instance_id"`
	// InstanceIndex is the index of the instance within its app (the
	// message's "index"). Required to be non-negative.
	InstanceIndex int `json:"instance_index"`

	// ApplicationID is the app's GUID (the message's "droplet").
	// Required.
	ApplicationID string `json:"application_id"`
	// ApplicationVersion, ApplicationName and ApplicationURIs: the
	// message's "version", "name" and "uris". Optional; an instance with
	// URIs is health-checked on its port by default.
	ApplicationVersion string   `json:"application_version"`
	ApplicationName    string   `json:"application_name"`
	ApplicationURIs    []string `json:"application_uris"`

	// DropletSHA1 is the SHA-1 of the droplet, in hex (the message's
	// "sha1"). Required.
	DropletSHA1 string `json:"droplet_sha1"`
	// DropletURI is where to download the droplet from (the message's
	// "executableUri"). Optional when the droplet source has it already.
	DropletURI string `json:"droplet_uri"`
	// Stack names the root file system (a key of Config.Stacks);
	// optional when Config has a single stack.
	Stack string `json:"stack,omitempty"`
	// StartCommand overrides the droplet's staging_info.yml
	// start_command. Optional.
	StartCommand string `json:"start_command"`

	// Limits are the instance's memory, disk and file descriptor limits.
	// Mem is required.
	Limits Limits `json:"limits"`

	// Environment is the app's own environment (the message's "env",
	// "K=V" entries as a map; see ParseEnv). Optional. It is given to
	// the app after the system environment and overrides it.
	Environment map[string]string `json:"environment"`
	// Services are the bound service instances (VCAP_SERVICES).
	Services []Service `json:"services"`
	// VCAPApplication is the controller's vcap_application object; the
	// DEA adds its own fields to it (see the package documentation).
	// Optional.
	VCAPApplication map[string]any `json:"vcap_application,omitempty"`
	// EgressRules are applied with NetOut to the instance's container.
	// Optional.
	EgressRules []container.NetOutRule `json:"egress_network_rules,omitempty"`

	// HealthCheck says how to decide that the instance runs, and whether
	// to keep checking afterwards. The zero value is dea_ng's behaviour.
	HealthCheck HealthCheck `json:"health_check,omitzero"`
	// HealthCheckTimeout is the start message's health_check_timeout in
	// seconds (dea_ng's snapshot field); 0 means
	// HealthCheck.Timeout, or the Manager's default. Kept for wire and
	// snapshot compatibility.
	HealthCheckTimeout int `json:"health_check_timeout,omitempty"`
}

// Limits are an instance's limits, as in the start message: memory and
// disk in MB, file descriptors as a count.
type Limits struct {
	// Mem is the memory limit in MB. Required (at least 1).
	Mem int64 `json:"mem"`
	// Disk is the disk limit in MB; 0 means none. It is reserved in the
	// ResourceManager; enforcing it is the container layer's job (package
	// container has no disk quota yet).
	Disk int64 `json:"disk"`
	// FDs caps open files (RLIMIT_NOFILE); 0 means the container's
	// default.
	FDs int64 `json:"fds"`
}

// Service is a bound service instance, with the fields dea_ng kept of
// each (the VCAP_SERVICES whitelist).
type Service struct {
	Name           string         `json:"name"`
	Label          string         `json:"label"`
	Tags           []string       `json:"tags"`
	Plan           string         `json:"plan"`
	PlanOption     map[string]any `json:"plan_option,omitempty"`
	Credentials    map[string]any `json:"credentials"`
	SyslogDrainURL string         `json:"syslog_drain_url,omitempty"`
}

// HealthCheckType selects how readiness (and liveness) is checked.
type HealthCheckType string

// The health check types of Cloud Foundry.
const (
	// HealthCheckDefault is dea_ng's choice: HealthCheckPort when the
	// instance has URIs, HealthCheckProcess otherwise.
	HealthCheckDefault HealthCheckType = ""
	// HealthCheckPort: a TCP connection to the instance's port is
	// accepted.
	HealthCheckPort HealthCheckType = "port"
	// HealthCheckHTTP: a GET of HealthCheck.HTTPEndpoint on the
	// instance's port answers 2xx.
	HealthCheckHTTP HealthCheckType = "http"
	// HealthCheckProcess: the process is alive.
	HealthCheckProcess HealthCheckType = "process"
)

// Defaults of the health checks.
const (
	DefaultHealthCheckTimeout  = 60 * time.Second // dea_ng's default_health_check_timeout
	DefaultHealthCheckInterval = 500 * time.Millisecond
	DefaultLivenessInterval    = 30 * time.Second
	DefaultLivenessThreshold   = 3
	DefaultHealthCheckAttempt  = time.Second // each connection or request (Diego's -timeout)
)

// HealthCheck configures an instance's checks. Every field is optional;
// zero values mean the defaults.
type HealthCheck struct {
	// Type of the check; see HealthCheckType.
	Type HealthCheckType `json:"type,omitempty"`
	// HTTPEndpoint is the path a HealthCheckHTTP check GETs; default "/".
	HTTPEndpoint string `json:"http_endpoint,omitempty"`
	// Timeout bounds readiness: the check must pass within it after the
	// process started, or the instance crashes with "failed to accept
	// connections within health check timeout". Default
	// DefaultHealthCheckTimeout (or the Manager's).
	Timeout Duration `json:"timeout,omitzero"`
	// Interval between readiness attempts; default
	// DefaultHealthCheckInterval.
	Interval Duration `json:"interval,omitzero"`
	// LivenessInterval, when set, keeps checking after RUNNING at that
	// interval (Diego's liveness check; dea_ng had none).
	LivenessInterval Duration `json:"liveness_interval,omitzero"`
	// LivenessThreshold is how many checks in a row must fail for the
	// instance to crash; default DefaultLivenessThreshold.
	LivenessThreshold int `json:"liveness_threshold,omitempty"`
}

// Duration is a time.Duration that marshals as seconds (a JSON number),
// as the DEA's configuration and messages write durations.
type Duration time.Duration

// MarshalJSON writes d in seconds.
func (d Duration) MarshalJSON() ([]byte, error) { return d.appendJSON(nil), nil }

// appendJSON writes the seconds as encoding/json writes a float64.
func (d Duration) appendJSON(b []byte) []byte {
	f := time.Duration(d).Seconds()
	fmt := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// UnmarshalJSON reads seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 || s > math.MaxInt64/float64(time.Second) {
		return fmt.Errorf("instance: duration %v seconds out of range", s)
	}
	*d = Duration(s * float64(time.Second))
	return nil
}

// Validate reports the first problem of s as a *SpecError, or nil.
func (s *Spec) Validate() error {
	switch {
	case s.ApplicationID == "":
		return specErr("ApplicationID", "required")
	case !isSHA1(s.DropletSHA1):
		return specErr("DropletSHA1", "%q is not 40 hex digits", s.DropletSHA1)
	case s.InstanceIndex < 0:
		return specErr("InstanceIndex", "negative: %d", s.InstanceIndex)
	case s.Limits.Mem <= 0:
		return specErr("Limits.Mem", "must be at least 1 MB, got %d", s.Limits.Mem)
	case s.Limits.Disk < 0:
		return specErr("Limits.Disk", "negative: %d", s.Limits.Disk)
	case s.Limits.FDs < 0:
		return specErr("Limits.FDs", "negative: %d", s.Limits.FDs)
	case s.HealthCheckTimeout < 0:
		return specErr("HealthCheckTimeout", "negative: %d", s.HealthCheckTimeout)
	}
	if s.InstanceID != "" && !validID(s.InstanceID) {
		return specErr("InstanceID", "%q: want 1 to 56 characters of [A-Za-z0-9_.-]", s.InstanceID)
	}
	if s.DropletURI != "" {
		if _, err := url.Parse(s.DropletURI); err != nil {
			return specErr("DropletURI", "%v", err)
		}
	}
	for k := range s.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return specErr("Environment", "invalid variable name %q", k)
		}
	}
	hc := s.HealthCheck
	switch hc.Type {
	case HealthCheckDefault, HealthCheckPort, HealthCheckHTTP, HealthCheckProcess:
	default:
		return specErr("HealthCheck.Type", "unknown type %q", hc.Type)
	}
	if hc.HTTPEndpoint != "" && !strings.HasPrefix(hc.HTTPEndpoint, "/") {
		return specErr("HealthCheck.HTTPEndpoint", "%q does not start with /", hc.HTTPEndpoint)
	}
	if hc.Timeout < 0 || hc.Interval < 0 || hc.LivenessInterval < 0 || hc.LivenessThreshold < 0 {
		return specErr("HealthCheck", "negative duration or threshold")
	}
	for i := range s.EgressRules {
		if err := s.EgressRules[i].Validate(); err != nil {
			return specErr(fmt.Sprintf("EgressRules[%d]", i), "%v", err)
		}
	}
	return nil
}

// ParseEnv turns a start message's env list ("K=V" entries) into a map;
// a later entry wins. An entry without "=" is an error.
func ParseEnv(list []string) (map[string]string, error) {
	env := make(map[string]string, len(list))
	for i, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, specErr(fmt.Sprintf("Environment[%d]", i), "%q is not K=V", kv)
		}
		env[k] = v
	}
	return env, nil
}

func isSHA1(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validID accepts ids that make a valid container handle and directory
// name once prefixed.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 56 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

package instance

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Paths inside the container, as dea_ng and Diego had them: the droplet
// is extracted at HomeDir, the app is in HomeDir/app.
const (
	HomeDir = "/home/vcap"
	AppDir  = HomeDir + "/app"
	TmpDir  = HomeDir + "/tmp"
	LogsDir = HomeDir + "/logs"
)

// rubyTime is how Ruby's Time#to_s writes a time, which is what dea_ng
// put in VCAP_APPLICATION's started_at.
const rubyTime = "2006-01-02 15:04:05 -0700"

// EnvInput is what the environment of an app process is made of.
type EnvInput struct {
	Attributes Attributes
	// LocalIP is the DEA's address (CF_INSTANCE_IP).
	LocalIP string
}

// Environment returns the environment of an instance's process as
// KEY=value entries, sorted by key: the system environment dea_ng gave
// (PROTOCOL.md §2.8) — VCAP_APPLICATION, VCAP_SERVICES, MEMORY_LIMIT,
// HOME, TMPDIR, VCAP_APP_HOST, VCAP_APP_PORT, PORT, CF_INSTANCE_INDEX,
// CF_INSTANCE_IP, CF_INSTANCE_PORT, CF_INSTANCE_ADDR, CF_INSTANCE_PORTS,
// DATABASE_URL when a service has one — then the app's own Environment,
// which overrides it. Values are not expanded by a shell, unlike
// dea_ng's exports.
//
// CF_INSTANCE_PORT and CF_INSTANCE_ADDR use the host port (the address
// the instance is reached at from outside, as in Diego); with the
// default port mapping it equals the container port.
func Environment(in EnvInput) []string {
	a := &in.Attributes
	env := map[string]string{
		"HOME":              AppDir,
		"TMPDIR":            TmpDir,
		"VCAP_APP_HOST":     "0.0.0.0",
		"VCAP_APP_PORT":     strconv.Itoa(a.InstanceContainerPort),
		"PORT":              strconv.Itoa(a.InstanceContainerPort),
		"MEMORY_LIMIT":      strconv.FormatInt(a.Limits.Mem, 10) + "m",
		"CF_INSTANCE_INDEX": strconv.Itoa(a.InstanceIndex),
		"CF_INSTANCE_IP":    in.LocalIP,
		"CF_INSTANCE_PORT":  strconv.Itoa(a.InstanceHostPort),
		"CF_INSTANCE_ADDR":  in.LocalIP + ":" + strconv.Itoa(a.InstanceHostPort),
		"CF_INSTANCE_PORTS": mustJSON([]map[string]int{{"external": a.InstanceHostPort, "internal": a.InstanceContainerPort}}),
		"VCAP_APPLICATION":  mustJSON(VCAPApplication(a)),
		"VCAP_SERVICES":     mustJSON(VCAPServices(a.Services)),
	}
	if u := DatabaseURL(a.Services); u != "" {
		env["DATABASE_URL"] = u
	}
	maps.Copy(env, a.Environment)
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// VCAPApplication returns the VCAP_APPLICATION object: the controller's
// vcap_application with the DEA's fields added (application_id,
// instance_id, instance_index, host, port, started_at,
// started_at_timestamp, start, state_timestamp), and the controller's
// usual fields (limits, application_name, application_uris,
// application_version, name, uris, version) filled from the attributes
// when the controller did not send them.
func VCAPApplication(a *Attributes) map[string]any {
	v := make(map[string]any, len(a.VCAPApplication)+16)
	defaults := map[string]any{
		"limits":              a.Limits,
		"application_id":      a.ApplicationID,
		"application_name":    a.ApplicationName,
		"application_uris":    nonNil(a.ApplicationURIs),
		"application_version": a.ApplicationVersion,
		"name":                a.ApplicationName,
		"uris":                nonNil(a.ApplicationURIs),
		"version":             a.ApplicationVersion,
		"users":               nil,
	}
	maps.Copy(v, defaults)
	maps.Copy(v, a.VCAPApplication)
	start := a.StateStartingTimestamp.Time
	if start.IsZero() {
		start = time.Now()
	}
	started := start.UTC().Format(rubyTime)
	maps.Copy(v, map[string]any{
		"application_id":       a.ApplicationID,
		"instance_id":          a.InstanceID,
		"instance_index":       a.InstanceIndex,
		"host":                 "0.0.0.0",
		"port":                 a.InstanceContainerPort,
		"started_at":           started,
		"started_at_timestamp": start.Unix(),
		"start":                started,
		"state_timestamp":      start.Unix(),
	})
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// VCAPServices returns the VCAP_SERVICES object: bindings grouped by
// service label, each with dea_ng's whitelisted fields.
func VCAPServices(ss []Service) map[string][]Service {
	out := make(map[string][]Service)
	for _, s := range ss {
		if s.Tags == nil {
			s.Tags = []string{}
		}
		out[s.Label] = append(out[s.Label], s)
	}
	return out
}

// DatabaseURL returns dea_ng's DATABASE_URL: the credentials.uri of the
// first service whose scheme is mysql, mysql2, postgres, postgresql,
// db2 or informix, with mysql rewritten to mysql2, postgresql to
// postgres and db2 and informix to ibmdb; "" when there is none.
func DatabaseURL(ss []Service) string {
	for _, s := range ss {
		raw, _ := s.Credentials["uri"].(string)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		scheme := strings.ToLower(u.Scheme)
		switch scheme {
		case "mysql":
			scheme = "mysql2"
		case "postgresql":
			scheme = "postgres"
		case "db2", "informix":
			scheme = "ibmdb"
		case "mysql2", "postgres":
		default:
			continue
		}
		return scheme + raw[len(u.Scheme):]
	}
	return ""
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

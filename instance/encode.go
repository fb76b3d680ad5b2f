package instance

import (
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The snapshot is written on every change of interest, with thousands of
// instances, so Attributes are encoded by hand: the output is byte for
// byte what encoding/json writes for the struct (TestAttributesEncoding
// keeps the two in step), several times faster, and instances are
// encoded in parallel.

// MarshalJSON encodes a as encoding/json would encode the struct, with
// dea_ng's field names.
func (a Attributes) MarshalJSON() ([]byte, error) {
	return appendAttributes(nil, &a)
}

// encodeSnapshot encodes s as encoding/json would, the instances in
// parallel.
func encodeSnapshot(s *Snapshot) ([]byte, error) {
	n := len(s.Instances)
	parts := max(min(runtime.GOMAXPROCS(0), n/256), 1)
	bufs := make([][]byte, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*n/parts, (p+1)*n/parts
		wg.Go(func() {
			b := make([]byte, 0, (hi-lo)*1024)
			for i := lo; i < hi; i++ {
				if i > lo {
					b = append(b, ',')
				}
				var err error
				if b, err = appendAttributes(b, &s.Instances[i]); err != nil {
					errs[p] = err
					return
				}
			}
			bufs[p] = b
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if s.Instances == nil {
		bufs = nil
	}
	return joinSnapshot(s.Time, bufs, s.StagingTasks)
}

// joinSnapshot writes a snapshot document around instances already
// encoded in parts (each a comma-separated list; nil parts means a null
// list).
func joinSnapshot(t Timestamp, parts [][]byte, tasks []json.RawMessage) ([]byte, error) {
	size := 64
	for _, b := range parts {
		size += len(b) + 1
	}
	out := make([]byte, 0, size)
	out = append(out, `{"time":`...)
	out = t.appendJSON(out)
	out = append(out, `,"instances":`...)
	if parts == nil {
		out = append(out, "null"...)
	} else {
		out = append(out, '[')
		first := true
		for _, b := range parts {
			if len(b) == 0 {
				continue
			}
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(out, b...)
		}
		out = append(out, ']')
	}
	out = append(out, `,"staging_tasks":`...)
	if tasks == nil {
		tasks = []json.RawMessage{}
	}
	b, err := json.Marshal(tasks)
	if err != nil {
		return nil, err
	}
	out = append(out, b...)
	return append(out, '}'), nil
}

// jsonWriter appends the members of one object.
type jsonWriter struct {
	b     []byte
	first bool
	err   error
}

func (w *jsonWriter) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonWriter) str(k, v string) {
	w.key(k)
	w.b = appendString(w.b, v)
}

func (w *jsonWriter) strOmit(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jsonWriter) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jsonWriter) intOmit(k string, v int64) {
	if v != 0 {
		w.int(k, v)
	}
}

func (w *jsonWriter) strs(k string, v []string) {
	w.key(k)
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendString(w.b, s)
	}
	w.b = append(w.b, ']')
}

func (w *jsonWriter) time(k string, t Timestamp) {
	if t.IsZero() {
		return
	}
	w.key(k)
	w.b = t.appendJSON(w.b)
}

// seconds writes a non-zero Duration as Duration.MarshalJSON does.
func (w *jsonWriter) seconds(k string, d Duration) {
	if d == 0 {
		return
	}
	w.key(k)
	w.b = d.appendJSON(w.b)
}

// value encodes v with encoding/json (the rarely set, nested fields).
func (w *jsonWriter) value(k string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.err = err
		return
	}
	w.key(k)
	w.b = append(w.b, b...)
}

func appendAttributes(b []byte, a *Attributes) ([]byte, error) {
	b, err := appendSpecPart(b, &a.Spec)
	if err != nil {
		return nil, err
	}
	return appendRuntimePart(b, a)
}

// appendSpecPart writes the opening brace and the Spec's members: the
// part of an instance's JSON that does not change while it runs (see
// Instance.specJSON).
func appendSpecPart(b []byte, a *Spec) ([]byte, error) {
	w := jsonWriter{b: append(b, '{'), first: true}
	w.strOmit("cc_partition", a.CCPartition)
	w.str("instance_id", a.InstanceID)
	w.int("instance_index", int64(a.InstanceIndex))
	w.str("application_id", a.ApplicationID)
	w.str("application_version", a.ApplicationVersion)
	w.str("application_name", a.ApplicationName)
	w.strs("application_uris", a.ApplicationURIs)
	w.str("droplet_sha1", a.DropletSHA1)
	w.str("droplet_uri", a.DropletURI)
	w.strOmit("stack", a.Stack)
	w.str("start_command", a.StartCommand)
	w.key("limits")
	w.b = append(w.b, `{"mem":`...)
	w.b = strconv.AppendInt(w.b, a.Limits.Mem, 10)
	w.b = append(w.b, `,"disk":`...)
	w.b = strconv.AppendInt(w.b, a.Limits.Disk, 10)
	w.b = append(w.b, `,"fds":`...)
	w.b = strconv.AppendInt(w.b, a.Limits.FDs, 10)
	w.b = append(w.b, '}')
	w.key("environment")
	if a.Environment == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.b = append(w.b, '{')
		var keys [16]string
		for i, k := range appendSortedKeys(keys[:0], a.Environment) {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendString(w.b, k)
			w.b = append(w.b, ':')
			w.b = appendString(w.b, a.Environment[k])
		}
		w.b = append(w.b, '}')
	}
	if a.Services == nil {
		w.key("services")
		w.b = append(w.b, "null"...)
	} else {
		w.value("services", a.Services)
	}
	if len(a.VCAPApplication) > 0 {
		w.value("vcap_application", a.VCAPApplication)
	}
	if len(a.EgressRules) > 0 {
		w.value("egress_network_rules", a.EgressRules)
	}
	if hc := a.HealthCheck; hc != (HealthCheck{}) {
		w.key("health_check")
		h := jsonWriter{b: append(w.b, '{'), first: true}
		h.strOmit("type", string(hc.Type))
		h.strOmit("http_endpoint", hc.HTTPEndpoint)
		h.seconds("timeout", hc.Timeout)
		h.seconds("interval", hc.Interval)
		h.seconds("liveness_interval", hc.LivenessInterval)
		h.intOmit("liveness_threshold", int64(hc.LivenessThreshold))
		w.b = append(h.b, '}')
	}
	w.intOmit("health_check_timeout", int64(a.HealthCheckTimeout))
	return w.b, w.err
}

// appendRuntimePart writes the rest of the members after appendSpecPart's
// and the closing brace.
func appendRuntimePart(b []byte, a *Attributes) ([]byte, error) {
	// The Spec part always has members (instance_id, …).
	w := jsonWriter{b: b}
	w.str("private_instance_id", a.PrivateInstanceID)
	st, err := a.State.MarshalText()
	if err != nil {
		return nil, err
	}
	w.str("state", string(st))
	w.time("state_timestamp", a.StateTimestamp)
	w.time("state_starting_timestamp", a.StateStartingTimestamp)
	w.time("state_running_timestamp", a.StateRunningTimestamp)
	w.time("state_crashed_timestamp", a.StateCrashedTimestamp)
	w.str("warden_handle", a.WardenHandle)
	w.str("warden_job_id", a.WardenJobID)
	w.str("warden_container_path", a.WardenContainerPath)
	w.str("warden_host_ip", a.WardenHostIP)
	w.str("warden_container_ip", a.WardenContainerIP)
	w.int("instance_host_port", int64(a.InstanceHostPort))
	w.int("instance_container_port", int64(a.InstanceContainerPort))
	w.strs("syslog_drain_urls", a.SyslogDrainURLs)
	w.intOmit("process_pid", int64(a.ProcessPID))
	w.intOmit("exit_status", int64(a.ExitStatus))
	w.strOmit("exit_description", a.ExitDescription)
	w.intOmit("crash_count", int64(a.CrashCount))
	w.strOmit("instance_path", a.InstancePath)
	if w.err != nil {
		return nil, w.err
	}
	return append(w.b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does
// (HTML characters, U+2028 and U+2029 escaped; invalid UTF-8 replaced by
// U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendSortedKeys(dst []string, m map[string]string) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

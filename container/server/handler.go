package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
)

// Handler returns the Server's HTTP handler, for serving it on a listener
// of one's own (an http.Server, httptest). Process streams need a
// connection that can be hijacked (HTTP/1.1). Requests served this way
// are not drained by Shutdown, but their process streams are detached by
// it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, f func(*http.Request) (any, error)) {
		mux.Handle(pattern, s.jsonHandler(f))
	}
	h("GET /ping", s.ping)
	h("GET /capacity", s.capacity)
	h("GET /quota", s.quota)
	h("GET /bulk_info", s.bulkInfo)
	h("GET /bulk_metrics", s.bulkMetrics)
	h("GET /containers", s.list)
	h("POST /containers", s.create)
	h("GET /containers/{handle}", s.lookupEntry)
	h("DELETE /containers/{handle}", s.destroy)
	h("PUT /containers/{handle}/stop", s.stopContainer)
	h("GET /containers/{handle}/info", s.info)
	h("GET /containers/{handle}/metrics", s.metrics)
	h("GET /containers/{handle}/limits", s.limits)
	h("PUT /containers/{handle}/limits", s.setLimits)
	h("PUT /containers/{handle}/limits/memory", s.limitMemory)
	h("PUT /containers/{handle}/limits/cpu", s.limitCPU)
	h("PUT /containers/{handle}/limits/disk", s.limitDisk)
	h("PUT /containers/{handle}/limits/bandwidth", s.limitBandwidth)
	h("POST /containers/{handle}/net/in", s.netIn)
	h("POST /containers/{handle}/net/out", s.netOut)
	h("PUT /containers/{handle}/files", s.streamIn)
	mux.HandleFunc("GET /containers/{handle}/files", s.streamOut)
	h("GET /containers/{handle}/properties", s.properties)
	h("GET /containers/{handle}/properties/{key}", s.property)
	h("GET /containers/{handle}/grace_time", s.graceTime)
	h("PUT /containers/{handle}/properties/{key}", s.setProperty)
	h("DELETE /containers/{handle}/properties/{key}", s.removeProperty)
	h("PUT /containers/{handle}/grace_time", s.setGraceTime)
	mux.HandleFunc("POST /containers/{handle}/processes", s.run)
	mux.HandleFunc("GET /containers/{handle}/processes/{id}", s.attach)
	h("PUT /containers/{handle}/processes/{id}/signal", s.signal)
	h("PUT /containers/{handle}/processes/{id}/tty", s.setTTY)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("server: no route %s %s: %w", r.Method, r.URL.Path, wire.ErrBadRequest))
	})
	return s.logRequests(mux)
}

// jsonHandler adapts a function returning a value to encode (or an
// error) to an http.Handler.
func (s *Server) jsonHandler(f func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(wire.FromError(fmt.Errorf("server: encode answer: %w: %v", wire.ErrInternal, err)))
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers with err's wire form.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	we := wire.FromError(err)
	if we.Code == wire.CodeInternal || we.Code == wire.CodeAgent {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, we.Status(), we)
}

// decode reads r's JSON body into v strictly: at most the configured
// size, no unknown fields, nothing after the value.
func (s *Server) decode(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, s.opts.maxRequestBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return fmt.Errorf("server: request body: data after the JSON value: %w", wire.ErrBadRequest)
		}
		return decodeError(err)
	}
	return nil
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("server: request body over %d bytes: %w", mbe.Limit, wire.ErrTooLarge)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("server: request body: empty, expected JSON: %w", wire.ErrBadRequest)
	}
	return fmt.Errorf("server: request body: %v: %w", err, wire.ErrBadRequest)
}

// lookup finds the container the request's path names.
func (s *Server) lookup(r *http.Request) (*container.Container, error) {
	return s.m.Lookup(r.PathValue("handle"))
}

// statusWriter records the status of an answer, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Hijack and Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs each request at debug level.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusSwitchingProtocols // hijacked
		}
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "duration", time.Since(start))
	})
}

// queryBool parses a boolean query parameter; absent is false.
func queryBool(r *http.Request, name string) (bool, error) {
	switch v := strings.ToLower(r.URL.Query().Get(name)); v {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	default:
		return false, fmt.Errorf("server: query parameter %s=%q is not a boolean: %w", name, v, wire.ErrBadRequest)
	}
}

// jsonString is v as a JSON string, for a header or trailer.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

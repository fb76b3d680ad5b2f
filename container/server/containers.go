package server

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
	"golang.org/x/sync/errgroup"
)

// bulkConcurrency bounds the containers a bulk request reads at once.
const bulkConcurrency = 8

func (s *Server) ping(*http.Request) (any, error) { return wire.Empty{}, nil }

func (s *Server) capacity(r *http.Request) (any, error) {
	c, err := hostCapacity(s.depot())
	if err != nil {
		return nil, err
	}
	cs, err := s.m.List(r.Context(), nil)
	if err != nil {
		return nil, err
	}
	c.MaxContainers = s.opts.maxContainers
	c.Containers = uint64(len(cs))
	return c, nil
}

func (s *Server) quota(r *http.Request) (any, error) {
	backend, tried := s.m.QuotaBackend()
	entries, err := s.m.QuotaReport(r.Context())
	if err != nil {
		return nil, err
	}
	rep := wire.QuotaReport{Backend: backend, Tried: tried, Entries: make([]wire.QuotaEntry, 0, len(entries))}
	for _, e := range entries {
		rep.Entries = append(rep.Entries, wire.QuotaEntry{Handle: e.Handle, Usage: e.DiskUsage, Error: wire.FromError(e.Err)})
	}
	return rep, nil
}

func entryOf(c *container.Container) wire.ContainerEntry {
	return wire.ContainerEntry{Handle: c.Handle(), Path: c.Path(), Properties: c.Properties()}
}

func (s *Server) list(r *http.Request) (any, error) {
	filter := map[string]string{}
	for k, vs := range r.URL.Query() {
		if len(vs) != 1 {
			return nil, fmt.Errorf("server: property filter %q given %d times: %w", k, len(vs), wire.ErrBadRequest)
		}
		filter[k] = vs[0]
	}
	cs, err := s.m.List(r.Context(), filter)
	if err != nil {
		return nil, err
	}
	out := make([]wire.ContainerEntry, 0, len(cs))
	for _, c := range cs {
		out = append(out, entryOf(c))
	}
	return out, nil
}

func (s *Server) create(r *http.Request) (any, error) {
	var req wire.CreateRequest
	if err := s.decode(r, &req); err != nil {
		return nil, err
	}
	spec := req.Spec
	if _, ok := spec.Properties[wire.PropertyGraceTime]; ok {
		return nil, &container.SpecError{Field: "Properties", Reason: fmt.Sprintf("%q is reserved by the server", wire.PropertyGraceTime)}
	}
	rootfs, err := s.resolveStack(spec.RootFS)
	if err != nil {
		return nil, err
	}
	spec.RootFS = rootfs
	if spec.GraceTime > 0 {
		spec.Properties = maps.Clone(spec.Properties)
		if spec.Properties == nil {
			spec.Properties = map[string]string{}
		}
		spec.Properties[wire.PropertyGraceTime] = spec.GraceTime.String()
	}
	c, err := s.m.Create(r.Context(), spec)
	if err != nil {
		return nil, err
	}
	s.log.Info("created", "handle", c.Handle())
	return entryOf(c), nil
}

// resolveStack turns a RootFS without a leading "/" into the directory of
// the stack it names (the default stack for an empty one).
func (s *Server) resolveStack(rootfs string) (string, error) {
	if strings.HasPrefix(rootfs, "/") {
		return rootfs, nil
	}
	name := rootfs
	if name == "" {
		if s.opts.defaultStack == "" {
			return "", &container.SpecError{Field: "RootFS", Reason: "required (the server has no default stack)"}
		}
		name = s.opts.defaultStack
	}
	dir, ok := s.opts.stacks[name]
	if !ok {
		return "", &container.SpecError{Field: "RootFS", Reason: fmt.Sprintf("%q is neither an absolute path nor one of the server's stacks", name)}
	}
	return dir, nil
}

func (s *Server) lookupEntry(r *http.Request) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	return entryOf(c), nil
}

func (s *Server) destroy(r *http.Request) (any, error) {
	if err := s.m.Destroy(r.Context(), r.PathValue("handle")); err != nil {
		return nil, err
	}
	s.log.Info("destroyed", "handle", r.PathValue("handle"))
	return wire.Empty{}, nil
}

func (s *Server) stopContainer(r *http.Request) (any, error) {
	var req wire.StopRequest
	c, err := s.decodeFor(r, &req)
	if err != nil {
		return nil, err
	}
	if err := c.Stop(r.Context(), req.Kill); err != nil {
		return nil, err
	}
	return wire.Empty{}, nil
}

func (s *Server) info(r *http.Request) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	return c.Info(r.Context())
}

func (s *Server) metrics(r *http.Request) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	return c.Metrics(r.Context())
}

// bulkHandles is the handle list of a bulk request; empty means all.
func bulkHandles(r *http.Request) []string {
	var out []string
	for _, v := range r.URL.Query()[wire.QueryHandles] {
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				out = append(out, h)
			}
		}
	}
	return out
}

func (s *Server) bulkInfo(r *http.Request) (any, error) {
	handles := bulkHandles(r)
	if len(handles) == 0 {
		cs, err := s.m.List(r.Context(), nil)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			handles = append(handles, c.Handle())
		}
	}
	results := make([]wire.BulkInfoEntry, len(handles))
	var g errgroup.Group
	g.SetLimit(bulkConcurrency)
	for i, h := range handles {
		g.Go(func() error {
			c, err := s.m.Lookup(h)
			if err == nil {
				results[i].Info, err = c.Info(r.Context())
			}
			results[i].Error = wire.FromError(err)
			return nil
		})
	}
	g.Wait()
	out := make(map[string]wire.BulkInfoEntry, len(handles))
	for i, h := range handles {
		out[h] = results[i]
	}
	return out, nil
}

func (s *Server) bulkMetrics(r *http.Request) (any, error) {
	res, err := s.m.BulkMetrics(r.Context(), bulkHandles(r))
	if err != nil {
		return nil, err
	}
	out := make(map[string]wire.BulkMetricsEntry, len(res))
	for h, m := range res {
		out[h] = wire.BulkMetricsEntry{Metrics: m.Metrics, Error: wire.FromError(m.Err)}
	}
	return out, nil
}

func (s *Server) limits(r *http.Request) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	return c.Limits(), nil
}

func (s *Server) setLimits(r *http.Request) (any, error) {
	var l container.Limits
	if err := s.decode(r, &l); err != nil {
		return nil, err
	}
	return s.updateLimits(r, func(cur *container.Limits) { *cur = l })
}

func (s *Server) limitMemory(r *http.Request) (any, error) {
	var req wire.LimitMemoryRequest
	if err := s.decode(r, &req); err != nil {
		return nil, err
	}
	return s.updateLimits(r, func(l *container.Limits) { l.MemoryBytes = req.LimitInBytes })
}

func (s *Server) limitCPU(r *http.Request) (any, error) {
	var req wire.LimitCPURequest
	if err := s.decode(r, &req); err != nil {
		return nil, err
	}
	return s.updateLimits(r, func(l *container.Limits) { l.CPUShares = req.LimitInShares })
}

// updateLimits changes a container's cgroup limits with change, read and
// written under one lock so that two requests changing different limits
// do not undo each other.
func (s *Server) updateLimits(r *http.Request, change func(*container.Limits)) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	s.limitsMu.Lock()
	defer s.limitsMu.Unlock()
	l := c.Limits()
	change(&l)
	if err := c.SetLimits(r.Context(), l); err != nil {
		return nil, err
	}
	return c.Limits(), nil
}

func (s *Server) limitDisk(r *http.Request) (any, error) {
	var req wire.LimitDiskRequest
	c, err := s.decodeFor(r, &req)
	if err != nil {
		return nil, err
	}
	if err := c.SetDiskLimit(r.Context(), req.ByteLimit, req.InodeLimit); err != nil {
		return nil, err
	}
	return c.Limits(), nil
}

func (s *Server) limitBandwidth(r *http.Request) (any, error) {
	var bw container.Bandwidth
	c, err := s.decodeFor(r, &bw)
	if err != nil {
		return nil, err
	}
	if err := c.LimitBandwidth(r.Context(), bw); err != nil {
		return nil, err
	}
	return bw, nil
}

func (s *Server) netIn(r *http.Request) (any, error) {
	var req wire.NetInRequest
	c, err := s.decodeFor(r, &req)
	if err != nil {
		return nil, err
	}
	return c.NetIn(r.Context(), req.HostPort, req.ContainerPort)
}

func (s *Server) netOut(r *http.Request) (any, error) {
	var rule container.NetOutRule
	c, err := s.decodeFor(r, &rule)
	if err != nil {
		return nil, err
	}
	if err := c.NetOut(r.Context(), rule); err != nil {
		return nil, err
	}
	return wire.Empty{}, nil
}

func (s *Server) streamIn(r *http.Request) (any, error) {
	q := r.URL.Query()
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	if err := c.StreamIn(r.Context(), q.Get(wire.QueryPath), q.Get(wire.QueryUser), r.Body); err != nil {
		return nil, err
	}
	return wire.Empty{}, nil
}

func (s *Server) streamOut(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc, err := c.StreamOut(r.Context(), r.URL.Query().Get(wire.QueryPath))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Trailer", wire.TrailerStreamError)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil && r.Context().Err() == nil {
		if b, merr := jsonString(wire.FromError(err)); merr == nil {
			w.Header().Set(wire.TrailerStreamError, b)
		}
	}
}

func (s *Server) properties(r *http.Request) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	p := c.Properties()
	if p == nil {
		p = map[string]string{}
	}
	return p, nil
}

func (s *Server) property(r *http.Request) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	key := r.PathValue("key")
	v, ok := c.Properties()[key]
	if !ok {
		return nil, fmt.Errorf("container %q: property %q: %w", c.Handle(), key, container.ErrNotFound)
	}
	return wire.PropertyResponse{Value: v}, nil
}

func (s *Server) graceTime(r *http.Request) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	var d time.Duration
	if v, ok := c.Properties()[wire.PropertyGraceTime]; ok {
		if d, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("container %q: grace time property %q: %w", c.Handle(), v, wire.ErrInternal)
		}
	}
	return wire.GraceTimeResponse{GraceTime: wire.Duration(d)}, nil
}

func reservedProperty(key string) error {
	if key == wire.PropertyGraceTime {
		return &container.SpecError{Field: "Properties", Reason: fmt.Sprintf("%q is reserved by the server: set the grace time instead", key)}
	}
	return nil
}

func (s *Server) setProperty(r *http.Request) (any, error) {
	var req wire.PropertyRequest
	c, err := s.decodeFor(r, &req)
	if err != nil {
		return nil, err
	}
	key := r.PathValue("key")
	if err := reservedProperty(key); err != nil {
		return nil, err
	}
	return struct{}{}, c.SetProperty(r.Context(), key, req.Value)
}

func (s *Server) removeProperty(r *http.Request) (any, error) {
	c, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	key := r.PathValue("key")
	if err := reservedProperty(key); err != nil {
		return nil, err
	}
	return struct{}{}, c.RemoveProperty(r.Context(), key)
}

// setGraceTime changes the container's grace time and records it as the
// property the grace time route reads.
func (s *Server) setGraceTime(r *http.Request) (any, error) {
	var req wire.GraceTimeRequest
	c, err := s.decodeFor(r, &req)
	if err != nil {
		return nil, err
	}
	d := time.Duration(req.GraceTime)
	if err := c.SetGraceTime(r.Context(), d); err != nil {
		return nil, err
	}
	if d == 0 {
		return struct{}{}, c.RemoveProperty(r.Context(), wire.PropertyGraceTime)
	}
	return struct{}{}, c.SetProperty(r.Context(), wire.PropertyGraceTime, d.String())
}

// decodeFor decodes the request's body into v and looks up the container
// it names, the two steps of every request that changes a container.
func (s *Server) decodeFor(r *http.Request, v any) (*container.Container, error) {
	if err := s.decode(r, v); err != nil {
		return nil, err
	}
	return s.lookup(r)
}

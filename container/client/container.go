package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
)

// Container is a container of the server. Its methods mirror those of
// container.Container and return the same errors; each asks the server.
// It is safe for concurrent use. A Container is only a handle: it holds
// no connection and needs no closing.
//
// Differences: Limits asks the server, so it takes a context and returns
// an error; LimitMemory and LimitCPU (warden's limit_memory, limit_cpu)
// change one limit atomically on the server; GraceTime reads the grace
// time recorded at create. Properties never change after create, so
// Properties answers from what the Container was made with.
type Container struct {
	c      *Client
	handle string
	path   string
	props  map[string]string
}

// Handle returns the container's handle.
func (ct *Container) Handle() string { return ct.handle }

// Path returns the container's directory in the server's depot (a path
// on the server's host).
func (ct *Container) Path() string { return ct.path }

// Properties returns a copy of the container's properties. The server
// records the grace time among them (wire.PropertyGraceTime).
func (ct *Container) Properties() map[string]string { return maps.Clone(ct.props) }

func (ct *Container) route(suffix string) string {
	return "/containers/" + url.PathEscape(ct.handle) + suffix
}

// Info returns what the container is doing and what it uses.
func (ct *Container) Info(ctx context.Context) (*container.Info, error) {
	var info container.Info
	if err := ct.c.do(ctx, http.MethodGet, ct.route("/info"), nil, nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Metrics returns the container's resource use (cheaper than Info).
func (ct *Container) Metrics(ctx context.Context) (*container.Metrics, error) {
	var m container.Metrics
	if err := ct.c.do(ctx, http.MethodGet, ct.route("/metrics"), nil, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Stop stops every process of the container: SIGTERM, then SIGKILL after
// the server's stop timeout (at once when kill is true). See
// container.Container.Stop.
func (ct *Container) Stop(ctx context.Context, kill bool) error {
	return ct.c.do(ctx, http.MethodPut, ct.route("/stop"), nil, wire.StopRequest{Kill: kill}, nil)
}

// Destroy destroys the container and everything it holds. Destroying a
// container that is already gone returns an error wrapping
// container.ErrNotFound. The server finishes a destroy it started even
// when ctx ends first.
func (ct *Container) Destroy(ctx context.Context) error {
	return ct.c.do(ctx, http.MethodDelete, ct.route(""), nil, nil, nil)
}

// Limits returns the container's current cgroup limits.
func (ct *Container) Limits(ctx context.Context) (container.Limits, error) {
	var l container.Limits
	err := ct.c.do(ctx, http.MethodGet, ct.route("/limits"), nil, nil, &l)
	return l, err
}

// SetLimits changes the container's cgroup limits, like
// container.Container.SetLimits: zero fields lift the limit.
func (ct *Container) SetLimits(ctx context.Context, l container.Limits) error {
	return ct.c.do(ctx, http.MethodPut, ct.route("/limits"), nil, l, nil)
}

// LimitMemory sets the container's memory limit, leaving the others, and
// returns the limits now in force (warden's limit_memory). 0 lifts it.
func (ct *Container) LimitMemory(ctx context.Context, bytes int64) (container.Limits, error) {
	var l container.Limits
	err := ct.c.do(ctx, http.MethodPut, ct.route("/limits/memory"), nil, wire.LimitMemoryRequest{LimitInBytes: bytes}, &l)
	return l, err
}

// LimitCPU sets the container's CPU shares, leaving the other limits, and
// returns the limits now in force (warden's limit_cpu). 0 goes back to
// the kernel's default.
func (ct *Container) LimitCPU(ctx context.Context, shares uint64) (container.Limits, error) {
	var l container.Limits
	err := ct.c.do(ctx, http.MethodPut, ct.route("/limits/cpu"), nil, wire.LimitCPURequest{LimitInShares: shares}, &l)
	return l, err
}

// SetDiskLimit changes the container's disk limit (warden's limit_disk);
// see container.Container.SetDiskLimit for what each quota backend
// allows.
func (ct *Container) SetDiskLimit(ctx context.Context, bytes, inodes uint64) error {
	return ct.c.do(ctx, http.MethodPut, ct.route("/limits/disk"), nil, wire.LimitDiskRequest{ByteLimit: bytes, InodeLimit: inodes}, nil)
}

// LimitBandwidth shapes the container's traffic (warden's
// limit_bandwidth). Without networking on the server it returns an error
// wrapping container.ErrNoNetwork.
func (ct *Container) LimitBandwidth(ctx context.Context, bw container.Bandwidth) error {
	return ct.c.do(ctx, http.MethodPut, ct.route("/limits/bandwidth"), nil, bw, nil)
}

// NetIn forwards hostPort on the server's host to containerPort in the
// container (warden's net_in); see container.Container.NetIn.
func (ct *Container) NetIn(ctx context.Context, hostPort, containerPort uint16) (container.PortMapping, error) {
	var pm container.PortMapping
	err := ct.c.do(ctx, http.MethodPost, ct.route("/net/in"), nil, wire.NetInRequest{HostPort: hostPort, ContainerPort: containerPort}, &pm)
	return pm, err
}

// NetOut allows the container to reach what rule describes (warden's
// net_out).
func (ct *Container) NetOut(ctx context.Context, rule container.NetOutRule) error {
	return ct.c.do(ctx, http.MethodPost, ct.route("/net/out"), nil, rule, nil)
}

// SetProperty sets one of the container's properties on the server (and
// in the ones Properties returns).
func (ct *Container) SetProperty(ctx context.Context, key, value string) error {
	err := ct.c.do(ctx, http.MethodPut, ct.route("/properties/"+url.PathEscape(key)), nil, wire.PropertyRequest{Value: value}, nil)
	if err == nil {
		if ct.props == nil {
			ct.props = map[string]string{}
		}
		ct.props[key] = value
	}
	return err
}

// RemoveProperty removes one of the container's properties; a missing key
// is no error.
func (ct *Container) RemoveProperty(ctx context.Context, key string) error {
	err := ct.c.do(ctx, http.MethodDelete, ct.route("/properties/"+url.PathEscape(key)), nil, nil, nil)
	if err == nil {
		delete(ct.props, key)
	}
	return err
}

// SetGraceTime changes the container's grace time (0 turns it off); it
// counts from now.
func (ct *Container) SetGraceTime(ctx context.Context, d time.Duration) error {
	return ct.c.do(ctx, http.MethodPut, ct.route("/grace_time"), nil, wire.GraceTimeRequest{GraceTime: wire.Duration(d)}, nil)
}

// GraceTime returns the container's grace time as recorded by the server
// (0: none, or not created through a server).
func (ct *Container) GraceTime(ctx context.Context) (time.Duration, error) {
	var g wire.GraceTimeResponse
	if err := ct.c.do(ctx, http.MethodGet, ct.route("/grace_time"), nil, nil, &g); err != nil {
		return 0, err
	}
	return time.Duration(g.GraceTime), nil
}

// StreamIn sends the tar stream r (plain, gzip or zstd) to be extracted
// into dstPath in the container, owned by owner (warden's copy_in; see
// container.Container.StreamIn). r is read to its end or until the
// server refuses it.
func (ct *Container) StreamIn(ctx context.Context, dstPath, owner string, r io.Reader) error {
	if r == nil {
		return &container.SpecError{Field: "r", Reason: "nil reader"}
	}
	q := url.Values{wire.QueryPath: {dstPath}}
	if owner != "" {
		q.Set(wire.QueryUser, owner)
	}
	resp, err := ct.c.send(ctx, http.MethodPut, ct.route("/files"), q, io.NopCloser(r), "application/x-tar")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return nil
}

// StreamOut returns srcPath in the container as a tar stream (warden's
// copy_out; see container.Container.StreamOut). ctx bounds the whole
// transfer, not only this call; close the stream to stop early. A
// failure after the stream started is returned by Read instead of
// io.EOF.
func (ct *Container) StreamOut(ctx context.Context, srcPath string) (io.ReadCloser, error) {
	resp, err := ct.c.send(ctx, http.MethodGet, ct.route("/files"), url.Values{wire.QueryPath: {srcPath}}, nil, "")
	if err != nil {
		return nil, err
	}
	return &tarStream{resp: resp}, nil
}

// tarStream is a stream out's body; at its end it reports the error the
// server sent in the trailer, if any.
type tarStream struct {
	resp *http.Response
}

func (t *tarStream) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if errors.Is(err, io.EOF) {
		if v := t.resp.Trailer.Get(wire.TrailerStreamError); v != "" {
			var we wire.Error
			if json.Unmarshal([]byte(v), &we) != nil || we.Code == "" {
				return n, fmt.Errorf("client: stream out: %w: trailer %q", ErrProtocol, v)
			}
			return n, &we
		}
	}
	return n, err
}

func (t *tarStream) Close() error { return t.resp.Body.Close() }

// Run starts a process in the container and returns once it runs, like
// container.Container.Run: its output is streamed to pio's writers,
// pio.Stdin (when set) is copied to its standard input, and Wait returns
// its exit status. ctx bounds the start only: the process runs on
// whatever happens to ctx, to the Client, to the connection or to the
// server. A Process holds a connection until the process exits or
// Close is called.
//
// Standard input belongs to this stream: when it ends early (Close, the
// server restarted) the process's stdin is closed. A goroutine copies
// pio.Stdin until it returns EOF or an error or the stream ends; a Read
// that blocks forever keeps that goroutine (as with the container
// package).
func (ct *Container) Run(ctx context.Context, spec container.ProcessSpec, pio container.ProcessIO) (*Process, error) {
	req := wire.RunRequest{Spec: spec, Stdin: pio.Stdin != nil, Stdout: pio.Stdout != nil, Stderr: pio.Stderr != nil}
	conn, br, id, pid, err := ct.c.openStream(ctx, http.MethodPost, ct.route("/processes"), nil, req)
	if err != nil {
		return nil, err
	}
	pio.StdoutOffset, pio.StderrOffset = 0, 0
	return ct.c.startProcess(ct, id, pid, pio, conn, br), nil
}

// Attach finds a process of the container by id, running or exited, also
// one started before the server was restarted, and streams its output to
// pio's writers from the given offsets, like container.Container.Attach.
// pio.Stdin is ignored. An unknown id returns an error wrapping
// container.ErrNotFound.
func (ct *Container) Attach(ctx context.Context, id string, pio container.ProcessIO) (*Process, error) {
	pio.Stdin = nil
	if !pathSafe(id) {
		return nil, &container.SpecError{Field: "ID", Reason: fmt.Sprintf("%q is not a process id", id)}
	}
	conn, br, gotID, pid, err := ct.c.openStream(ctx, http.MethodGet, ct.route("/processes/"+url.PathEscape(id)), attachQuery(pio), nil)
	if err != nil {
		return nil, err
	}
	if gotID == "" {
		gotID = id
	}
	return ct.c.startProcess(ct, gotID, pid, pio, conn, br), nil
}

func attachQuery(pio container.ProcessIO) url.Values {
	q := url.Values{}
	if pio.Stdout != nil {
		q.Set(wire.QueryStdout, "1")
		if pio.StdoutOffset > 0 {
			q.Set(wire.QueryStdoutOffset, fmt.Sprint(pio.StdoutOffset))
		}
	}
	if pio.Stderr != nil {
		q.Set(wire.QueryStderr, "1")
		if pio.StderrOffset > 0 {
			q.Set(wire.QueryStderrOffset, fmt.Sprint(pio.StderrOffset))
		}
	}
	return q
}

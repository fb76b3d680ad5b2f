package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
)

// Capacity is what the server's host offers (see wire.Capacity).
type Capacity = wire.Capacity

// Client talks to a warden server (package container/server) on a unix
// socket. Its methods mirror those of container.Manager; each takes a
// context, which bounds that call. It is safe for concurrent use and
// keeps a few idle connections for reuse (WithMaxIdleConns).
type Client struct {
	socket string
	opts   options
	log    *slog.Logger
	tr     *http.Transport
	hc     *http.Client

	mu     sync.Mutex
	closed bool
	procs  map[*Process]struct{} // live process streams, detached by Close
}

// New returns a Client for the server listening on the unix socket at
// socketPath. It does not connect: the first call does (Ping checks that
// the server answers). An empty path is an error.
func New(socketPath string, opts ...Option) (*Client, error) {
	if socketPath == "" {
		return nil, errors.New("client: empty socket path")
	}
	abs, err := filepath.Abs(socketPath)
	if err != nil {
		return nil, fmt.Errorf("client: socket %q: %w", socketPath, err)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.reattach < 0 || o.maxIdle < 0 {
		return nil, errors.New("client: negative option value")
	}
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{socket: abs, opts: o, log: log.With("socket", abs), procs: map[*Process]struct{}{}}
	c.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.dial(ctx)
		},
		MaxIdleConns:        o.maxIdle,
		MaxIdleConnsPerHost: o.maxIdle,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	c.hc = &http.Client{Transport: c.tr}
	return c, nil
}

// Socket returns the absolute path of the server's socket.
func (c *Client) Socket() string { return c.socket }

// Close detaches the Client's process streams (their processes keep
// running: see ErrDetached) and closes its idle connections. Calls after
// Close return ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	procs := slices.Collect(maps.Keys(c.procs))
	c.mu.Unlock()
	for _, p := range procs {
		p.Close()
	}
	c.tr.CloseIdleConnections()
	return nil
}

func (c *Client) checkOpen() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return conn, nil
}

const baseURL = "http://warden"

// do sends one JSON request and decodes the JSON answer into out (when
// not nil). in, when not nil, is encoded as the body.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: %s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, query, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		out = &wire.Empty{}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("client: %s %s: decode answer: %w: %v", method, path, ErrProtocol, err)
	}
	return nil
}

// send sends a request and returns a successful answer, whose body the
// caller closes; an error answer is returned as the error it carries.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	u := baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("client: %s %s: %w", method, path, unwrapURL(err))
		}
		return nil, fmt.Errorf("client: %s %s: %w: %w", method, path, ErrUnavailable, unwrapURL(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, errorAnswer(resp)
	}
	return resp, nil
}

// unwrapURL drops the *url.Error around a transport error: its text
// holds the made-up URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorAnswer reads the wire.Error of an error answer.
func errorAnswer(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var we wire.Error
	if err := json.Unmarshal(b, &we); err != nil || we.Code == "" {
		return fmt.Errorf("client: %w: answer %s: %q", ErrProtocol, resp.Status, truncate(string(b), 200))
	}
	return &we
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// openStream sends a request that switches to a process stream and
// returns the connection, a reader of it (which may hold buffered
// frames), and the process's id and pid. ctx bounds the exchange only.
func (c *Client) openStream(ctx context.Context, method, path string, query url.Values, in any) (_ net.Conn, _ *bufio.Reader, id string, pid int, retErr error) {
	if err := c.checkOpen(); err != nil {
		return nil, nil, "", 0, err
	}
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, nil, "", 0, fmt.Errorf("client: %s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	u := baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, nil, "", 0, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", wire.Upgrade)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, nil, "", 0, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer func() {
		if retErr != nil {
			conn.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	br := bufio.NewReaderSize(conn, 64<<10)
	var resp *http.Response
	if err = req.Write(conn); err == nil {
		resp, err = http.ReadResponse(br, req)
	}
	if !stop() {
		return nil, nil, "", 0, ctx.Err()
	}
	if err != nil {
		return nil, nil, "", 0, fmt.Errorf("client: %s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil, nil, "", 0, fmt.Errorf("client: %s %s: %w: answer %s instead of a stream", method, path, ErrProtocol, resp.Status)
		}
		return nil, nil, "", 0, errorAnswer(resp)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), wire.Upgrade) {
		return nil, nil, "", 0, fmt.Errorf("client: %s %s: %w: upgrade to %q", method, path, ErrProtocol, resp.Header.Get("Upgrade"))
	}
	id = resp.Header.Get(wire.HeaderProcessID)
	pid, _ = strconv.Atoi(resp.Header.Get(wire.HeaderProcessPID))
	return conn, br, id, pid, nil
}

// Ping checks that the server answers (warden's ping: pong).
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/ping", nil, nil, nil)
}

// Capacity returns what the server's host offers: memory, disk, and how
// many containers it holds and can hold.
func (c *Client) Capacity(ctx context.Context) (Capacity, error) {
	var out Capacity
	err := c.do(ctx, http.MethodGet, "/capacity", nil, nil, &out)
	return out, err
}

// Create makes and starts a container as spec says, like
// container.Manager.Create. A RootFS without a leading "/" names one of
// the server's stacks; an empty one takes the server's default stack.
func (c *Client) Create(ctx context.Context, spec container.Spec) (*Container, error) {
	var e wire.ContainerEntry
	if err := c.do(ctx, http.MethodPost, "/containers", nil, wire.CreateRequest{Spec: spec}, &e); err != nil {
		return nil, err
	}
	return c.container(e), nil
}

func (c *Client) container(e wire.ContainerEntry) *Container {
	return &Container{c: c, handle: e.Handle, path: e.Path, props: e.Properties}
}

// Lookup returns the container with that handle, or an error wrapping
// container.ErrNotFound. Unlike container.Manager.Lookup it asks the
// server, so it takes a context.
func (c *Client) Lookup(ctx context.Context, handle string) (*Container, error) {
	if !pathSafe(handle) {
		return nil, fmt.Errorf("container %q: %w", handle, container.ErrNotFound)
	}
	var e wire.ContainerEntry
	if err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(handle), nil, nil, &e); err != nil {
		return nil, err
	}
	return c.container(e), nil
}

// List returns the containers whose properties include every key and
// value of filter (all for an empty filter), sorted by handle.
func (c *Client) List(ctx context.Context, filter map[string]string) ([]*Container, error) {
	q := url.Values{}
	for k, v := range filter {
		q.Set(k, v)
	}
	var es []wire.ContainerEntry
	if err := c.do(ctx, http.MethodGet, "/containers", q, nil, &es); err != nil {
		return nil, err
	}
	out := make([]*Container, len(es))
	for i, e := range es {
		out[i] = c.container(e)
	}
	return out, nil
}

// Destroy destroys the container with that handle (see
// Container.Destroy).
func (c *Client) Destroy(ctx context.Context, handle string) error {
	if !pathSafe(handle) {
		return fmt.Errorf("container %q: %w", handle, container.ErrNotFound)
	}
	return c.do(ctx, http.MethodDelete, "/containers/"+url.PathEscape(handle), nil, nil, nil)
}

// InfoResult is one container's entry in a BulkInfo answer.
type InfoResult struct {
	Info *container.Info
	Err  error
}

func handlesQuery(handles []string) url.Values {
	if len(handles) == 0 {
		return nil
	}
	return url.Values{wire.QueryHandles: {strings.Join(handles, ",")}}
}

func wireErr(e *wire.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// BulkInfo returns the Info of the containers with the given handles (all
// of them when handles is empty). A handle the server does not know gets
// an Err wrapping container.ErrNotFound.
func (c *Client) BulkInfo(ctx context.Context, handles []string) (map[string]InfoResult, error) {
	var in map[string]wire.BulkInfoEntry
	if err := c.do(ctx, http.MethodGet, "/bulk_info", handlesQuery(handles), nil, &in); err != nil {
		return nil, err
	}
	out := make(map[string]InfoResult, len(in))
	for h, e := range in {
		out[h] = InfoResult{Info: e.Info, Err: wireErr(e.Error)}
	}
	return out, nil
}

// BulkMetrics returns the metrics of the containers with the given
// handles (all of them when handles is empty), like
// container.Manager.BulkMetrics.
func (c *Client) BulkMetrics(ctx context.Context, handles []string) (map[string]container.MetricsResult, error) {
	var in map[string]wire.BulkMetricsEntry
	if err := c.do(ctx, http.MethodGet, "/bulk_metrics", handlesQuery(handles), nil, &in); err != nil {
		return nil, err
	}
	out := make(map[string]container.MetricsResult, len(in))
	for h, e := range in {
		out[h] = container.MetricsResult{Metrics: e.Metrics, Err: wireErr(e.Error)}
	}
	return out, nil
}

// QuotaBackend returns the server's disk quota backend and why the ones
// tried before it were not taken, like container.Manager.QuotaBackend.
func (c *Client) QuotaBackend(ctx context.Context) (container.QuotaBackend, []string, error) {
	var rep wire.QuotaReport
	if err := c.do(ctx, http.MethodGet, "/quota", nil, nil, &rep); err != nil {
		return "", nil, err
	}
	return rep.Backend, rep.Tried, nil
}

// QuotaReport lists every container's disk use and limits (warden's
// repquota), like container.Manager.QuotaReport.
func (c *Client) QuotaReport(ctx context.Context) ([]container.QuotaEntry, error) {
	var rep wire.QuotaReport
	if err := c.do(ctx, http.MethodGet, "/quota", nil, nil, &rep); err != nil {
		return nil, err
	}
	out := make([]container.QuotaEntry, len(rep.Entries))
	for i, e := range rep.Entries {
		out[i] = container.QuotaEntry{Handle: e.Handle, DiskUsage: e.Usage, Err: wireErr(e.Error)}
	}
	return out, nil
}

// pathSafe reports whether a handle or process id can be a path element
// of a route. Those that cannot are not valid names anyway (see
// container.MaxHandleLen and Spec.Handle).
func pathSafe(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}

package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// healthConfig is an instance's HealthCheck with the defaults applied.
type healthConfig struct {
	typ               HealthCheckType
	endpoint          string
	timeout, interval time.Duration
	liveness          time.Duration
	threshold         int
}

func (m *Manager) healthConfig(a *Attributes) healthConfig {
	hc := a.HealthCheck
	c := healthConfig{
		typ:       hc.Type,
		endpoint:  hc.HTTPEndpoint,
		timeout:   time.Duration(hc.Timeout),
		interval:  time.Duration(hc.Interval),
		liveness:  time.Duration(hc.LivenessInterval),
		threshold: hc.LivenessThreshold,
	}
	if c.typ == HealthCheckDefault {
		c.typ = HealthCheckProcess
		if len(a.ApplicationURIs) > 0 {
			c.typ = HealthCheckPort
		}
	}
	if c.endpoint == "" {
		c.endpoint = "/"
	}
	if c.timeout == 0 && a.HealthCheckTimeout > 0 {
		c.timeout = time.Duration(a.HealthCheckTimeout) * time.Second
	}
	if c.timeout == 0 {
		c.timeout = m.opts.healthTimeout
	}
	if c.interval == 0 {
		c.interval = DefaultHealthCheckInterval
	}
	if c.threshold == 0 {
		c.threshold = DefaultLivenessThreshold
	}
	return c
}

// healthAddr is where the app listens, as seen from the host: the
// container's address and port when the container has one, else the
// host port on the loopback.
func healthAddr(a *Attributes) string {
	if a.WardenContainerIP != "" {
		return net.JoinHostPort(a.WardenContainerIP, strconv.Itoa(a.InstanceContainerPort))
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.InstanceHostPort))
}

var errProcessExited = errors.New("the process exited")

// probe runs one check. A process check passes while the process runs.
func probe(ctx context.Context, c healthConfig, addr string, exited <-chan struct{}) error {
	select {
	case <-exited:
		return errProcessExited
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultHealthCheckAttempt)
	defer cancel()
	switch c.typ {
	case HealthCheckPort:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	case HealthCheckHTTP:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.endpoint, nil)
		if err != nil {
			return err
		}
		resp, err := healthClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("GET %s: %s", c.endpoint, resp.Status)
		}
	}
	return nil
}

// healthClient makes one connection per check, as Diego's healthcheck
// binary did, and follows no redirects (a 3xx is not healthy).
var healthClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// awaitHealthy runs the readiness check until it passes, the readiness
// timeout passes, the process exits or ctx ends.
func (m *Manager) awaitHealthy(ctx context.Context, inst *Instance) error {
	a := inst.Attributes()
	c := m.healthConfig(&a)
	addr := healthAddr(&a)
	timeout := time.NewTimer(c.timeout)
	defer timeout.Stop()
	var last error
	for {
		last = probe(ctx, c, addr, inst.exited)
		if last == nil {
			return nil
		}
		if errors.Is(last, errProcessExited) {
			return m.exitError(inst)
		}
		select {
		case <-time.After(c.interval):
		case <-inst.exited:
			return m.exitError(inst)
		case <-timeout.C:
			desc := DescHealthTimeout
			if c.typ == HealthCheckHTTP {
				desc = DescHTTPHealthTimeout
			}
			return userErr(desc, last)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// exitError is the start error of an instance whose process exited
// while starting (the exit itself crashed it).
func (m *Manager) exitError(inst *Instance) error {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	desc := DescExited
	if inst.exit.OOMKilled {
		desc = DescOutOfMemory
	}
	return userErr(desc, fmt.Errorf("exit status %d", inst.exit.Code))
}

// startLivenessLocked starts the liveness check of a RUNNING instance
// when its health check has a liveness interval. The caller holds
// inst.mu.
func (m *Manager) startLivenessLocked(inst *Instance) {
	c := m.healthConfig(&inst.a)
	if c.liveness <= 0 || inst.liveness != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	if !m.goTracked(func() { m.liveness(ctx, inst, c) }) {
		cancel()
		return
	}
	inst.liveness = cancel
}

func (m *Manager) stopLiveness(inst *Instance) {
	inst.mu.Lock()
	cancel := inst.liveness
	inst.liveness = nil
	inst.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// liveness checks a running instance every interval; threshold failures
// in a row crash it with the reason.
func (m *Manager) liveness(ctx context.Context, inst *Instance, c healthConfig) {
	t := time.NewTicker(c.liveness)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-inst.exited:
			return
		case <-t.C:
		}
		a := inst.Attributes()
		if a.State != StateRunning && a.State != StateEvacuating {
			return
		}
		err := probe(ctx, c, healthAddr(&a), inst.exited)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures = 0
			continue
		}
		if failures++; failures < c.threshold {
			continue
		}
		m.crash(inst, -1, fmt.Sprintf("%s %d times in a row: %v", DescLivenessFailed, failures, err), nil)
		return
	}
}

package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// rawClient is a plain HTTP client on the server's socket.
func rawClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// rawDo sends a request and returns the answer's status and wire error
// (zero for a success).
func rawDo(t *testing.T, hc *http.Client, method, path, body string, hdr map[string]string) (int, wire.Error) {
	t.Helper()
	req, err := http.NewRequest(method, "http://warden"+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var we wire.Error
	if resp.StatusCode/100 != 2 {
		require.NoError(t, json.Unmarshal(b, &we), "error body %q is not a wire.Error", b)
	}
	return resp.StatusCode, we
}

// countFds counts the process's open file descriptors (-1 when it
// cannot).
func countFds() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// waitSettle waits, up to within, until the goroutine and fd counts are
// back to at most their baseline, and returns the last counts.
func waitSettle(goroutines, fds int, within time.Duration) (g, f int) {
	deadline := time.Now().Add(within)
	for {
		g, f = runtime.NumGoroutine(), countFds()
		if (g <= goroutines && f <= fds) || time.Now().After(deadline) {
			return g, f
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle is waitSettle that fails the test, with a goroutine dump, when
// the counts stay above the baseline.
func settle(t *testing.T, goroutines, fds int) {
	t.Helper()
	g, f := waitSettle(goroutines, fds, 15*time.Second)
	if g <= goroutines && f <= fds {
		t.Logf("goroutines %d (baseline %d), fds %d (baseline %d)", g, goroutines, f, fds)
		return
	}
	buf := make([]byte, 1<<20)
	t.Errorf("leak: goroutines %d (baseline %d), fds %d (baseline %d)\n%s", g, goroutines, f, fds, buf[:runtime.Stack(buf, true)])
}

// Malformed and hostile requests get clear errors, the server keeps
// serving, and nothing leaks.
func TestHostileRequests(t *testing.T) {
	h := newHarness(t, nil)
	c := h.create(t, container.Spec{Properties: map[string]string{"app": "web"}})
	hc := rawClient(h.srv.Socket)
	defer hc.CloseIdleConnections()
	route := "/containers/" + c.Handle()
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": wire.Upgrade}
	// Warm up what the first requests start once (connection pools).
	require.NoError(t, h.cl.Ping(t.Context()))
	rawDo(t, hc, "GET", "/ping", "", nil)
	hc.CloseIdleConnections()
	h.cl.Close()
	time.Sleep(50 * time.Millisecond)
	baseG, baseF := runtime.NumGoroutine(), countFds()
	leaks := goleak.IgnoreCurrent()

	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     wire.Code
	}{
		{"malformed JSON", "POST", "/containers", "{", nil, 400, wire.CodeBadRequest},
		{"empty body", "POST", "/containers", "", nil, 400, wire.CodeBadRequest},
		{"unknown field", "POST", "/containers", `{"spec":{"RootFS":"/"},"bogus":1}`, nil, 400, wire.CodeBadRequest},
		{"unknown spec field", "POST", "/containers", `{"spec":{"RootFS":"/","Bogus":1}}`, nil, 400, wire.CodeBadRequest},
		{"wrong type", "POST", "/containers", `{"spec":{"RootFS":42}}`, nil, 400, wire.CodeBadRequest},
		{"trailing data", "POST", "/containers", `{"spec":{}} {}`, nil, 400, wire.CodeBadRequest},
		{"oversized body", "POST", "/containers", `{"spec":{"Env":["` + strings.Repeat("A", 2<<20) + `"]}}`, nil, 413, wire.CodeTooLarge},
		{"unknown handle", "GET", "/containers/no-such/info", "", nil, 404, wire.CodeNotFound},
		{"dot-dot handle", "GET", "/containers/%2e%2e/info", "", nil, 404, wire.CodeNotFound},
		{"unknown route", "GET", "/nowhere", "", nil, 400, wire.CodeBadRequest},
		{"wrong method", "DELETE", "/ping", "", nil, 400, wire.CodeBadRequest},
		{"repeated filter", "GET", "/containers?a=1&a=2", "", nil, 400, wire.CodeBadRequest},
		{"run without upgrade", "POST", route + "/processes", `{"spec":{"Path":"/bin/true"}}`, nil, 400, wire.CodeBadRequest},
		{"negative offset", "GET", route + "/processes/x?stdout_offset=-1", "", upgrade, 400, wire.CodeBadRequest},
		{"bad boolean", "GET", route + "/processes/x?stdout=maybe", "", upgrade, 400, wire.CodeBadRequest},
		{"bad signal", "PUT", route + "/processes/x/signal", `{"signal":0}`, nil, 400, wire.CodeBadRequest},
		{"unknown property", "GET", route + "/properties/nope", "", nil, 404, wire.CodeNotFound},
		{"limits out of range", "PUT", route + "/limits/cpu", `{"limit_in_shares":1}`, nil, 400, wire.CodeInvalidSpec},
		{"negative limit", "PUT", route + "/limits", `{"MemoryBytes":-1}`, nil, 400, wire.CodeInvalidSpec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, we := rawDo(t, hc, tc.method, tc.path, tc.body, tc.hdr)
			assert.Equal(t, tc.status, status)
			assert.Equal(t, tc.code, we.Code, "message %q", we.Message)
			assert.NotEmpty(t, we.Message)
		})
	}

	t.Run("property", func(t *testing.T) {
		resp, err := hc.Get("http://warden" + route + "/properties/app")
		require.NoError(t, err)
		defer resp.Body.Close()
		var pr wire.PropertyResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&pr))
		assert.Equal(t, "web", pr.Value)
	})

	t.Run("garbage on the socket", func(t *testing.T) {
		conn, err := net.Dial("unix", h.srv.Socket)
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte("\x00\x01GARBAGE\r\n\r\n"))
		require.NoError(t, err)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(conn)
		assert.Contains(t, string(b), "400")
	})

	t.Run("half a request", func(t *testing.T) {
		conn, err := net.Dial("unix", h.srv.Socket)
		require.NoError(t, err)
		_, err = conn.Write([]byte("POST /containers HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"spec\""))
		require.NoError(t, err)
		conn.Close()
	})

	// stream opens a process stream by hand and returns the connection
	// once the server switched to frames.
	stream := func(t *testing.T, req string) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("unix", h.srv.Socket)
		require.NoError(t, err)
		_, err = io.WriteString(conn, req)
		require.NoError(t, err)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		return conn, br
	}
	runReq := func(body string) string {
		return fmt.Sprintf("POST %s/processes HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: %s\r\nContent-Length: %d\r\n\r\n%s",
			route, wire.Upgrade, len(body), body)
	}
	// frameEnds reads frames until the stream ends; it returns whether an
	// exit frame came.
	frameEnds := func(t *testing.T, conn net.Conn, br *bufio.Reader) bool {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		fr := wire.NewFrameReader(br)
		for {
			typ, _, err := fr.Next()
			if err != nil {
				return false
			}
			if typ == wire.FrameExit {
				return true
			}
		}
	}

	t.Run("oversized frame", func(t *testing.T) {
		conn, br := stream(t, runReq(`{"spec":{"Path":"/bin/cat"},"stdin":true,"stdout":true}`))
		defer conn.Close()
		var hdr [5]byte
		hdr[0] = byte(wire.FrameStdin)
		binary.BigEndian.PutUint32(hdr[1:], 1<<30)
		conn.Write(hdr[:])
		assert.False(t, frameEnds(t, conn, br), "the server ends the stream without an exit frame")
	})

	t.Run("stdin frame without stdin", func(t *testing.T) {
		conn, br := stream(t, runReq(`{"spec":{"Path":"/bin/sleep","Args":["0.5"]}}`))
		defer conn.Close()
		require.NoError(t, wire.WriteFrame(conn, wire.FrameStdin, []byte("x")))
		assert.False(t, frameEnds(t, conn, br))
	})

	t.Run("unknown frame type", func(t *testing.T) {
		conn, br := stream(t, runReq(`{"spec":{"Path":"/bin/sleep","Args":["0.5"]}}`))
		defer conn.Close()
		require.NoError(t, wire.WriteFrame(conn, 'z', nil))
		assert.False(t, frameEnds(t, conn, br))
	})

	t.Run("client leaves mid-stream", func(t *testing.T) {
		conn, _ := stream(t, runReq(`{"spec":{"Path":"/bin/sh","Args":["-c","sleep 0.3; echo late"]},"stdout":true}`))
		conn.Close()
	})

	t.Run("exit frame", func(t *testing.T) {
		conn, br := stream(t, runReq(`{"spec":{"Path":"/bin/echo","Args":["hi"]},"stdout":true}`))
		defer conn.Close()
		assert.True(t, frameEnds(t, conn, br))
	})

	t.Run("still serving", func(t *testing.T) {
		status, _ := rawDo(t, hc, "GET", "/ping", "", nil)
		assert.Equal(t, http.StatusOK, status)
	})

	hc.CloseIdleConnections()
	settle(t, baseG, baseF)
	goleak.VerifyNone(t, leaks)
}

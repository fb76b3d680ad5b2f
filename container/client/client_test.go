package client_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/paaskit/paaskit/container/server/wire"
	"github.com/paaskit/paaskit/internal/archive"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// These tests run the client against fake servers: no root needed. The
// round trip against a real server and Manager is in package server.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeServer serves h on a unix socket in a temporary directory and
// returns the socket's path.
func fakeServer(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fake-")
	require.NoError(t, err)
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
		os.RemoveAll(dir)
	})
	return sock
}

func newClient(t *testing.T, sock string, opts ...client.Option) *client.Client {
	t.Helper()
	cl, err := client.New(sock, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func TestErrorsComeBackAsSentinels(t *testing.T) {
	tests := []struct {
		we wire.Error
		is error
	}{
		{wire.Error{Code: wire.CodeNotFound}, container.ErrNotFound},
		{wire.Error{Code: wire.CodeAlreadyExists}, container.ErrAlreadyExists},
		{wire.Error{Code: wire.CodeInvalidSpec, Field: "Limits.MemoryBytes", Reason: "too small"}, container.ErrInvalidSpec},
		{wire.Error{Code: wire.CodeStopped}, container.ErrStopped},
		{wire.Error{Code: wire.CodeOutOfMemory}, container.ErrOutOfMemory},
		{wire.Error{Code: wire.CodeClosed}, container.ErrClosed},
		{wire.Error{Code: wire.CodeNoNetwork}, container.ErrNoNetwork},
		{wire.Error{Code: wire.CodeAgent}, container.ErrAgent},
		{wire.Error{Code: wire.CodePoolExhausted}, container.ErrPoolExhausted},
		{wire.Error{Code: wire.CodeUnsupported}, errors.ErrUnsupported},
		{wire.Error{Code: wire.CodeNotExist}, fs.ErrNotExist},
		{wire.Error{Code: wire.CodePermission}, fs.ErrPermission},
		{wire.Error{Code: wire.CodeUnsafePath}, archive.ErrUnsafePath},
		{wire.Error{Code: wire.CodeBadArchive}, archive.ErrBadArchive},
		{wire.Error{Code: wire.CodeBadRequest}, client.ErrBadRequest},
		{wire.Error{Code: wire.CodeTooLarge}, client.ErrTooLarge},
		{wire.Error{Code: wire.CodeInternal, Errno: int(syscall.ENOSPC)}, syscall.ENOSPC},
		{wire.Error{Code: "from-the-future"}, wire.ErrInternal},
	}
	for _, tc := range tests {
		t.Run(string(tc.we.Code), func(t *testing.T) {
			we := tc.we
			we.Message = "server says " + string(we.Code)
			sock := fakeServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, we.Status(), we)
			}))
			err := newClient(t, sock).Ping(t.Context())
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			assert.Equal(t, we.Message, err.Error(), "the server's message is kept")
			if tc.we.Code == wire.CodeInvalidSpec {
				var se *container.SpecError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, "Limits.MemoryBytes", se.Field)
				assert.Equal(t, "too small", se.Reason)
			}
		})
	}
}

func TestNotAWardenServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"plain text error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", 500) }},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") }},
		{"error without code", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 404, map[string]string{"message": "x"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := newClient(t, fakeServer(t, tc.h))
			assert.ErrorIs(t, cl.Ping(t.Context()), client.ErrProtocol)
			_, err := cl.Lookup(t.Context(), "x")
			assert.ErrorIs(t, err, client.ErrProtocol)
		})
	}
	t.Run("no upgrade", func(t *testing.T) {
		cl := newClient(t, fakeServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, wire.ContainerEntry{Handle: "h"})
		})))
		c, err := cl.Lookup(t.Context(), "h")
		require.NoError(t, err)
		_, err = c.Run(t.Context(), container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
		assert.ErrorIs(t, err, client.ErrProtocol)
	})
}

func TestUnavailable(t *testing.T) {
	dir := t.TempDir()
	cl := newClient(t, filepath.Join(dir, "missing.sock"))
	err := cl.Ping(t.Context())
	assert.ErrorIs(t, err, client.ErrUnavailable)
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// A socket file nobody listens on.
	sock := filepath.Join(dir, "dead.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
	cl = newClient(t, sock)
	err = cl.Ping(t.Context())
	assert.ErrorIs(t, err, client.ErrUnavailable)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)

	_, err = client.New("")
	assert.Error(t, err)
}

// upgrade switches a fake server's answer to a process stream.
func upgrade(t *testing.T, w http.ResponseWriter, id string) (net.Conn, *bufio.ReadWriter) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return nil, nil
	}
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s: %s\r\n%s: 42\r\n\r\n",
		wire.Upgrade, wire.HeaderProcessID, id, wire.HeaderProcessPID)
	brw.Flush()
	return conn, brw
}

func exitFrame(t *testing.T, w io.Writer, e wire.Exit) {
	b, err := json.Marshal(e)
	require.NoError(t, err)
	require.NoError(t, wire.WriteFrame(w, wire.FrameExit, b))
}

func entryHandler(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, wire.ContainerEntry{Handle: r.PathValue("handle"), Properties: map[string]string{"a": "b"}})
}

func TestRunStream(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/{handle}", entryHandler)
	mux.HandleFunc("POST /containers/{handle}/processes", func(w http.ResponseWriter, r *http.Request) {
		var req wire.RunRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Stdin || !req.Stdout || !req.Stderr {
			writeJSON(w, 400, wire.Error{Code: wire.CodeBadRequest, Message: fmt.Sprint(req, err)})
			return
		}
		conn, brw := upgrade(t, w, "p1")
		defer conn.Close()
		// Echo stdin, upper-cased, until stdin closes; then exit 3.
		fr := wire.NewFrameReader(brw)
		for {
			typ, b, err := fr.Next()
			if err != nil {
				return
			}
			if typ == wire.FrameStdinClose {
				break
			}
			wire.WriteFrame(conn, wire.FrameStdout, bytes.ToUpper(b))
		}
		wire.WriteFrame(conn, wire.FrameStderr, []byte("done\n"))
		exitFrame(t, conn, wire.Exit{Status: container.ExitStatus{Code: 3}})
	})
	cl := newClient(t, fakeServer(t, mux))
	c, err := cl.Lookup(t.Context(), "h1")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "b"}, c.Properties())
	var out, errOut bytes.Buffer
	in := strings.Repeat("hello ", 20000) // several frames
	p, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/cat"}, container.ProcessIO{Stdin: strings.NewReader(in), Stdout: &out, Stderr: &errOut})
	require.NoError(t, err)
	assert.Equal(t, "p1", p.ID())
	assert.Equal(t, 42, p.PID())
	code, err := p.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	assert.Equal(t, strings.ToUpper(in), out.String())
	assert.Equal(t, "done\n", errOut.String())
	so, se := p.Offsets()
	assert.EqualValues(t, len(in), so)
	assert.EqualValues(t, 5, se)
	code, err = p.Wait(t.Context())
	assert.Equal(t, 3, code, "Wait may be repeated")
	assert.NoError(t, err)
}

func TestExitStatuses(t *testing.T) {
	exit := wire.Exit{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/{handle}", entryHandler)
	mux.HandleFunc("GET /containers/{handle}/processes/{id}", func(w http.ResponseWriter, r *http.Request) {
		conn, _ := upgrade(t, w, r.PathValue("id"))
		defer conn.Close()
		exitFrame(t, conn, exit)
	})
	cl := newClient(t, fakeServer(t, mux))
	c, err := cl.Lookup(t.Context(), "h")
	require.NoError(t, err)

	exit = wire.Exit{Status: container.ExitStatus{Code: 137, Signal: 9, OOMKilled: true}}
	p, err := c.Attach(t.Context(), "oom", container.ProcessIO{})
	require.NoError(t, err)
	code, err := p.Wait(t.Context())
	assert.Equal(t, 137, code)
	assert.ErrorIs(t, err, container.ErrOutOfMemory)

	exit = wire.Exit{Error: &wire.Error{Code: wire.CodeNotFound, Message: "container destroyed"}}
	p, err = c.Attach(t.Context(), "gone", container.ProcessIO{})
	require.NoError(t, err)
	_, err = p.Wait(t.Context())
	assert.ErrorIs(t, err, container.ErrNotFound)
}

// A stream that breaks is continued from the offsets delivered, by hand
// (Reattach) or by itself (WithReattach).
func TestReattach(t *testing.T) {
	for _, auto := range []bool{false, true} {
		t.Run(fmt.Sprintf("automatic=%v", auto), func(t *testing.T) {
			var mu sync.Mutex
			var queries []string
			mux := http.NewServeMux()
			mux.HandleFunc("GET /containers/{handle}", entryHandler)
			mux.HandleFunc("GET /containers/{handle}/processes/{id}", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				queries = append(queries, r.URL.RawQuery)
				n := len(queries)
				mu.Unlock()
				conn, _ := upgrade(t, w, "p")
				defer conn.Close()
				if n == 1 {
					wire.WriteFrame(conn, wire.FrameStdout, []byte("abc"))
					wire.WriteFrame(conn, wire.FrameStderr, []byte("x"))
					return // the server goes away mid-stream
				}
				wire.WriteFrame(conn, wire.FrameStdout, []byte("def"))
				exitFrame(t, conn, wire.Exit{})
			})
			var opts []client.Option
			if auto {
				opts = append(opts, client.WithReattach(10*time.Second))
			}
			cl := newClient(t, fakeServer(t, mux), opts...)
			c, err := cl.Lookup(t.Context(), "h")
			require.NoError(t, err)
			var out, errOut bytes.Buffer
			p, err := c.Attach(t.Context(), "p", container.ProcessIO{Stdout: &out, Stderr: &errOut, StdoutOffset: 10})
			require.NoError(t, err)
			if !auto {
				_, err = p.Wait(t.Context())
				require.ErrorIs(t, err, client.ErrDetached)
				p, err = p.Reattach(t.Context())
				require.NoError(t, err)
			}
			code, err := p.Wait(t.Context())
			require.NoError(t, err)
			assert.Equal(t, 0, code)
			assert.Equal(t, "abcdef", out.String())
			so, se := p.Offsets()
			assert.EqualValues(t, 16, so)
			assert.EqualValues(t, 1, se)
			require.Len(t, queries, 2)
			assert.Equal(t, "stderr=1&stdout=1&stdout_offset=10", queries[0])
			assert.Equal(t, "stderr=1&stderr_offset=1&stdout=1&stdout_offset=13", queries[1])
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterErrorAndClose(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/{handle}", entryHandler)
	mux.HandleFunc("GET /containers/{handle}/processes/{id}", func(w http.ResponseWriter, r *http.Request) {
		conn, brw := upgrade(t, w, r.PathValue("id"))
		defer conn.Close()
		wire.WriteFrame(conn, wire.FrameStdout, []byte("x"))
		select { // until the client leaves
		case <-release:
		case <-r.Context().Done():
		}
		io.Copy(io.Discard, brw)
	})
	cl := newClient(t, fakeServer(t, mux), client.WithReattach(time.Minute))
	c, err := cl.Lookup(t.Context(), "h")
	require.NoError(t, err)

	p, err := c.Attach(t.Context(), "w", container.ProcessIO{Stdout: failingWriter{}})
	require.NoError(t, err)
	_, err = p.Wait(t.Context())
	assert.ErrorContains(t, err, "disk full")

	var out bytes.Buffer
	p, err = c.Attach(t.Context(), "c", container.ProcessIO{Stdout: &out})
	require.NoError(t, err)
	_, err = p.Reattach(t.Context())
	assert.Error(t, err, "reattach while attached")
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	_, err = p.Wait(t.Context())
	assert.ErrorIs(t, err, client.ErrDetached, "Close detaches even with WithReattach")

	p, err = c.Attach(t.Context(), "d", container.ProcessIO{Stdout: &out})
	require.NoError(t, err)
	require.NoError(t, cl.Close())
	_, err = p.Wait(t.Context())
	assert.ErrorIs(t, err, client.ErrDetached, "Client.Close detaches its streams")
	_, err = c.Attach(t.Context(), "e", container.ProcessIO{})
	assert.ErrorIs(t, err, client.ErrClosed)
	close(release)
}

func TestStreamOutError(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/{handle}", entryHandler)
	mux.HandleFunc("GET /containers/{handle}/files", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", wire.TrailerStreamError)
		io.WriteString(w, "partial tar")
		b, _ := json.Marshal(wire.Error{Code: wire.CodePermission, Message: "permission denied"})
		w.Header().Set(wire.TrailerStreamError, string(b))
	})
	mux.HandleFunc("PUT /containers/{handle}/files", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get(wire.QueryPath) != "/dst" || r.URL.Query().Get(wire.QueryUser) != "vcap" || string(b) != "tar bytes" {
			writeJSON(w, 400, wire.Error{Code: wire.CodeBadRequest, Message: "unexpected " + r.URL.RawQuery})
			return
		}
		writeJSON(w, 200, wire.Empty{})
	})
	cl := newClient(t, fakeServer(t, mux))
	c, err := cl.Lookup(t.Context(), "h")
	require.NoError(t, err)
	rc, err := c.StreamOut(t.Context(), "/src")
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	assert.Equal(t, "partial tar", string(b))
	assert.ErrorIs(t, err, fs.ErrPermission)
	rc.Close()
	require.NoError(t, c.StreamIn(t.Context(), "/dst", "vcap", strings.NewReader("tar bytes")))
	assert.ErrorIs(t, c.StreamIn(t.Context(), "/dst", "vcap", nil), container.ErrInvalidSpec)
}

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The end-to-end test runs this test binary as the warden program: with
// wardenMainEnv set, TestMain is main.
const wardenMainEnv = "PAASKIT_WARDEN_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(wardenMainEnv) == "1" {
		main()
		return
	}
	containertest.Main(m)
}

// childEnv is the environment of the program run by the tests. Under the
// race detector, whose runtime sleeps a second at exit by default, the
// sleep is turned off.
func childEnv() []string {
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append(os.Environ(), wardenMainEnv+"=1", "GORACE="+gorace)
}

// warden runs the program with args (and stdin) and returns its stdout,
// stderr and exit status.
func warden(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errOut.String(), code
}

// serveInBackground starts "warden serve" on depot (a new one when
// empty) and returns its socket and a function that stops it with
// SIGTERM and returns its logs. It is stopped when the test ends, and
// every container left in its depot is destroyed then.
func serveInBackground(t *testing.T, depot string, extra ...string) (socket string, stop func() string) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireOverlay(t)
	dir, err := os.MkdirTemp("", "wd-")
	require.NoError(t, err)
	socket = filepath.Join(dir, "w.sock")
	if depot == "" {
		depot = filepath.Join(dir, "depot")
	}
	args := append([]string{"serve", "--depot", depot, "--socket", socket, "--log-level", "debug", "--stop-timeout", "1s"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = childEnv()
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop = func() string {
		t.Helper()
		if stopped {
			return logs.String()
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			assert.NoError(t, err, "warden serve exits 0 on SIGTERM; logs:\n%s", logs.String())
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Errorf("warden serve did not exit on SIGTERM; logs:\n%s", logs.String())
		}
		return logs.String()
	}
	t.Cleanup(func() {
		stop()
		m, err := container.New(depot)
		if err == nil {
			cs, _ := m.List(context.Background(), nil)
			for _, c := range cs {
				c.Destroy(context.Background())
			}
			m.Close()
		}
		os.RemoveAll(dir)
	})
	require.Eventually(t, func() bool {
		out, _, code := warden(t, "", "--socket", socket, "ping")
		return code == 0 && out == "pong\n"
	}, 30*time.Second, 50*time.Millisecond, "warden serve never answered; logs:\n%s", logs.String())
	return socket, stop
}

func TestEndToEnd(t *testing.T) {
	stack := containertest.Stack(t)
	cfg := filepath.Join(t.TempDir(), "warden.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("stacks:\n  base: "+stack+"\nquota: auto\n"), 0o600))
	sock, stop := serveInBackground(t, "", "--config", cfg)
	w := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return warden(t, stdin, append([]string{"--socket", sock}, args...)...)
	}
	fi, err := os.Lstat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm())

	out, errOut, code := w("", "create", "--rootfs", stack, "--property", "app=e2e", "--memory", "64m")
	require.Equal(t, 0, code, errOut)
	handle := strings.TrimSpace(out)
	require.NotEmpty(t, handle)

	t.Run("run", func(t *testing.T) {
		out, errOut, code := w("", "run", handle, "--", "/bin/echo", "hi")
		assert.Equal(t, 0, code, errOut)
		assert.Equal(t, "hi\n", out)
		out, errOut, code = w("", "run", handle, "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
		assert.Equal(t, 3, code)
		assert.Equal(t, "out\n", out)
		assert.Equal(t, "err\n", errOut)
	})

	t.Run("stdin and tty", func(t *testing.T) {
		out, _, code := w("piped\n", "run", "-i", handle, "--", "/bin/cat")
		assert.Equal(t, 0, code)
		assert.Equal(t, "piped\n", out)
		out, _, code = w("", "run", "-t", handle, "--", "/bin/sh", "-c", "tty; stty size")
		assert.Equal(t, 0, code)
		assert.Contains(t, out, "/dev/pts/")
		assert.Contains(t, out, "24 80")
	})

	t.Run("spawn and attach", func(t *testing.T) {
		out, errOut, code := w("", "run", "-d", "--id", "job1", handle, "--", "/bin/sh", "-c", "echo hello world; exit 4")
		require.Equal(t, 0, code, errOut)
		assert.Equal(t, "job1\n", out)
		out, _, code = w("", "attach", handle, "job1")
		assert.Equal(t, 4, code)
		assert.Equal(t, "hello world\n", out)
		out, _, code = w("", "link", "--stdout-offset", "6", handle, "job1")
		assert.Equal(t, 4, code)
		assert.Equal(t, "world\n", out)
	})

	t.Run("queries", func(t *testing.T) {
		out, _, code := w("", "list")
		assert.Equal(t, 0, code)
		assert.Equal(t, handle+"\n", out)
		out, _, _ = w("", "list", "--property", "app=other")
		assert.Empty(t, out)
		out, _, code = w("", "info", handle)
		require.Equal(t, 0, code)
		var info container.Info
		require.NoError(t, json.Unmarshal([]byte(out), &info))
		assert.Equal(t, handle, info.Handle)
		assert.Equal(t, "e2e", info.Properties["app"])
		out, _, code = w("", "metrics", handle)
		require.Equal(t, 0, code)
		var m container.Metrics
		require.NoError(t, json.Unmarshal([]byte(out), &m))
		assert.EqualValues(t, 64<<20, m.Memory.Limit)
		out, _, code = w("", "limit-memory", handle, "128m")
		require.Equal(t, 0, code)
		assert.JSONEq(t, `{"limit_in_bytes":134217728}`, out)
		out, _, code = w("", "limit-cpu", handle, "512")
		require.Equal(t, 0, code)
		assert.JSONEq(t, `{"limit_in_shares":512}`, out)
		out, _, code = w("", "capacity")
		require.Equal(t, 0, code)
		assert.Contains(t, out, "memory_in_bytes")
		out, _, code = w("", "properties", handle)
		require.Equal(t, 0, code)
		assert.JSONEq(t, `{"app":"e2e"}`, out)
		for _, args := range [][]string{{"quota"}, {"bulk-info"}, {"metrics"}, {"grace-time", handle}, {"limit-disk", handle}} {
			_, errOut, code := w("", args...)
			assert.Equal(t, 0, code, "%v: %s", args, errOut)
		}
	})

	t.Run("files", func(t *testing.T) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "greeting", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
		tw.Write([]byte("hello\n"))
		tw.Close()
		_, errOut, code := w(buf.String(), "stream-in", handle, "--path", "/tmp/in")
		require.Equal(t, 0, code, errOut)
		out, _, code := w("", "run", handle, "--", "/bin/cat", "/tmp/in/greeting")
		assert.Equal(t, 0, code)
		assert.Equal(t, "hello\n", out)
		out, errOut, code = w("", "copy-out", handle, "--path", "/tmp/in/greeting")
		require.Equal(t, 0, code, errOut)
		tr := tar.NewReader(strings.NewReader(out))
		hdr, err := tr.Next()
		require.NoError(t, err)
		assert.Equal(t, "greeting", hdr.Name)
		b, _ := io.ReadAll(tr)
		assert.Equal(t, "hello\n", string(b))
	})

	t.Run("errors", func(t *testing.T) {
		_, errOut, code := w("", "net-in", handle)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "networking not configured")
		_, errOut, code = w("", "info", "no-such-container")
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "not found")
		_, _, code = w("", "no-such-command")
		assert.Equal(t, 2, code)
		_, _, code = w("", "run", handle)
		assert.Equal(t, 2, code)
		_, _, code = w("", "create", "--memory", "lots")
		assert.Equal(t, 2, code)
		_, errOut, code = warden(t, "", "--socket", filepath.Join(t.TempDir(), "none.sock"), "ping")
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "unavailable")
	})

	t.Run("stack", func(t *testing.T) {
		out, errOut, code := w("", "create", "--stack", "base", "--grace-time", "1h")
		require.Equal(t, 0, code, errOut)
		h := strings.TrimSpace(out)
		out, _, code = w("", "grace-time", h)
		assert.Equal(t, 0, code)
		assert.Equal(t, "1h0m0s\n", out)
		_, errOut, code = w("", "destroy", h)
		assert.Equal(t, 0, code, errOut)
	})

	t.Run("repl", func(t *testing.T) {
		out, errOut, code := w("ping\nhelp run\nlist\nrun "+handle+" -- /bin/sh -c 'echo \"a b\"; exit 2'\nbogus\nexit\nping\n", "repl")
		assert.Equal(t, 0, code, errOut)
		assert.Equal(t, 1, strings.Count(out, "pong\n"), "the repl stops at exit: %s", out)
		assert.Contains(t, out, "run HANDLE")
		assert.Contains(t, out, handle+"\n")
		assert.Contains(t, out, "a b\nexit status 2\n")
		assert.Contains(t, errOut, "unknown command")
	})

	t.Run("destroy", func(t *testing.T) {
		_, errOut, code := w("", "destroy", handle)
		require.Equal(t, 0, code, errOut)
		out, _, _ := w("", "list")
		assert.Empty(t, out)
		_, _, code = w("", "destroy", handle)
		assert.Equal(t, 1, code)
	})

	logs := stop()
	assert.Contains(t, logs, "stopped")
	assert.NoFileExists(t, sock)
}

// A daemon restarted while a process runs: the new daemon finds the
// container and "warden attach" gets the whole output.
func TestRestart(t *testing.T) {
	stack := containertest.Stack(t)
	dir, err := os.MkdirTemp("", "wr-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	depot := filepath.Join(dir, "depot")
	sock, stop := serveInBackground(t, depot)
	out, errOut, code := warden(t, "", "--socket", sock, "create", "--rootfs", stack)
	require.Equal(t, 0, code, errOut)
	handle := strings.TrimSpace(out)
	_, errOut, code = warden(t, "", "--socket", sock, "run", "-d", "--id", "slow", handle, "--", "/bin/sh", "-c", "echo one; sleep 1; echo two")
	require.Equal(t, 0, code, errOut)
	stop()

	sock2, _ := serveInBackground(t, depot)
	out, errOut, code = warden(t, "", "--socket", sock2, "attach", handle, "slow")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "one\ntwo\n", out)
	_, errOut, code = warden(t, "", "--socket", sock2, "destroy", handle)
	assert.Equal(t, 0, code, errOut)
}

func TestSplitLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"  ping  ", []string{"ping"}, false},
		{`run h -- /bin/sh -c 'echo "a b"'`, []string{"run", "h", "--", "/bin/sh", "-c", `echo "a b"`}, false},
		{`a "b \"c\" d" e\ f`, []string{"a", `b "c" d`, "e f"}, false},
		{`''`, []string{""}, false},
		{`'open`, nil, true},
		{`"open`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := splitLine(tc.in)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yml")
	require.NoError(t, os.WriteFile(path, []byte(`
depot: /var/lib/warden
socket: /run/warden.sock
socket_mode: "0600"
socket_group: 1000
log_level: debug
stacks: {base: /stacks/base}
default_stack: base
quota: scanner
stop_timeout: 5s
output_limit: 1024
network:
  subnet: 10.200.0.0/24
  host_ports: [62000, 62099]
  dns: [192.0.2.53]
  deny_networks: [169.254.0.0/16]
`), 0o600))
	c, err := loadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/warden", c.Depot)
	assert.Equal(t, 1000, *c.SocketGroup)
	mode, err := c.socketMode()
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.EqualValues(t, 253, c.maxContainers())
	opts, err := c.managerOptions(nil)
	require.NoError(t, err)
	assert.Len(t, opts, 5)
	nc, err := c.Network.toContainer()
	require.NoError(t, err)
	assert.Equal(t, [2]uint16{62000, 62099}, nc.HostPorts)

	require.NoError(t, os.WriteFile(path, []byte("depot: x\nbogus: 1\n"), 0o600))
	_, err = loadConfig(path)
	assert.ErrorContains(t, err, "bogus", "unknown keys are errors")
	bad := config{SocketMode: "0666"}
	_, err = bad.socketMode()
	assert.Error(t, err)
	bad = config{Quota: "zfs"}
	_, err = bad.managerOptions(nil)
	assert.Error(t, err)
	_, err = logLevel("loud")
	assert.Error(t, err)
	_, err = parseHostPorts("1-x")
	assert.Error(t, err)
	sig, err := parseSignal("term")
	require.NoError(t, err)
	assert.Equal(t, syscall.SIGTERM, sig)
	sig, err = parseSignal("9")
	require.NoError(t, err)
	assert.Equal(t, syscall.SIGKILL, sig)
	_, err = parseSignal("SIGNOPE")
	assert.Error(t, err)
}

// startOnPTY starts the program on a new terminal of rows×cols and
// returns the terminal's master end and a function waiting for the exit
// status.
func startOnPTY(t *testing.T, rows, cols uint16, args ...string) (*os.File, func() int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(childEnv(), "HOME="+t.TempDir())
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	require.NoError(t, err)
	t.Cleanup(func() {
		ptmx.Close()
		cmd.Process.Kill()
	})
	return ptmx, func() int {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	}
}

// expect reads the terminal until its output contains want.
func expect(t *testing.T, ptmx *os.File, out *syncBuffer, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), want) }, 20*time.Second, 10*time.Millisecond,
		"waiting for %q in %q", want, out.String())
}

// "run -t" on a real terminal: raw mode, the terminal's size, window size
// changes, and the exit status.
func TestInteractiveTerminal(t *testing.T) {
	stack := containertest.Stack(t)
	sock, _ := serveInBackground(t, "")
	out, errOut, code := warden(t, "", "--socket", sock, "create", "--rootfs", stack)
	require.Equal(t, 0, code, errOut)
	handle := strings.TrimSpace(out)

	ptmx, wait := startOnPTY(t, 30, 100, "--socket", sock, "run", "-t", handle, "--", "/bin/sh")
	var screen syncBuffer
	go io.Copy(&screen, ptmx)
	_, err := io.WriteString(ptmx, "stty size\n")
	require.NoError(t, err)
	expect(t, ptmx, &screen, "30 100")
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}))
	require.Eventually(t, func() bool {
		io.WriteString(ptmx, "stty size\n")
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(screen.String(), "40 120")
	}, 20*time.Second, 10*time.Millisecond, "the new window size never arrived: %q", screen.String())
	_, err = io.WriteString(ptmx, "exit 7\n")
	require.NoError(t, err)
	assert.Equal(t, 7, wait())
}

// The repl on a terminal: prompt, line editing history, ping → pong.
func TestReplOnTerminal(t *testing.T) {
	sock, _ := serveInBackground(t, "")
	ptmx, wait := startOnPTY(t, 24, 80, "--socket", sock, "repl")
	var screen syncBuffer
	go io.Copy(&screen, ptmx)
	expect(t, ptmx, &screen, "warden> ")
	io.WriteString(ptmx, "ping\r")
	expect(t, ptmx, &screen, "pong")
	io.WriteString(ptmx, "\x1b[A\r") // up arrow: ping again
	require.Eventually(t, func() bool { return strings.Count(screen.String(), "pong") == 2 }, 20*time.Second, 10*time.Millisecond, "%q", screen.String())
	io.WriteString(ptmx, "exit\r")
	assert.Equal(t, 0, wait())
}

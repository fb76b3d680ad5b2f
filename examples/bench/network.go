package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/paaskit/paaskit/container"
)

// The network part of the container suite:
//
//	container.lifecycle_net.p50/p90  Create and Destroy with networking
//	container.create_destroy.p50     the same without networking
//	container.lifecycle_net.vs_plain the added cost, as a ratio
//	container.net_in_throughput      MB/s host → container through a NetIn port
//	container.loopback_throughput    MB/s of the same transfer over the host's loopback
//	container.net_in_throughput.vs_loopback
//
// Both transfers use the same sink, this program re-executed with -sink,
// in the container (its binary bind-mounted read-only) and on the host.

// sinkFlag, when set, makes the program a TCP sink: it listens on the
// address, accepts one connection, reads it to EOF and exits.
const sinkFlag = "-sink"

// runSink is the -sink mode of the program.
func runSink(addr string) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		return 1
	}
	fmt.Println("listening") // the bench waits for this line
	conn, err := l.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		return 1
	}
	io.Copy(io.Discard, conn)
	conn.Close()
	return 0
}

// transferBytes is what each throughput figure sends.
const transferBytes = 512 << 20

func (s *containerSuite) network(ctx context.Context) (retErr error) {
	depot := filepath.Join(s.tmp, "depot-net")
	cfg := container.NetworkConfig{
		Bridge:    fmt.Sprintf("pkbench%d", s.pid%100000),
		Subnet:    netip.MustParsePrefix(fmt.Sprintf("10.253.%d.0/24", s.pid%250)),
		HostPorts: [2]uint16{52000, 52099},
	}
	m, err := container.New(depot, container.WithCgroupParent(s.cgParent), container.WithNetwork(cfg))
	if err != nil {
		return fmt.Errorf("container.lifecycle_net: %w", err)
	}
	defer func() { retErr = errors.Join(retErr, m.Close()) }()

	s.r.commentf("create+destroy without and with networking, %d iterations each", s.cfg.n)
	createDestroy := func(m *container.Manager, kind string) func(int) (time.Duration, error) {
		return func(i int) (time.Duration, error) {
			start := time.Now()
			c, err := m.Create(ctx, container.Spec{Handle: s.handle(kind, i), RootFS: s.stack})
			if err != nil {
				return 0, err
			}
			if err := c.Destroy(ctx); err != nil {
				return 0, err
			}
			return time.Since(start), nil
		}
	}
	if err := s.timeN(ctx, "container.create_destroy", createDestroy(s.m, "cd")); err != nil {
		return err
	}
	if err := s.timeN(ctx, "container.lifecycle_net", createDestroy(m, "net")); err != nil {
		return err
	}
	s.r.addMaybe("container.lifecycle_net.vs_plain", ratio(s.r.value("container.lifecycle_net.p50"), s.r.value("container.create_destroy.p50")), "ratio")
	return s.throughput(ctx, m)
}

// throughput sends transferBytes to a sink in a container through a NetIn
// port, then to a sink on the host's loopback, and records both rates.
func (s *containerSuite) throughput(ctx context.Context, m *container.Manager) (retErr error) {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c, err := m.Create(ctx, container.Spec{
		Handle:     s.handle("tput", 0),
		RootFS:     s.stack,
		BindMounts: []container.BindMount{{SrcPath: self, DstPath: "/bench", ReadOnly: true}},
	})
	if err != nil {
		return fmt.Errorf("container.net_in_throughput: %w", err)
	}
	defer func() { retErr = errors.Join(retErr, destroy(ctx, c)) }()
	ready := make(chan struct{})
	_, err = c.Run(ctx, container.ProcessSpec{Path: "/bench", Args: []string{sinkFlag, "0.0.0.0:9000"}},
		container.ProcessIO{Stdout: lineSignal(ready)})
	if err != nil {
		return fmt.Errorf("container.net_in_throughput: sink: %w", err)
	}
	pm, err := c.NetIn(ctx, 0, 9000)
	if err != nil {
		return fmt.Errorf("container.net_in_throughput: %w", err)
	}
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		return errors.New("container.net_in_throughput: the sink in the container never listened")
	}
	rate, err := send(ctx, "127.0.0.1:"+strconv.Itoa(int(pm.HostPort)))
	if err != nil {
		return fmt.Errorf("container.net_in_throughput: %w", err)
	}
	s.r.add("container.net_in_throughput", rate, "MB/s")

	// The same sink on the host's loopback.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	hostReady := make(chan struct{})
	cmd := execSink(ctx, self, addr, lineSignal(hostReady))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("container.loopback_throughput: %w", err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	select {
	case <-hostReady:
	case <-time.After(30 * time.Second):
		return errors.New("container.loopback_throughput: the sink never listened")
	}
	rate, err = send(ctx, addr)
	if err != nil {
		return fmt.Errorf("container.loopback_throughput: %w", err)
	}
	s.r.add("container.loopback_throughput", rate, "MB/s")
	s.r.addMaybe("container.net_in_throughput.vs_loopback", ratio(s.r.value("container.net_in_throughput"), s.r.value("container.loopback_throughput")), "ratio")
	return nil
}

// send writes transferBytes to addr and returns the rate in MB/s.
func send(ctx context.Context, addr string) (float64, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	buf := make([]byte, 1<<20)
	start := time.Now()
	for sent := 0; sent < transferBytes; sent += len(buf) {
		if _, err := conn.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	// Wait for the sink to close: all bytes were read.
	io.Copy(io.Discard, conn)
	return float64(transferBytes) / 1e6 / time.Since(start).Seconds(), nil
}

// lineSignal returns a writer that closes ch at the first write.
func lineSignal(ch chan struct{}) io.Writer {
	closed := false
	return writerFunc(func(p []byte) (int, error) {
		if !closed {
			closed = true
			close(ch)
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// execSink starts this program as a sink on addr, on the host.
func execSink(ctx context.Context, self, addr string, stdout io.Writer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, self, sinkFlag, addr)
	cmd.Stdout = stdout
	cmd.Stderr = os.Stderr
	return cmd
}

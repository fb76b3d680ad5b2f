package container_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var subnetSeq atomic.Uint32

// testNetwork is a network configuration of its own for one test: a
// subnet and a port pool no other test (nor another test process) uses.
func testNetwork(t *testing.T) container.NetworkConfig {
	n := subnetSeq.Add(1)
	third := (uint32(os.Getpid())*7 + n*13) % 250
	base := 40000 + (uint32(os.Getpid())%100)*200 + n*10
	return container.NetworkConfig{
		Bridge:    fmt.Sprintf("pkt%d-%d", os.Getpid()%100000, n),
		Subnet:    netip.MustParsePrefix(fmt.Sprintf("10.254.%d.0/24", third)),
		HostPorts: [2]uint16{uint16(base), uint16(base + 9)},
		DNS:       []netip.Addr{netip.MustParseAddr("192.0.2.53")},
	}
}

// newNetManager is newManager with networking; it checks, when the test
// ends, that closing the Manager removed the bridge.
func newNetManager(t *testing.T, cfg container.NetworkConfig, opts ...container.Option) *container.Manager {
	t.Helper()
	m := newManager(t, append(opts, container.WithNetwork(cfg))...)
	return m
}

// httpServer starts python's http.server on port in c and waits until it
// answers from inside the container.
func httpServer(t *testing.T, c *container.Container, port int) {
	t.Helper()
	_, err := c.Run(t.Context(), container.ProcessSpec{Path: "/usr/bin/python3", Args: []string{"-m", "http.server", "-d", "/etc", fmt.Sprint(port)}}, container.ProcessIO{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r := run(t, c, container.ProcessSpec{Path: "/usr/bin/python3", Args: []string{"-c", fmt.Sprintf("import urllib.request; urllib.request.urlopen('http://127.0.0.1:%d/hostname', timeout=1)", port)}})
		return r.code == 0
	}, 20*time.Second, 50*time.Millisecond, "the server in the container never answered")
}

// canConnect reports whether c can open a TCP connection to addr:port.
func canConnect(t *testing.T, c *container.Container, addr string, port uint16) bool {
	t.Helper()
	r := run(t, c, container.ProcessSpec{Path: "/usr/bin/python3", Args: []string{"-c", fmt.Sprintf("import socket; socket.create_connection(('%s', %d), timeout=1).close()", addr, port)}})
	return r.code == 0
}

// otherHost makes a network namespace standing for another machine,
// linked to the host by a veth pair with addresses in 198.18.0.0/15 (the
// benchmarking range). It returns the namespace and the host's address
// on the link; everything is removed when the test ends.
func otherHost(t *testing.T) (netns.NsHandle, netip.Addr, netip.Addr) {
	t.Helper()
	name := testutil.UniqueName(t, "pkh-", 15, func(n string) error {
		return exec.Command("ip", "netns", "del", n).Run()
	})
	n := subnetSeq.Add(1)
	third := (uint32(os.Getpid())*3 + n) % 250
	hostIP := netip.MustParseAddr(fmt.Sprintf("198.18.%d.1", third))
	otherIP := netip.MustParseAddr(fmt.Sprintf("198.18.%d.2", third))
	veth := "pko" + name[len(name)-8:]
	for _, args := range [][]string{
		{"netns", "add", name},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"addr", "add", hostIP.String() + "/30", "dev", veth},
		{"link", "set", veth, "up"},
		{"-n", name, "addr", "add", otherIP.String() + "/30", "dev", "eth0"},
		{"-n", name, "link", "set", "eth0", "up"},
		{"-n", name, "link", "set", "lo", "up"},
	} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	h, err := netns.GetFromName(name)
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	return h, hostIP, otherIP
}

// inNetns runs f on a thread inside ns.
func inNetns(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // the thread is not unlocked: it dies with the goroutine
		require.NoError(t, netns.Set(ns))
		f()
	}()
	<-done
}

func httpGet(addr string) (string, error) {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/hostname")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestNetInFromHostAndFromAnotherHost(t *testing.T) {
	cfg := testNetwork(t)
	m := newNetManager(t, cfg)
	c := newContainer(t, m, container.Spec{Hostname: "web"})
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	require.True(t, cfg.Subnet.Contains(info.ContainerIP), info.ContainerIP)
	assert.Equal(t, cfg.Subnet.Addr().Next(), info.HostIP)

	r := run(t, c, sh("cat /etc/resolv.conf /etc/hosts; ip -V >/dev/null 2>&1; ls /sys/class/net | sort | tr '\\n' ' '"))
	assert.Contains(t, r.stdout, "nameserver 192.0.2.53\n")
	assert.Contains(t, r.stdout, info.ContainerIP.String()+" web\n")
	assert.Contains(t, r.stdout, "eth0 lo ")

	httpServer(t, c, 8080)
	pm, err := c.NetIn(t.Context(), 0, 8080)
	require.NoError(t, err)
	assert.Equal(t, cfg.HostPorts[0], pm.HostPort, "the first port of the pool")
	info, err = c.Info(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []container.PortMapping{pm}, info.MappedPorts)

	body, err := httpGet(fmt.Sprintf("127.0.0.1:%d", pm.HostPort))
	require.NoError(t, err, "from the host's loopback")
	assert.Equal(t, "web\n", body)
	body, err = httpGet(fmt.Sprintf("%s:%d", info.HostIP, pm.HostPort))
	require.NoError(t, err, "from a host address")
	assert.Equal(t, "web\n", body)

	ns, hostIP, _ := otherHost(t)
	inNetns(t, ns, func() {
		body, err := httpGet(fmt.Sprintf("%s:%d", hostIP, pm.HostPort))
		assert.NoError(t, err, "from another host")
		assert.Equal(t, "web\n", body)
	})

	_, err = c.NetIn(t.Context(), pm.HostPort, 9)
	assert.ErrorIs(t, err, container.ErrAlreadyExists)
	pm2, err := c.NetIn(t.Context(), cfg.HostPorts[1], 0)
	require.NoError(t, err)
	assert.Equal(t, container.PortMapping{HostPort: cfg.HostPorts[1], ContainerPort: cfg.HostPorts[1]}, pm2)
}

func TestContainersAreIsolatedUntilAllowed(t *testing.T) {
	m := newNetManager(t, testNetwork(t))
	a := newContainer(t, m, container.Spec{})
	b := newContainer(t, m, container.Spec{Hostname: "b"})
	httpServer(t, b, 8080)
	bInfo, err := b.Info(t.Context())
	require.NoError(t, err)
	bIP := bInfo.ContainerIP.String()

	assert.False(t, canConnect(t, a, bIP, 8080), "a reached b without a rule")
	require.NoError(t, a.NetOut(t.Context(), container.NetOutRule{Network: bIP, Protocol: container.ProtocolTCP, Ports: container.PortRange{First: 8080}}))
	assert.True(t, canConnect(t, a, bIP, 8080), "a could not reach b once allowed")
	// The rule allows a → b only.
	aInfo, err := a.Info(t.Context())
	require.NoError(t, err)
	httpServer(t, a, 8081)
	assert.False(t, canConnect(t, b, aInfo.ContainerIP.String(), 8081))

	err = a.NetOut(t.Context(), container.NetOutRule{Network: "10.0.0.0/33"})
	var se *container.SpecError
	assert.ErrorAs(t, err, &se)
}

func TestNetOutEgressRules(t *testing.T) {
	cfg := testNetwork(t)
	cfg.DenyEgress = true
	m := newNetManager(t, cfg)
	c := newContainer(t, m, container.Spec{})
	ns, _, otherIP := otherHost(t)
	// Two servers on the other host.
	var listeners []net.Listener
	inNetns(t, ns, func() {
		for _, port := range []int{7001, 7002} {
			l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", otherIP, port))
			require.NoError(t, err)
			listeners = append(listeners, l)
		}
	})
	for _, l := range listeners {
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
	}
	other := otherIP.String()
	assert.False(t, canConnect(t, c, other, 7001), "default deny let it through")
	require.NoError(t, c.NetOut(t.Context(), container.NetOutRule{Network: other + "-" + other, Protocol: container.ProtocolTCP, Ports: container.PortRange{First: 7001, Last: 7001}, Log: true}))
	assert.True(t, canConnect(t, c, other, 7001), "allowed port")
	assert.False(t, canConnect(t, c, other, 7002), "port not allowed")
}

func TestBandwidthLimitCapsATransfer(t *testing.T) {
	cfg := testNetwork(t)
	m := newNetManager(t, cfg)
	c := newContainer(t, m, container.Spec{})
	// A 2 MB file served from the container.
	r := run(t, c, sh("head -c 2000000 /dev/zero > /tmp/blob"))
	require.Equal(t, 0, r.code)
	_, err := c.Run(t.Context(), container.ProcessSpec{Path: "/usr/bin/python3", Args: []string{"-m", "http.server", "-d", "/tmp", "8080"}}, container.ProcessIO{})
	require.NoError(t, err)
	pm, err := c.NetIn(t.Context(), 0, 8080)
	require.NoError(t, err)
	fetch := func() (int64, time.Duration) {
		var n int64
		var took time.Duration
		require.Eventually(t, func() bool {
			start := time.Now()
			client := &http.Client{Timeout: 30 * time.Second}
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/blob", pm.HostPort))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			n, err = io.Copy(io.Discard, resp.Body)
			took = time.Since(start)
			return err == nil
		}, 20*time.Second, 50*time.Millisecond)
		return n, took
	}
	n, _ := fetch()
	require.Equal(t, int64(2000000), n)
	require.NoError(t, c.LimitBandwidth(t.Context(), container.Bandwidth{Rate: 500_000, Burst: 16_000}))
	n, took := fetch()
	require.Equal(t, int64(2000000), n)
	// 2 MB at 500 kB/s takes about 4 s; a transfer that is not shaped
	// takes milliseconds here.
	assert.Greater(t, took, 2*time.Second, "the limit did not cap the transfer")
}

func TestNetworkSurvivesRestartAndLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	cfg := testNetwork(t)
	depot := t.TempDir()
	tablesBefore := nftTables(t)
	m1, err := container.New(depot, container.WithNetwork(cfg))
	require.NoError(t, err)
	a := newContainer(t, m1, container.Spec{})
	aInfo, err := a.Info(t.Context())
	require.NoError(t, err)
	pmA, err := a.NetIn(t.Context(), 0, 80)
	require.NoError(t, err)
	require.NoError(t, m1.Close())

	// A new Manager never hands out a's address or port again while a
	// lives, nor right after.
	m2, err := container.New(depot, container.WithNetwork(cfg))
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	b := newContainer(t, m2, container.Spec{})
	bInfo, err := b.Info(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, aInfo.ContainerIP, bInfo.ContainerIP)
	pmB, err := b.NetIn(t.Context(), 0, 80)
	require.NoError(t, err)
	assert.NotEqual(t, pmA.HostPort, pmB.HostPort)
	a2, err := m2.Lookup(a.Handle())
	require.NoError(t, err)
	info, err := a2.Info(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []container.PortMapping{pmA}, info.MappedPorts)

	// a's agent dies while no Manager watches: the next Manager frees its
	// veth and allocations.
	vethA := aInfo.HostInterface
	_, err = netlink.LinkByName(vethA)
	require.NoError(t, err)
	require.NoError(t, m2.Close())
	require.NoError(t, syscallKill(aInfo.AgentPID))
	m3, err := container.New(depot, container.WithNetwork(cfg))
	require.NoError(t, err)
	_, err = netlink.LinkByName(vethA)
	assert.Error(t, err, "the dead container's veth is still there")
	assert.NotContains(t, nftChains(t), "c-"+a.Handle(), "the dead container's rules are still there")
	assert.Contains(t, nftChains(t), "c-"+b.Handle())

	// Destroying the last container and closing leaves no bridge, table
	// or allocation file.
	b3, err := m3.Lookup(b.Handle())
	require.NoError(t, err)
	require.NoError(t, b3.Destroy(t.Context()))
	_, err = netlink.LinkByName(bInfo.HostInterface)
	assert.Error(t, err, "the destroyed container's veth is still there")
	require.NoError(t, m3.Close())
	_, err = netlink.LinkByName(cfg.Bridge)
	assert.Error(t, err, "the bridge is still there")
	assert.NoFileExists(t, depot+"/network.json")
	assert.Equal(t, tablesBefore, nftTables(t), "the Manager's table is still there")
}

func nftTables(t *testing.T) []string {
	t.Helper()
	conn, err := nftables.New()
	require.NoError(t, err)
	defer conn.CloseLasting()
	tables, err := conn.ListTables()
	require.NoError(t, err)
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Name)
	}
	return names
}

// nftChains lists the chains of the nftables tables named paaskit-*.
func nftChains(t *testing.T) []string {
	t.Helper()
	conn, err := nftables.New()
	require.NoError(t, err)
	defer conn.CloseLasting()
	chains, err := conn.ListChains()
	require.NoError(t, err)
	var names []string
	for _, c := range chains {
		if strings.HasPrefix(c.Table.Name, "paaskit-") {
			names = append(names, c.Name)
		}
	}
	return names
}

func syscallKill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// TestManyNetworkedContainers: the firewall is rebuilt whole on every
// change; with the kernel's default netlink buffers that ran out of space
// (ENOBUFS) past about twenty containers.
func TestManyNetworkedContainers(t *testing.T) {
	cfg := testNetwork(t)
	m := newNetManager(t, cfg)
	var last *container.Container
	for range 40 {
		last = newContainer(t, m, container.Spec{})
	}
	_, err := last.NetIn(t.Context(), 0, 8080)
	require.NoError(t, err)
	assert.Len(t, nftChainsOf(t, m), 40+6, "a chain per container and the six of the table")
}

// nftChainsOf lists the chains of the firewall table of one Manager (the
// table named after its depot).
func nftChainsOf(t *testing.T, m *container.Manager) []string {
	t.Helper()
	conn, err := nftables.New()
	require.NoError(t, err)
	defer conn.CloseLasting()
	chains, err := conn.ListChains()
	require.NoError(t, err)
	var names []string
	sum := sha256.Sum256([]byte(m.Depot()))
	want := "paaskit-" + hex.EncodeToString(sum[:4])
	for _, c := range chains {
		if c.Table.Name == want {
			names = append(names, c.Name)
		}
	}
	return names
}

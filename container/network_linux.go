package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netMgr is the networking of a Manager: its bridge, its address and port
// pools and its firewall table.
type netMgr struct {
	cfg   NetworkConfig
	table string
	mu    sync.Mutex // guards ipam and serialises firewall rebuilds
	ipam  *ipam
}

func newNetMgr(depot, depotHash string, cfg NetworkConfig) (*netMgr, error) {
	cfg = cfg.withDefaults(depotHash)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a, err := loadIPAM(ipamPath(depot), cfg.Subnet, cfg.HostPorts)
	if err != nil {
		return nil, err
	}
	n := &netMgr{cfg: cfg, table: "paaskit-" + depotHash, ipam: a}
	if err := n.setupHost(); err != nil {
		return nil, err
	}
	return n, nil
}

func sysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("container: network: sysctl %s=%s: %w", path, value, err)
	}
	return nil
}

// setupHost makes sure the bridge exists, has the gateway address and is
// up, and that the host forwards packets.
func (n *netMgr) setupHost() error {
	if err := sysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	br, err := netlink.LinkByName(n.cfg.Bridge)
	if _, missing := err.(netlink.LinkNotFoundError); missing {
		err = netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.cfg.Bridge, MTU: n.cfg.MTU}})
		if err == nil || errors.Is(err, unix.EEXIST) {
			br, err = netlink.LinkByName(n.cfg.Bridge)
		}
	}
	if err != nil {
		return fmt.Errorf("container: network: bridge %s: %w", n.cfg.Bridge, err)
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: n.ipam.gateway().AsSlice(), Mask: net.CIDRMask(n.cfg.Subnet.Bits(), 32)}}
	if err := netlink.AddrReplace(br, gw); err != nil {
		return fmt.Errorf("container: network: address of %s: %w", n.cfg.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("container: network: %s up: %w", n.cfg.Bridge, err)
	}
	// NetIn from the host's loopback addresses is routed out the bridge;
	// containers are routed through the gateway even to each other, so
	// the host must not tell them to take a shortcut.
	for _, s := range [][2]string{{"route_localnet", "1"}, {"send_redirects", "0"}} {
		if err := sysctl("/proc/sys/net/ipv4/conf/"+n.cfg.Bridge+"/"+s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

// vethName is the host end of a container's veth pair (at most 15 bytes).
func vethName(depot, handle string) string {
	sum := sha256.Sum256([]byte(depot + "\x00" + handle))
	return "pkv" + hex.EncodeToString(sum[:5])
}

// attach creates the container's veth pair, moves one end into the
// agent's network namespace as eth0 with the container's address and a
// default route through the bridge, and puts the host end on the bridge,
// isolated from the other containers' ports.
func (n *netMgr) attach(ns *netState, agentPID int) (retErr error) {
	br, err := netlink.LinkByName(n.cfg.Bridge)
	if err != nil {
		return err
	}
	peer := "pkp" + ns.Veth[3:]
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ns.Veth, MTU: n.cfg.MTU, MasterIndex: br.Attrs().Index}, PeerName: peer}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: %w", ns.Veth, err)
	}
	defer func() {
		if retErr != nil {
			netlink.LinkDel(veth)
		}
	}()
	host, err := netlink.LinkByName(ns.Veth)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetIsolated(host, true); err != nil {
		return fmt.Errorf("veth %s: isolate: %w", ns.Veth, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return err
	}
	p, err := netlink.LinkByName(peer)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetNsPid(p, agentPID); err != nil {
		return fmt.Errorf("move %s into the container: %w", peer, err)
	}
	h, err := handleIn(agentPID)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(peer)
	if err != nil {
		return err
	}
	if err := h.LinkSetName(link, "eth0"); err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ns.IP.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := h.AddrAdd(link, addr); err != nil {
		return err
	}
	if err := h.LinkSetUp(link); err != nil {
		return err
	}
	gw := n.ipam.gateway().AsSlice()
	if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("route to gateway: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	return nil
}

// handleIn returns a netlink handle in the network namespace of the
// agent with that pid.
func handleIn(agentPID int) (*netlink.Handle, error) {
	nsh, err := netns.GetFromPid(agentPID)
	if err != nil {
		return nil, err
	}
	defer nsh.Close()
	return netlink.NewHandleAt(nsh)
}

// detach deletes the host end of a container's veth (the other end goes
// with it); a missing one is fine.
func (n *netMgr) detach(veth string) error {
	l, err := netlink.LinkByName(veth)
	if err != nil {
		if _, missing := err.(netlink.LinkNotFoundError); missing {
			return nil
		}
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", veth, err)
	}
	return nil
}

// removeStale deletes veths on the bridge that belong to no live
// container (left by a crash).
func (n *netMgr) removeStale(live map[string]bool) error {
	br, err := netlink.LinkByName(n.cfg.Bridge)
	if err != nil {
		return err
	}
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		if a.MasterIndex == br.Attrs().Index && strings.HasPrefix(a.Name, "pkv") && !live[a.Name] {
			errs = append(errs, n.detach(a.Name))
		}
	}
	return errors.Join(errs...)
}

// removeHost deletes the bridge and the firewall table.
func (n *netMgr) removeHost() error {
	var errs []error
	if l, err := netlink.LinkByName(n.cfg.Bridge); err == nil {
		errs = append(errs, netlink.LinkDel(l))
	}
	errs = append(errs, n.deleteFirewall())
	return errors.Join(errs...)
}

// shape applies a token bucket to both ends of a container's veth: the
// host end shapes what the container receives, eth0 what it sends.
func (n *netMgr) shape(ns *netState, agentPID int, bw Bandwidth) error {
	tbf := func(index int) *netlink.Tbf {
		burst := max(bw.Burst, uint64(n.cfg.MTU)+64)
		return &netlink.Tbf{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			Rate:       bw.Rate,
			Buffer:     netlink.Xmittime(bw.Rate, uint32(burst)), // in scheduler ticks
			Limit:      uint32(burst + bw.Rate/10),               // about 100 ms of queue
		}
	}
	host, err := netlink.LinkByName(ns.Veth)
	if err != nil {
		return err
	}
	if err := netlink.QdiscReplace(tbf(host.Attrs().Index)); err != nil {
		return fmt.Errorf("shape %s: %w", ns.Veth, err)
	}
	h, err := handleIn(agentPID)
	if err != nil {
		return err
	}
	defer h.Close()
	eth, err := h.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := h.QdiscReplace(tbf(eth.Attrs().Index)); err != nil {
		return fmt.Errorf("shape eth0: %w", err)
	}
	return nil
}

// resolvConf is the content of a container's /etc/resolv.conf.
func (n *netMgr) resolvConf() string {
	var b strings.Builder
	for _, s := range n.cfg.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	return b.String()
}

// openNetwork sets up the host side of networking when the Manager has a
// network configuration.
func (m *Manager) openNetwork() error {
	if m.opts.network == nil {
		return nil
	}
	n, err := newNetMgr(m.depot, m.depotHash(), *m.opts.network)
	if err != nil {
		return err
	}
	m.net = n
	return nil
}

// netPrepare gives a container being created its address and veth name.
func (c *Container) netPrepare() error {
	n := c.m.net
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ip, err := n.ipam.allocAddr(c.handle)
	if err != nil {
		return err
	}
	c.state.Net = &netState{IP: ip, Veth: vethName(c.m.depot, c.handle)}
	return nil
}

// netAttach plugs a started container in and opens the firewall for it.
func (c *Container) netAttach() error {
	n := c.m.net
	if n == nil {
		return nil
	}
	if err := n.attach(c.state.Net, c.state.AgentPID); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return c.m.rebuildFirewall(c)
}

// netRelease unplugs a container and frees its address and ports.
func (c *Container) netRelease() error {
	if c.state.Net == nil {
		return nil
	}
	n := c.m.net
	if n == nil { // a Manager opened without networking: just the veth
		return (&netMgr{}).detach(c.state.Net.Veth)
	}
	errs := []error{n.detach(c.state.Net.Veth)}
	n.mu.Lock()
	errs = append(errs, n.ipam.release(c.handle))
	n.mu.Unlock()
	errs = append(errs, c.m.rebuildFirewall(nil))
	return errors.Join(errs...)
}

// netReconcile, after re-discovery, frees what dead containers held and
// rebuilds the firewall for the live ones.
func (m *Manager) netReconcile() error {
	n := m.net
	if n == nil {
		return nil
	}
	live, veths := map[string]bool{}, map[string]bool{}
	m.mu.Lock()
	for h, c := range m.containers {
		live[h] = true
		if c.state.Net != nil {
			veths[c.state.Net.Veth] = true
		}
	}
	m.mu.Unlock()
	n.mu.Lock()
	err := n.ipam.keepOnly(live)
	n.mu.Unlock()
	return errors.Join(err, n.removeStale(veths), m.rebuildFirewall(nil))
}

// closeNetwork removes the bridge, the firewall table and the allocation
// file when no container is left; otherwise they stay for the containers.
func (m *Manager) closeNetwork() error {
	n := m.net
	if n == nil {
		return nil
	}
	m.mu.Lock()
	left := len(m.containers)
	m.mu.Unlock()
	if left > 0 {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ipam.empty() {
		return nil
	}
	err := n.removeHost()
	if rerr := os.Remove(n.ipam.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// rebuildFirewall rewrites the Manager's nftables table for its
// containers, plus extra (a container being created).
func (m *Manager) rebuildFirewall(extra *Container) error {
	n := m.net
	if n == nil {
		return nil
	}
	m.mu.Lock()
	cs := make([]*Container, 0, len(m.containers)+1)
	for _, c := range m.containers {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	if extra != nil {
		cs = append(cs, extra)
	}
	var fw []fwContainer
	for _, c := range cs {
		c.mu.Lock()
		if ns := c.state.Net; ns != nil && !c.destroyed {
			fw = append(fw, fwContainer{handle: c.handle, ip: ns.IP, mappings: slices.Clone(ns.Mappings), rules: slices.Clone(ns.Rules)})
		}
		c.mu.Unlock()
	}
	slices.SortFunc(fw, func(a, b fwContainer) int { return strings.Compare(a.handle, b.handle) })
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.applyFirewall(fw)
}

// NetIn forwards hostPort on the host (every local address, loopback
// included) to containerPort in the container, for TCP. A hostPort of 0
// takes the next free port of the pool; a containerPort of 0 means the
// same as the host port. A host port already mapped returns an error
// wrapping ErrAlreadyExists; without networking, ErrNoNetwork.
func (c *Container) NetIn(ctx context.Context, hostPort, containerPort uint16) (PortMapping, error) {
	if err := c.check(); err != nil {
		return PortMapping{}, err
	}
	n := c.m.net
	if n == nil || c.state.Net == nil {
		return PortMapping{}, fmt.Errorf("container %q: %w", c.handle, ErrNoNetwork)
	}
	n.mu.Lock()
	var err error
	if hostPort == 0 {
		hostPort, err = n.ipam.allocPort(c.handle)
	} else {
		err = n.ipam.claimPort(c.handle, hostPort)
	}
	n.mu.Unlock()
	if err != nil {
		return PortMapping{}, fmt.Errorf("container %q: net in: %w", c.handle, err)
	}
	if containerPort == 0 {
		containerPort = hostPort
	}
	pm := PortMapping{HostPort: hostPort, ContainerPort: containerPort}
	c.mu.Lock()
	c.state.Net.Mappings = append(c.state.Net.Mappings, pm)
	err = c.saveState()
	c.mu.Unlock()
	if err == nil {
		err = c.m.rebuildFirewall(nil)
	}
	if err != nil {
		c.mu.Lock()
		c.state.Net.Mappings = slices.DeleteFunc(c.state.Net.Mappings, func(x PortMapping) bool { return x == pm })
		c.saveState()
		c.mu.Unlock()
		n.mu.Lock()
		delete(n.ipam.Ports, hostPort)
		n.ipam.save()
		n.mu.Unlock()
		return PortMapping{}, fmt.Errorf("container %q: net in: %w", c.handle, err)
	}
	return pm, nil
}

// NetOut allows the container to reach what rule describes. An invalid
// rule returns a *SpecError; without networking, ErrNoNetwork.
func (c *Container) NetOut(ctx context.Context, rule NetOutRule) error {
	if err := rule.Validate(); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if c.m.net == nil || c.state.Net == nil {
		return fmt.Errorf("container %q: %w", c.handle, ErrNoNetwork)
	}
	c.mu.Lock()
	c.state.Net.Rules = append(c.state.Net.Rules, rule)
	err := c.saveState()
	c.mu.Unlock()
	if err == nil {
		err = c.m.rebuildFirewall(nil)
	}
	if err != nil {
		c.mu.Lock()
		c.state.Net.Rules = c.state.Net.Rules[:len(c.state.Net.Rules)-1]
		c.saveState()
		c.mu.Unlock()
		return fmt.Errorf("container %q: net out: %w", c.handle, err)
	}
	return nil
}

// LimitBandwidth shapes the container's traffic in each direction to
// bw.Rate bytes per second with bursts of bw.Burst bytes. Without
// networking it returns ErrNoNetwork.
func (c *Container) LimitBandwidth(ctx context.Context, bw Bandwidth) error {
	if err := c.check(); err != nil {
		return err
	}
	if c.m.net == nil || c.state.Net == nil {
		return fmt.Errorf("container %q: %w", c.handle, ErrNoNetwork)
	}
	if bw.Rate == 0 {
		return specErr("Bandwidth.Rate", "must be positive")
	}
	if err := c.m.net.shape(c.state.Net, c.state.AgentPID, bw); err != nil {
		return fmt.Errorf("container %q: limit bandwidth: %w", c.handle, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.Net.Bandwidth = &bw
	return c.saveState()
}

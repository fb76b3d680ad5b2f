package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// NetworkConfig turns on container networking for a Manager (see
// WithNetwork): a bridge on the host, one veth pair and one address per
// container, NAT for egress, port mapping (NetIn), egress rules (NetOut)
// and bandwidth shaping. The zero value of each field means its default.
type NetworkConfig struct {
	// Bridge is the host bridge's name (at most 15 bytes); default
	// "pk" + 8 hex digits derived from the depot, so two Managers do not
	// share a bridge.
	Bridge string
	// Subnet is the pool of container addresses; its first address is
	// the bridge's (the containers' gateway). Default 10.254.0.0/22.
	Subnet netip.Prefix
	// HostPorts is the pool NetIn takes host ports from when asked for
	// port 0, first to last inclusive. Default 61000–61999.
	HostPorts [2]uint16
	// MTU of the bridge and the veths; default 1500.
	MTU int
	// DNS servers written to each container's /etc/resolv.conf; default
	// none (an empty resolv.conf).
	DNS []netip.Addr
	// DenyEgress makes egress default-deny: a container reaches only what
	// its NetOut rules or AllowNetworks allow. Default: allowed, less
	// DenyNetworks.
	DenyEgress bool
	// DenyNetworks are never reachable from containers unless a NetOut
	// rule or AllowNetworks allows them (warden's deny_networks); the
	// container subnet is always denied, so containers do not reach each
	// other unless allowed. Default: 169.254.0.0/16 (link-local, cloud
	// metadata).
	DenyNetworks []netip.Prefix
	// AllowNetworks are reachable by every container, before
	// DenyNetworks (warden's allow_networks).
	AllowNetworks []netip.Prefix
}

func (n *NetworkConfig) withDefaults(depotHash string) NetworkConfig {
	c := *n
	if c.Bridge == "" {
		c.Bridge = "pk" + depotHash
	}
	if !c.Subnet.IsValid() {
		c.Subnet = netip.MustParsePrefix("10.254.0.0/22")
	}
	c.Subnet = c.Subnet.Masked()
	if c.HostPorts == [2]uint16{} {
		c.HostPorts = [2]uint16{61000, 61999}
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.DenyNetworks == nil {
		c.DenyNetworks = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}
	}
	return c
}

func (n *NetworkConfig) validate() error {
	bad := func(f, format string, args ...any) error {
		return fmt.Errorf("container: network config: %s: %s: %w", f, fmt.Sprintf(format, args...), ErrInvalidSpec)
	}
	if len(n.Bridge) > 15 || strings.ContainsAny(n.Bridge, "/ \x00") {
		return bad("Bridge", "%q is not a valid interface name", n.Bridge)
	}
	if !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 29 || n.Subnet.Bits() < 8 {
		return bad("Subnet", "%v is not an IPv4 network of /8 to /29", n.Subnet)
	}
	if n.HostPorts[0] == 0 || n.HostPorts[0] > n.HostPorts[1] {
		return bad("HostPorts", "%v is not a range of ports", n.HostPorts)
	}
	if n.MTU < 576 || n.MTU > 65535 {
		return bad("MTU", "%d is outside 576..65535", n.MTU)
	}
	for _, p := range append(slices.Clone(n.DenyNetworks), n.AllowNetworks...) {
		if !p.Addr().Is4() {
			return bad("DenyNetworks/AllowNetworks", "%v is not IPv4", p)
		}
	}
	return nil
}

// Protocol is the protocol of a NetOut rule.
type Protocol int

// The protocols of NetOut rules.
const (
	ProtocolAll Protocol = iota
	ProtocolTCP
	ProtocolUDP
	ProtocolICMP
)

func (p Protocol) String() string {
	switch p {
	case ProtocolAll:
		return "all"
	case ProtocolTCP:
		return "tcp"
	case ProtocolUDP:
		return "udp"
	case ProtocolICMP:
		return "icmp"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Protocol) UnmarshalText(b []byte) error {
	for _, c := range []Protocol{ProtocolAll, ProtocolTCP, ProtocolUDP, ProtocolICMP} {
		if c.String() == string(b) {
			*p = c
			return nil
		}
	}
	return fmt.Errorf("container: unknown protocol %q", b)
}

// NetOutRule allows a container to reach a network (warden's NetOut).
// Every field is optional: the zero rule allows everything.
type NetOutRule struct {
	// Network is a CIDR ("10.0.0.0/8"), one address, or a range
	// "10.0.0.1-10.0.0.9"; empty means any.
	Network string `json:"network,omitempty"`
	// Protocol limits the rule to TCP, UDP or ICMP; ProtocolAll (the
	// zero value) allows all.
	Protocol Protocol `json:"protocol"`
	// Ports limits a TCP or UDP rule to destination ports First..Last
	// (Last 0 means First only); zero means any port.
	Ports PortRange `json:"ports"`
	// ICMPType and ICMPCode limit an ICMP rule; nil means any.
	ICMPType *uint8 `json:"icmp_type,omitempty"`
	ICMPCode *uint8 `json:"icmp_code,omitempty"`
	// Log logs the first packet of each allowed connection to the kernel
	// log, prefixed "paaskit <handle> ".
	Log bool `json:"log,omitempty"`
}

// PortRange is a range of ports, First..Last inclusive.
type PortRange struct {
	First uint16 `json:"first,omitempty"`
	Last  uint16 `json:"last,omitempty"`
}

// addrRange parses the rule's network into first and last address.
func (r *NetOutRule) addrRange() (first, last netip.Addr, err error) {
	s := strings.TrimSpace(r.Network)
	switch {
	case s == "":
		return netip.Addr{}, netip.Addr{}, nil
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return first, last, specErr("Network", "%q is not an IPv4 CIDR", s)
		}
		p = p.Masked()
		first = p.Addr()
		last = first
		for i := 0; i < 32-p.Bits(); i++ {
			b := last.As4()
			v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			v |= 1 << i
			last = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		}
		return first, last, nil
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		first, err1 := netip.ParseAddr(strings.TrimSpace(a))
		last, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || !first.Is4() || !last.Is4() || last.Less(first) {
			return first, last, specErr("Network", "%q is not an IPv4 range first-last", s)
		}
		return first, last, nil
	default:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return first, last, specErr("Network", "%q is not an IPv4 address", s)
		}
		return a, a, nil
	}
}

// Validate reports the first problem of r as a *SpecError, or nil.
func (r *NetOutRule) Validate() error {
	if _, _, err := r.addrRange(); err != nil {
		return err
	}
	if r.Protocol < ProtocolAll || r.Protocol > ProtocolICMP {
		return specErr("Protocol", "%d is not a protocol", r.Protocol)
	}
	if r.Ports != (PortRange{}) {
		if r.Protocol != ProtocolTCP && r.Protocol != ProtocolUDP {
			return specErr("Ports", "ports need protocol tcp or udp, not %v", r.Protocol)
		}
		if r.Ports.First == 0 || (r.Ports.Last != 0 && r.Ports.Last < r.Ports.First) {
			return specErr("Ports", "%d-%d is not a range of ports", r.Ports.First, r.Ports.Last)
		}
	}
	if (r.ICMPType != nil || r.ICMPCode != nil) && r.Protocol != ProtocolICMP {
		return specErr("ICMPType", "ICMP type and code need protocol icmp")
	}
	if r.ICMPCode != nil && r.ICMPType == nil {
		return specErr("ICMPCode", "an ICMP code needs an ICMP type")
	}
	return nil
}

// PortMapping is a host port forwarded to a container port (NetIn).
type PortMapping struct {
	HostPort      uint16 `json:"host_port"`
	ContainerPort uint16 `json:"container_port"`
}

// Bandwidth is a container's traffic shaping, in bytes per second and
// bytes of burst, applied to each direction.
type Bandwidth struct {
	Rate  uint64 `json:"rate"`
	Burst uint64 `json:"burst"`
}

// netState is a container's network, kept in its state file.
type netState struct {
	IP        netip.Addr    `json:"ip"`
	Veth      string        `json:"veth"`
	Mappings  []PortMapping `json:"mappings,omitempty"`
	Rules     []NetOutRule  `json:"rules,omitempty"`
	Bandwidth *Bandwidth    `json:"bandwidth,omitempty"`
}

// ipam hands out container addresses and host ports and remembers them in
// the depot (network.json), so that a Manager opened again never hands out
// one twice. It moves forward through the pools and wraps around, so a
// freed address or port is reused as late as possible.
type ipam struct {
	path     string
	subnet   netip.Prefix
	ports    [2]uint16
	Addrs    map[netip.Addr]string `json:"addrs"` // address → handle
	Ports    map[uint16]string     `json:"ports"` // host port → handle
	NextAddr netip.Addr            `json:"next_addr"`
	NextPort uint16                `json:"next_port"`
}

// ErrPoolExhausted: no container address or host port is left.
var ErrPoolExhausted = errors.New("container: pool exhausted")

func loadIPAM(path string, subnet netip.Prefix, ports [2]uint16) (*ipam, error) {
	a := &ipam{path: path, subnet: subnet, ports: ports, Addrs: map[netip.Addr]string{}, Ports: map[uint16]string{}}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err == nil {
		if err := json.Unmarshal(b, a); err != nil {
			return nil, fmt.Errorf("container: %s: %w", path, err)
		}
	}
	return a, nil
}

func (a *ipam) save() error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return writeFileAtomic(a.path, b)
}

// gateway is the subnet's first address, the bridge's.
func (a *ipam) gateway() netip.Addr { return a.subnet.Addr().Next() }

func (a *ipam) allocAddr(handle string) (netip.Addr, error) {
	first := a.gateway().Next()
	// The last address of the subnet is its broadcast address.
	size := 1<<(32-a.subnet.Bits()) - 3
	cur := a.NextAddr
	if !a.subnet.Contains(cur) || cur.Less(first) {
		cur = first
	}
	for range size {
		if !a.subnet.Contains(cur.Next()) { // cur is the broadcast address
			cur = first
		}
		if _, used := a.Addrs[cur]; !used {
			a.Addrs[cur] = handle
			a.NextAddr = cur.Next()
			return cur, a.save()
		}
		cur = cur.Next()
	}
	return netip.Addr{}, fmt.Errorf("container addresses of %v: %w", a.subnet, ErrPoolExhausted)
}

func (a *ipam) allocPort(handle string) (uint16, error) {
	lo, hi := a.ports[0], a.ports[1]
	cur := a.NextPort
	if cur < lo || cur > hi {
		cur = lo
	}
	for range int(hi-lo) + 1 {
		if _, used := a.Ports[cur]; !used {
			a.Ports[cur] = handle
			a.NextPort = cur + 1
			return cur, a.save()
		}
		if cur == hi {
			cur = lo
		} else {
			cur++
		}
	}
	return 0, fmt.Errorf("host ports %d-%d: %w", lo, hi, ErrPoolExhausted)
}

// claimPort takes a port the caller chose; taken by another → error.
func (a *ipam) claimPort(handle string, port uint16) error {
	if owner, used := a.Ports[port]; used {
		if owner == handle {
			return fmt.Errorf("host port %d: %w", port, ErrAlreadyExists)
		}
		return fmt.Errorf("host port %d is mapped to container %q: %w", port, owner, ErrAlreadyExists)
	}
	a.Ports[port] = handle
	return a.save()
}

// release frees everything of handle.
func (a *ipam) release(handle string) error {
	for k, h := range a.Addrs {
		if h == handle {
			delete(a.Addrs, k)
		}
	}
	for k, h := range a.Ports {
		if h == handle {
			delete(a.Ports, k)
		}
	}
	return a.save()
}

// keepOnly frees the allocations of handles not in live.
func (a *ipam) keepOnly(live map[string]bool) error {
	for k, h := range a.Addrs {
		if !live[h] {
			delete(a.Addrs, k)
		}
	}
	for k, h := range a.Ports {
		if !live[h] {
			delete(a.Ports, k)
		}
	}
	return a.save()
}

func (a *ipam) empty() bool { return len(a.Addrs) == 0 && len(a.Ports) == 0 }

func ipamPath(depot string) string { return filepath.Join(depot, "network.json") }

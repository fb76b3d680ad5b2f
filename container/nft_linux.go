package container

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The firewall of a Manager is one nftables table of its own (inet family,
// named after the Manager), rebuilt whole in one atomic transaction from
// the containers' persisted network state on every change. A Manager
// opened after a crash therefore rebuilds exactly what its live containers
// need and nothing else.
//
//	prerouting (nat)  fib daddr type local tcp/udp dport H → dnat to C:P   (NetIn)
//	output (nat)      the same, for connections from the host itself
//	postrouting (nat) masquerade container egress, and loopback-sourced NetIn
//	forward (filter)  to containers: established or DNATed only;
//	                  from containers: jump egress
//	input (filter)    from containers to the host: established, or egress
//	egress            ip saddr C → jump c-<handle>; anything else dropped
//	c-<handle>        NetOut rules, AllowNetworks → accept;
//	                  the container subnet, DenyNetworks → drop; the policy

// fwContainer is what the firewall needs of one container.
type fwContainer struct {
	handle   string
	ip       netip.Addr
	mappings []PortMapping
	rules    []NetOutRule
}

// nftConn opens a netlink connection for a firewall rebuild with socket
// buffers large enough for the answers to a whole table: with the
// defaults the kernel runs out of buffer space (ENOBUFS) past about twenty
// containers.
func nftConn() (*nftables.Conn, error) {
	return nftables.New(nftables.WithSockOptions(func(c *netlink.Conn) error {
		if err := c.SetReadBuffer(8 << 20); err != nil {
			return err
		}
		return c.SetWriteBuffer(8 << 20)
	}))
}

func (n *netMgr) applyFirewall(cs []fwContainer) error {
	conn, err := nftConn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer conn.CloseLasting()
	t := &nftables.Table{Name: n.table, Family: nftables.TableFamilyINet}
	// add + delete + add: replaces the table whether or not it existed.
	conn.AddTable(t)
	conn.DelTable(t)
	conn.AddTable(t)
	accept := func() *nftables.ChainPolicy { p := nftables.ChainPolicyAccept; return &p }
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return conn.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio, Policy: accept()})
	}
	pre := base("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := base("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := base("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	fwd := base("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	in := base("input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	egress := conn.AddChain(&nftables.Chain{Name: "egress", Table: t})
	rule := func(c *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		for _, e := range exprs {
			all = append(all, e...)
		}
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: all})
	}
	br := n.cfg.Bridge

	// NAT.
	for _, c := range cs {
		for _, m := range c.mappings {
			for _, ch := range []*nftables.Chain{pre, out} {
				rule(ch, ipv4(), fibLocalDaddr(), l4proto(unix.IPPROTO_TCP), dport(m.HostPort, m.HostPort), dnat(c.ip, m.ContainerPort))
			}
		}
	}
	rule(post, ipv4(), saddrIn(n.cfg.Subnet), ifname(expr.MetaKeyOIFNAME, br, expr.CmpOpNeq), masq())
	rule(post, ipv4(), ifname(expr.MetaKeyOIFNAME, br, expr.CmpOpEq), saddrIn(netip.MustParsePrefix("127.0.0.0/8")), masq())

	// Filter.
	rule(fwd, ifname(expr.MetaKeyOIFNAME, br, expr.CmpOpEq), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept, ""))
	rule(fwd, ifname(expr.MetaKeyOIFNAME, br, expr.CmpOpEq), ctStatusDNAT(), verdict(expr.VerdictAccept, ""))
	rule(fwd, ifname(expr.MetaKeyIIFNAME, br, expr.CmpOpEq), verdict(expr.VerdictJump, "egress"))
	rule(fwd, ifname(expr.MetaKeyOIFNAME, br, expr.CmpOpEq), verdict(expr.VerdictDrop, ""))
	rule(in, ifname(expr.MetaKeyIIFNAME, br, expr.CmpOpEq), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept, ""))
	rule(in, ifname(expr.MetaKeyIIFNAME, br, expr.CmpOpEq), verdict(expr.VerdictJump, "egress"))

	for _, c := range cs {
		name := "c-" + c.handle
		ch := conn.AddChain(&nftables.Chain{Name: name, Table: t})
		rule(egress, ipv4(), addrRange(12, c.ip, c.ip), verdict(expr.VerdictJump, name))
		for _, r := range c.rules {
			match, err := ruleMatch(r)
			if err != nil {
				return fmt.Errorf("container %q: %w", c.handle, err)
			}
			if r.Log {
				rule(ch, match, ctState(expr.CtStateBitNEW), logPrefix("paaskit "+c.handle+" "))
			}
			rule(ch, match, verdict(expr.VerdictAccept, ""))
		}
		for _, p := range n.cfg.AllowNetworks {
			rule(ch, ipv4(), daddrIn(p), verdict(expr.VerdictAccept, ""))
		}
		for _, p := range append([]netip.Prefix{n.cfg.Subnet}, n.cfg.DenyNetworks...) {
			rule(ch, ipv4(), daddrIn(p), verdict(expr.VerdictDrop, ""))
		}
		if n.cfg.DenyEgress {
			rule(ch, verdict(expr.VerdictDrop, ""))
		} else {
			rule(ch, verdict(expr.VerdictAccept, ""))
		}
	}
	rule(egress, verdict(expr.VerdictDrop, "")) // a source address that is no container's
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: table %s: %w", n.table, err)
	}
	return nil
}

// deleteFirewall removes the Manager's table; a missing one is fine.
func (n *netMgr) deleteFirewall() error {
	conn, err := nftConn()
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	t := &nftables.Table{Name: n.table, Family: nftables.TableFamilyINet}
	conn.AddTable(t)
	conn.DelTable(t)
	return conn.Flush()
}

// ruleMatch is the match part of a NetOut rule.
func ruleMatch(r NetOutRule) ([]expr.Any, error) {
	e := ipv4()
	first, last, err := r.addrRange()
	if err != nil {
		return nil, err
	}
	if first.IsValid() {
		e = append(e, addrRange(16, first, last)...)
	}
	switch r.Protocol {
	case ProtocolTCP, ProtocolUDP:
		proto := byte(unix.IPPROTO_TCP)
		if r.Protocol == ProtocolUDP {
			proto = unix.IPPROTO_UDP
		}
		e = append(e, l4proto(proto)...)
		if r.Ports.First != 0 {
			e = append(e, dport(r.Ports.First, max(r.Ports.Last, r.Ports.First))...)
		}
	case ProtocolICMP:
		e = append(e, l4proto(unix.IPPROTO_ICMP)...)
		if r.ICMPType != nil {
			e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{*r.ICMPType}})
		}
		if r.ICMPCode != nil {
			e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 1, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{*r.ICMPCode}})
		}
	}
	return e, nil
}

func ipv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

func ifname(key expr.MetaKey, name string, op expr.CmpOp) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: b}}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}}}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func dport(first, last uint16) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	if first == last {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(first)}}
	}
	return []expr.Any{load, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be16(first), ToData: be16(last)}}
}

// addrRange matches the IPv4 address at offset (12 source, 16
// destination) against first..last.
func addrRange(offset uint32, first, last netip.Addr) []expr.Any {
	a, b := first.As4(), last.As4()
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
	if first == last {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]}}
	}
	return []expr.Any{load, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: a[:], ToData: b[:]}}
}

func prefixRange(p netip.Prefix) (netip.Addr, netip.Addr) {
	r := NetOutRule{Network: p.String()}
	first, last, _ := r.addrRange()
	return first, last
}

func saddrIn(p netip.Prefix) []expr.Any { f, l := prefixRange(p); return addrRange(12, f, l) }
func daddrIn(p netip.Prefix) []expr.Any { f, l := prefixRange(p); return addrRange(16, f, l) }

func fibLocalDaddr() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
	}
}

func dnat(ip netip.Addr, port uint16) []expr.Any {
	a := ip.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: be16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

func masq() []expr.Any { return []expr.Any{&expr.Masq{}} }

func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// ctStatusDNAT matches connections whose destination was NATed (NetIn).
func ctStatusDNAT() []expr.Any {
	const ipsDstNAT = 1 << 5
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func logPrefix(p string) []expr.Any {
	return []expr.Any{&expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(p)}}
}

func verdict(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}

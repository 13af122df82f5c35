package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Published ports (dataplane.HostPort): DNAT of new connections to a host
// port on one of this host's own addresses.
//
//   - Maps "hp4" (inet_proto . inet_service : ipv4_addr . inet_service) and
//     "hp6" (... : ipv6_addr . inet_service) hold the ports published on
//     every local address of the family; "hp4ip" and "hp6ip" (keyed by
//     the destination address too) those published on one address. The
//     address-specific maps are looked up first. One lookup per map, so
//     the cost per new connection does not grow with the number of ports.
//   - Base chain "dnat-pre" (nat, prerouting, dstnat -100) translates
//     connections from other hosts and from workloads; "dnat-out" (nat,
//     output, -100) those the host itself opens to its own addresses.
//     Both act only on `fib daddr type local`; dnat-out leaves loopback
//     destinations alone (they cannot be forwarded to a workload without
//     route_localnet; the node's proxy serves them).
//   - Sets "hairpin4"/"hairpin6" (addr . addr) list every target address:
//     a workload that reaches its own published port through a host
//     address gets its connection masqueraded in "postrouting", or the
//     reply would never come back through the host.
//
// Nothing else is rewritten: a client from another host keeps its source
// address, so the workload's ingress policy judges the real client.
const (
	hp4       = "hp4"
	hp6       = "hp6"
	hp4IP     = "hp4ip"
	hp6IP     = "hp6ip"
	hairpin4  = "hairpin4"
	hairpin6  = "hairpin6"
	chainDNAT = "dnat-pre"
	chainOutN = "dnat-out"
	// ipsDstNAT is the conntrack status bit of a destination-NATed
	// connection (IPS_DST_NAT).
	ipsDstNAT = 1 << 5
)

var (
	baseDNAT    = &baseChain{hook: unix.NF_INET_PRE_ROUTING, prio: -100, typ: "nat", hookName: "prerouting"}
	baseOutDNAT = &baseChain{hook: unix.NF_INET_LOCAL_OUT, prio: -100, typ: "nat", hookName: "output"}

	tProto   = nftables.TypeInetProto
	tService = nftables.TypeInetService
	tIP4     = nftables.TypeIPAddr
	tIP6     = nftables.TypeIP6Addr

	typeHP4 = setType{name: "inet_proto . inet_service : ipv4_addr . inet_service",
		key: nftables.MustConcatSetType(tProto, tService), fields: []uint32{1, 2},
		data: nftables.MustConcatSetType(tIP4, tService), dataFields: []uint32{4, 2}}
	typeHP6 = setType{name: "inet_proto . inet_service : ipv6_addr . inet_service",
		key: nftables.MustConcatSetType(tProto, tService), fields: []uint32{1, 2},
		data: nftables.MustConcatSetType(tIP6, tService), dataFields: []uint32{16, 2}}
	typeHP4IP = setType{name: "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
		key: nftables.MustConcatSetType(tIP4, tProto, tService), fields: []uint32{4, 1, 2},
		data: typeHP4.data, dataFields: typeHP4.dataFields}
	typeHP6IP = setType{name: "ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service",
		key: nftables.MustConcatSetType(tIP6, tProto, tService), fields: []uint32{16, 1, 2},
		data: typeHP6.data, dataFields: typeHP6.dataFields}
	typeHairpin4 = setType{name: "ipv4_addr . ipv4_addr", key: nftables.MustConcatSetType(tIP4, tIP4), fields: []uint32{4, 4}}
	typeHairpin6 = setType{name: "ipv6_addr . ipv6_addr", key: nftables.MustConcatSetType(tIP6, tIP6), fields: []uint32{16, 16}}
)

// pad4 is b padded with zeros to a whole number of 32-bit registers, the
// layout of one field of a concatenation.
func pad4(b []byte) []byte {
	out := slices.Clone(b)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}

func concatBytes(fields ...[]byte) []byte {
	var out []byte
	for _, f := range fields {
		out = append(out, pad4(f)...)
	}
	return out
}

// hostPortElems are the map and set elements of the published ports;
// loopback host addresses get none (see the package comment above).
func hostPortElems(hps []dataplane.HostPort) (m4, m6, m4ip, m6ip, hp4s, hp6s elemSet, problems []string) {
	m4, m6, m4ip, m6ip, hp4s, hp6s = elemSet{}, elemSet{}, elemSet{}, elemSet{}, elemSet{}, elemSet{}
	for _, h := range hps {
		if h.Protocol != 6 && h.Protocol != 17 || !h.Target.IsValid() || h.HostPort == 0 || h.Port == 0 {
			problems = append(problems, fmt.Sprintf("published port %+v of %s cannot be programmed", h, h.Endpoint))
			continue
		}
		if h.HostIP.IsValid() && h.HostIP.Is4() != h.Target.Is4() {
			problems = append(problems, fmt.Sprintf("published port %d of %s: host address %s and target %s differ in family", h.HostPort, h.Endpoint, h.HostIP, h.Target))
			continue
		}
		if h.HostIP.IsLoopback() {
			continue
		}
		proto, port := []byte{h.Protocol}, be16(h.HostPort)
		val := string(concatBytes(h.Target.AsSlice(), be16(h.Port)))
		self := elem{key: concatBytes(h.Target.AsSlice(), h.Target.AsSlice())}
		switch {
		case h.Target.Is4() && h.HostIP.IsValid():
			m4ip[string(concatBytes(h.HostIP.AsSlice(), proto, port))] = val
		case h.Target.Is4():
			m4[string(concatBytes(proto, port))] = val
		case h.HostIP.IsValid():
			m6ip[string(concatBytes(h.HostIP.AsSlice(), proto, port))] = val
		default:
			m6[string(concatBytes(proto, port))] = val
		}
		if h.Target.Is4() {
			hp4s.add(self)
		} else {
			hp6s.add(self)
		}
	}
	return
}

// hostPortText renders an element of a published-port map or hairpin set.
func hostPortText(t setType, e elem) string {
	fields := func(b []byte, lens []uint32) []string {
		var out []string
		off := 0
		for _, n := range lens {
			f := b[off : off+int(n)]
			off += int(n+3) / 4 * 4
			switch n {
			case 1:
				out = append(out, protoText(f[0]))
			case 2:
				out = append(out, fmt.Sprint(binary.BigEndian.Uint16(f)))
			default:
				out = append(out, addrText(f))
			}
		}
		return out
	}
	join := func(s []string) string { return strings.Join(s, " . ") }
	key := join(fields(e.key, t.fields))
	if t.dataFields == nil {
		return key
	}
	return key + " : " + join(fields([]byte(e.verdict), t.dataFields))
}

// dnatRules are the rules of dnat-pre (out false) and dnat-out (out true).
func dnatRules(out bool) []rule {
	fs := []func(b *builder){
		func(b *builder) { b.fibLocal(true); b.verdict(expr.VerdictAccept, "") },
	}
	if out {
		fs = append(fs,
			func(b *builder) {
				b.nfproto(4)
				b.addr(4, true, false, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
				b.verdict(expr.VerdictAccept, "")
			},
			func(b *builder) {
				b.nfproto(6)
				b.addr(6, true, false, []netip.Prefix{netip.MustParsePrefix("::1/128")})
				b.verdict(expr.VerdictAccept, "")
			})
	}
	fs = append(fs,
		func(b *builder) { b.dnatMap(4, true, hp4IP) },
		func(b *builder) { b.dnatMap(4, false, hp4) },
		func(b *builder) { b.dnatMap(6, true, hp6IP) },
		func(b *builder) { b.dnatMap(6, false, hp6) },
	)
	return rules(fs...)
}

// hairpinRules masquerade a workload's connection to its own published
// port (they go first in postrouting).
func hairpinRules() []func(b *builder) {
	rule := func(fam int, set string) func(b *builder) {
		return func(b *builder) {
			b.ctStatus(ipsDstNAT, "dnat")
			b.nfproto(fam)
			w1 := b.loadAddr(fam, false, 1)
			reg := uint32(9)
			if fam == 6 {
				reg = 2
			}
			w2 := b.loadAddr(fam, true, reg)
			b.wf("%s . %s @%s", w1, w2, set)
			b.e(&expr.Lookup{SourceRegister: 1, SetName: set})
			b.masquerade()
		}
	}
	return []func(b *builder){rule(4, hairpin4), rule(6, hairpin6)}
}

// fibLocal matches packets whose destination is (neg: is not) a local
// address of the host.
func (b *builder) fibLocal(neg bool) {
	b.wf("fib daddr type %slocal", opText(neg))
	b.e(&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: cmpOp(neg), Register: 1, Data: native32(unix.RTN_LOCAL)})
}

func (b *builder) ctStatus(bit uint32, name string) {
	b.w("ct status " + name)
	b.e(&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(bit), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: native32(0)})
}

// dnatMap DNATs through one published-port map: the key is (the
// destination address,) the protocol and the destination port, the value
// the workload's address and port. Concatenated fields sit in consecutive
// 32-bit registers from register 1 (NFT_REG32_00 = 8).
func (b *builder) dnatMap(fam int, withAddr bool, set string) {
	b.nfproto(fam)
	var words []string
	next := uint32(1)
	if withAddr {
		words = append(words, b.loadAddr(fam, true, 1))
		next = 9
		if fam == 6 {
			next = 12
		}
	}
	b.e(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: next},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: regAfter(next), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: set, DestRegister: 1, IsDestRegSet: true})
	words = append(words, "meta l4proto", "th dport")
	natFam, word, portReg := uint32(unix.NFPROTO_IPV4), "ip", uint32(9)
	if fam == 6 {
		natFam, word, portReg = unix.NFPROTO_IPV6, "ip6", 12
	}
	b.wf("dnat %s to %s map @%s", word, joinDot(words), set)
	b.e(&expr.NAT{Type: expr.NATTypeDestNAT, Family: natFam, RegAddrMin: 1, RegProtoMin: portReg})
}

// regAfter is the 32-bit register after r (r may be the 16-byte register 1,
// which is the 32-bit register 8).
func regAfter(r uint32) uint32 {
	if r == 1 {
		return 9
	}
	return r + 1
}

func joinDot(ws []string) string { return strings.Join(ws, " . ") }

// hpCache keeps the published-port set contents while HostPorts is unchanged.
type hpCache struct {
	ports                      []dataplane.HostPort
	m4, m6, m4ip, m6ip, h4, h6 *setContent
	problems                   []string
}

func (c *cache) hostPortSets(hps []dataplane.HostPort) *hpCache {
	if c.hp != nil && slices.Equal(c.hp.ports, hps) {
		return c.hp
	}
	m4, m6, m4ip, m6ip, h4, h6, problems := hostPortElems(hps)
	c.hp = &hpCache{ports: hps, problems: problems,
		m4: &setContent{elems: m4}, m6: &setContent{elems: m6}, m4ip: &setContent{elems: m4ip}, m6ip: &setContent{elems: m6ip},
		h4: &setContent{elems: h4}, h6: &setContent{elems: h6}}
	return c.hp
}

package nft

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Mark bits a policy or profile chain sets to tell the endpoint chain that
// jumped to it what it decided (Calico's defaults for the same purpose).
const (
	markAccept uint32 = 0x10000
	markPass   uint32 = 0x20000
)

// MarkForwardAllowed is the mark bit the forward chain sets on every
// forwarded packet to or from a workload interface; only packets that the
// chain then accepts keep it past our hook (a drop is final). iptables rules
// that must let workload traffic through a DROP policy (Docker's FORWARD,
// package dockerfw) match this bit instead of interfaces, so they accept
// nothing our policy has not judged, and nothing at all if our table is gone.
const MarkForwardAllowed uint32 = 0x40000

// rule is one compiled rule: its canonical text (what Render prints and
// what the rule's comment hashes) and the expressions the kernel gets.
type rule struct {
	text  string
	exprs []expr.Any
	anon  []*anonSet
	// src is the index of the dataplane.Rule a policy chain rule was
	// compiled from (see RuleCounters); 0 elsewhere.
	src int
}

// anonSet is an anonymous constant set that one rule looks up. Its lookup
// expression gets the set's batch-local ID when the rule is encoded.
type anonSet struct {
	typ    setType
	elems  []elem
	lookup *expr.Lookup
}

// builder accumulates the text and expressions of one rule side by side,
// so the two can never disagree.
type builder struct {
	words []string
	exprs []expr.Any
	anon  []*anonSet
}

func (b *builder) w(s string) { b.words = append(b.words, s) }

func (b *builder) wf(format string, args ...any) {
	b.words = append(b.words, fmt.Sprintf(format, args...))
}

func (b *builder) e(es ...expr.Any) { b.exprs = append(b.exprs, es...) }

func (b *builder) rule() rule {
	return rule{text: strings.Join(b.words, " "), exprs: b.exprs, anon: b.anon}
}

func native32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

func opText(neg bool) string {
	if neg {
		return "!= "
	}
	return ""
}

func cmpOp(neg bool) expr.CmpOp {
	if neg {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

func (b *builder) nfproto(fam int) {
	v, name := byte(unix.NFPROTO_IPV4), "ipv4"
	if fam == 6 {
		v, name = unix.NFPROTO_IPV6, "ipv6"
	}
	b.w("meta nfproto " + name)
	b.e(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{v}})
}

var protoNames = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}

func protoText(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

func (b *builder) l4proto(p uint8, neg bool) {
	b.wf("meta l4proto %s%s", opText(neg), protoText(p))
	b.e(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: cmpOp(neg), Register: 1, Data: []byte{p}})
}

// l4protoIn matches any of the protocols, through an anonymous set.
func (b *builder) l4protoIn(ps []uint8) {
	names := make([]string, len(ps))
	elems := make([]elem, len(ps))
	for i, p := range ps {
		names[i] = protoText(p)
		elems[i] = elem{key: []byte{p}}
	}
	b.w("meta l4proto " + joinElems(names))
	b.e(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1})
	b.lookupAnon(typeProtos, elems, false)
}

// lookupAnon looks register 1 up in a new anonymous set.
func (b *builder) lookupAnon(t setType, elems []elem, neg bool) {
	l := &expr.Lookup{SourceRegister: 1, SetName: "__set%d", Invert: neg}
	b.anon = append(b.anon, &anonSet{typ: t, elems: elems, lookup: l})
	b.e(l)
}

// ifname matches the input (or output) interface name; with wildcard, name
// is a prefix ("cali" matches "cali*").
func (b *builder) ifname(out bool, name string, wildcard, neg bool) {
	key, word := expr.MetaKeyIIFNAME, "iifname"
	if out {
		key, word = expr.MetaKeyOIFNAME, "oifname"
	}
	data, shown := ifnameKey(name), name
	if wildcard {
		data, shown = []byte(name), name+"*"
	}
	b.wf("%s %s%q", word, opText(neg), shown)
	b.e(&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: cmpOp(neg), Register: 1, Data: data})
}

// ifnameVmap dispatches on the interface name through a verdict map.
func (b *builder) ifnameVmap(out bool, set string) {
	key, word := expr.MetaKeyIIFNAME, "iifname"
	if out {
		key, word = expr.MetaKeyOIFNAME, "oifname"
	}
	b.wf("%s vmap @%s", word, set)
	b.e(&expr.Meta{Key: key, Register: 1}, &expr.Lookup{SourceRegister: 1, SetName: set, DestRegister: 0, IsDestRegSet: true})
}

func (b *builder) ctState(bits uint32, names string) {
	b.w("ct state " + names)
	b.e(&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(bits), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: native32(0)})
}

// markTest matches (mark & mask) == value.
func (b *builder) markTest(mask, value uint32) {
	b.wf("meta mark & 0x%08x == 0x%08x", mask, value)
	b.e(&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(mask), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(value)})
}

// markSet sets mark = (mark & and) ^ xor.
func (b *builder) markSet(and, xor uint32, text string) {
	b.w("meta mark set meta mark " + text)
	b.e(&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(and), Xor: native32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
}

func (b *builder) markClear() {
	b.markSet(^(markAccept | markPass), 0, fmt.Sprintf("& 0x%08x", ^(markAccept|markPass)))
}

func (b *builder) markOr(bit uint32) {
	b.markSet(^bit, bit, fmt.Sprintf("| 0x%08x", bit))
}

// loadAddr loads the source or destination address of family fam into
// register 1 (2 when reg2, for concatenations after an interface name).
func (b *builder) loadAddr(fam int, dst bool, reg uint32) (word string) {
	off, n, word := uint32(12), uint32(4), "ip"
	if fam == 6 {
		off, n, word = 8, 16, "ip6"
	}
	if dst {
		off += n
		word += " daddr"
	} else {
		word += " saddr"
	}
	b.e(&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n})
	return word
}

// addr matches the address against prefixes of family fam (any of them,
// or none of them when neg). A /0 must have been handled by the caller.
func (b *builder) addr(fam int, dst, neg bool, ps []netip.Prefix) {
	word := b.loadAddr(fam, dst, 1)
	rs := ranges(ps, fam)
	if len(rs) == 1 {
		if p, ok := rangePrefix(rs[0]); ok {
			b.wf("%s %s%s", word, opText(neg), rangeText(rs[0]))
			if p.Bits() < p.Addr().BitLen() {
				mask := netipMask(p)
				b.e(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))})
			}
			b.e(&expr.Cmp{Op: cmpOp(neg), Register: 1, Data: p.Addr().AsSlice()})
			return
		}
	}
	texts := make([]string, len(rs))
	elems := make([]elem, len(rs))
	for i, r := range rs {
		texts[i] = rangeText(r)
		elems[i] = elem{key: r.start, end: r.end}
	}
	t := typeIP4
	if fam == 6 {
		t = typeIP6
	}
	b.wf("%s %s%s", word, opText(neg), joinElems(texts))
	b.lookupAnon(t, elems, neg)
}

func netipMask(p netip.Prefix) []byte {
	n := p.Addr().BitLen() / 8
	m := make([]byte, n)
	bits := p.Bits()
	for i := 0; i < n; i++ {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// setLookup matches membership of the address in a named set.
func (b *builder) setLookup(fam int, dst, neg bool, set string) {
	word := b.loadAddr(fam, dst, 1)
	b.wf("%s %s@%s", word, opText(neg), set)
	b.e(&expr.Lookup{SourceRegister: 1, SetName: set, Invert: neg})
}

// spoofCheck matches packets whose (input interface, source address) pair
// is in neither of the family's anti-spoofing sets.
func (b *builder) spoofCheck(fam int, exact, nets string) {
	b.nfproto(fam)
	b.e(&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1})
	word := b.loadAddr(fam, false, 2)
	b.wf("iifname . %s != @%s iifname . %s != @%s", word, exact, word, nets)
	// A lookup leaves its source registers as they are: one load serves both.
	b.e(&expr.Lookup{SourceRegister: 1, SetName: exact, Invert: true},
		&expr.Lookup{SourceRegister: 1, SetName: nets, Invert: true})
}

// ports matches the transport source or destination port.
func (b *builder) ports(dst, neg bool, ps []dataplane.PortRange) {
	off, word := uint32(0), "th sport"
	if dst {
		off, word = 2, "th dport"
	}
	b.e(&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2})
	rs := portRanges(ps)
	if len(rs) == 1 {
		r := rs[0]
		if r.First == r.Last {
			b.wf("%s %s%d", word, opText(neg), r.First)
			b.e(&expr.Cmp{Op: cmpOp(neg), Register: 1, Data: be16(r.First)})
			return
		}
		b.wf("%s %s%d-%d", word, opText(neg), r.First, r.Last)
		b.e(&expr.Range{Op: cmpOp(neg), Register: 1, FromData: be16(r.First), ToData: be16(r.Last)})
		return
	}
	texts := make([]string, len(rs))
	elems := make([]elem, len(rs))
	for i, r := range rs {
		if r.First == r.Last {
			texts[i] = strconv.Itoa(int(r.First))
		} else {
			texts[i] = fmt.Sprintf("%d-%d", r.First, r.Last)
		}
		e := elem{key: be16(r.First)}
		if r.Last != 0xffff {
			e.end = be16(r.Last + 1)
		}
		elems[i] = e
	}
	b.wf("%s %s%s", word, opText(neg), joinElems(texts))
	b.lookupAnon(typePorts, elems, neg)
}

// icmp matches the ICMP (or ICMPv6) type and optional code; the protocol
// check is the caller's.
func (b *builder) icmp(v6 bool, m *dataplane.ICMPMatch, neg bool) {
	word := "icmp"
	if v6 {
		word = "icmpv6"
	}
	if m.Code == nil {
		b.wf("%s type %s%d", word, opText(neg), m.Type)
		b.e(&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: cmpOp(neg), Register: 1, Data: []byte{m.Type}})
		return
	}
	// Type and code are adjacent bytes: one two-byte comparison keeps
	// "not (type X and code Y)" a single test.
	b.wf("%s type . code %s%d . %d", word, opText(neg), m.Type, *m.Code)
	b.e(&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Cmp{Op: cmpOp(neg), Register: 1, Data: []byte{m.Type, *m.Code}})
}

// icmp6Types matches any of the ICMPv6 types (an anonymous set).
func (b *builder) icmp6Types(types []uint8) {
	texts := make([]string, len(types))
	elems := make([]elem, len(types))
	for i, t := range types {
		texts[i] = strconv.Itoa(int(t))
		elems[i] = elem{key: []byte{t}}
	}
	b.w("icmpv6 type " + joinElems(texts))
	b.e(&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1})
	b.lookupAnon(typeICMP6, elems, false)
}

func (b *builder) verdict(k expr.VerdictKind, chain string) {
	switch k {
	case expr.VerdictAccept:
		b.w("accept")
	case expr.VerdictDrop:
		b.w("drop")
	case expr.VerdictReturn:
		b.w("return")
	case expr.VerdictJump:
		b.w("jump " + chain)
	case expr.VerdictGoto:
		b.w("goto " + chain)
	}
	b.e(&expr.Verdict{Kind: k, Chain: chain})
}

func (b *builder) log(prefix string) {
	b.wf("log prefix %q", prefix)
	b.e(&expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(prefix)})
}

func (b *builder) masquerade() {
	b.w("masquerade")
	b.e(&expr.Masq{})
}

// hashText is the stable short hash used in names and rule comments.
func hashText(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// Chain and set names. Policy and set IDs can be long and contain any
// character, so names carry a hash of the ID (Render shows the ID).
func policyChainName(id string, ingress bool) string {
	if ingress {
		return "pi-" + hashText(id)
	}
	return "pe-" + hashText(id)
}

// portSetName names the named-port set of IPSet id for family fam.
func portSetName(id string, fam int) string {
	if fam == 6 {
		return "p6-" + hashText(id)
	}
	return "p4-" + hashText(id)
}

func ipSetName(id string, fam int) string {
	if fam == 6 {
		return "s6-" + hashText(id)
	}
	return "s4-" + hashText(id)
}

// endpointChainName names the chain that evaluates a policy list and a
// profile list in one direction. Endpoints with the same lists share it:
// on a real host most endpoints of an application have identical lists,
// so the table grows by map and set elements per endpoint, not by chains
// and rules.
func endpointChainName(pols, profiles []string, ingress bool) string {
	var sb strings.Builder
	for _, p := range pols {
		sb.WriteString(p)
		sb.WriteByte(0)
	}
	sb.WriteByte(1)
	for _, p := range profiles {
		sb.WriteString(p)
		sb.WriteByte(0)
	}
	if ingress {
		return "tw-" + hashText(sb.String())
	}
	return "fw-" + hashText(sb.String())
}

// endpointChainComment says what an endpoint chain evaluates, for Render.
func endpointChainComment(pols, profiles []string, ingress bool) string {
	dir := "from workload: egress"
	if ingress {
		dir = "to workload: ingress"
	}
	return fmt.Sprintf("%s policies [%s], profiles [%s]", dir, strings.Join(pols, " "), strings.Join(profiles, " "))
}

// Names of the fixed objects of the table.
const (
	tableName   = "calico"
	fwMap       = "fw-map"
	twMap       = "tw-map"
	spoof4      = "spoof4"
	spoof6      = "spoof6"
	spoof4Net   = "spoof4net"
	spoof6Net   = "spoof6net"
	masq4       = "masq4"
	masq6       = "masq6"
	pools4      = "pools4"
	pools6      = "pools6"
	cpAddr4     = "cp-addr4"
	cpAddr6     = "cp-addr6"
	cpPorts     = "cp-ports"
	chainPre    = "prerouting"
	chainFwd    = "forward"
	chainInput  = "input"
	chainPost   = "postrouting"
	defaultPfx  = "cali"
	logPfxLimit = 127
)

// hasAddr reports whether a rule matches on addresses, which makes it
// specific to one IP family in nftables.
func hasAddr(r *dataplane.Rule) bool {
	for _, m := range []*dataplane.Match{&r.Src, &r.Dst} {
		if len(m.Nets) > 0 || len(m.NotNets) > 0 || len(m.Sets) > 0 || len(m.NotSets) > 0 || len(m.PortSets) > 0 || len(m.NotPortSets) > 0 {
			return true
		}
	}
	return false
}

// ruleFamilies lists the IP families a rule must be emitted for: 0 means
// one family-agnostic rule.
func ruleFamilies(r *dataplane.Rule) []int {
	switch r.IPVersion {
	case 4:
		return []int{4}
	case 6:
		return []int{6}
	}
	if !hasAddr(r) {
		return []int{0}
	}
	if r.Protocol != nil {
		switch *r.Protocol {
		case 1:
			return []int{4}
		case 58:
			return []int{6}
		}
	}
	return []int{4, 6}
}

// compileRules turns a policy's rules for one direction into nft rules.
// Problems (contract violations that make a rule unusable) are returned
// for logging; such a rule is left out rather than guessed at.
func compileRules(rs []dataplane.Rule, chain string) (out []rule, problems []string) {
	for i := range rs {
		r := &rs[i]
		for _, fam := range ruleFamilies(r) {
			rl, ok, problem := compileRule(r, fam, chain)
			if problem != "" {
				problems = append(problems, fmt.Sprintf("chain %s rule %d: %s", chain, i, problem))
			}
			if ok {
				rl.src = i
				out = append(out, rl)
			}
		}
	}
	return out, problems
}

func filterFam(ps []netip.Prefix, fam int) (out []netip.Prefix, all bool) {
	for _, p := range ps {
		if p.IsValid() && familyOf(p) == fam {
			if p.Bits() == 0 {
				all = true
			}
			out = append(out, p)
		}
	}
	return out, all
}

// compileRule emits rule r for family fam; ok is false when the rule can
// never match in that family (e.g. only IPv6 nets in the IPv4 variant).
func compileRule(r *dataplane.Rule, fam int, chain string) (rl rule, ok bool, problem string) {
	b := &builder{}
	if fam != 0 {
		b.nfproto(fam)
	}
	if r.Protocol != nil {
		if fam == 4 && *r.Protocol == 58 || fam == 6 && *r.Protocol == 1 {
			return rule{}, false, ""
		}
		b.l4proto(*r.Protocol, false)
	}
	if r.NotProtocol != nil {
		b.l4proto(*r.NotProtocol, true)
	}
	hasPorts := len(r.Src.Ports)+len(r.Src.NotPorts)+len(r.Dst.Ports)+len(r.Dst.NotPorts) > 0 ||
		len(r.Src.PortSets)+len(r.Src.NotPortSets)+len(r.Dst.PortSets)+len(r.Dst.NotPortSets) > 0
	if hasPorts {
		if r.Protocol == nil {
			b.l4protoIn([]uint8{6, 17, 132})
		} else if p := *r.Protocol; p != 6 && p != 17 && p != 132 {
			return rule{}, false, fmt.Sprintf("ports need protocol TCP, UDP or SCTP, not %d", p)
		}
	}
	icmpProto := uint8(1)
	if r.Protocol != nil && *r.Protocol == 58 || r.Protocol == nil && (fam == 6 || r.IPVersion == 6) {
		icmpProto = 58
	}
	if (r.ICMP != nil || r.NotICMP != nil) && (r.Protocol == nil || *r.Protocol != icmpProto) {
		b.l4proto(icmpProto, false)
	}
	for _, side := range []struct {
		m   *dataplane.Match
		dst bool
	}{{&r.Src, false}, {&r.Dst, true}} {
		m := side.m
		if fam == 0 {
			break // no address criteria (hasAddr was false)
		}
		nets, all := filterFam(m.Nets, fam)
		if len(m.Nets) > 0 && len(nets) == 0 {
			return rule{}, false, ""
		}
		if len(nets) > 0 && !all {
			b.addr(fam, side.dst, false, nets)
		}
		notNets, none := filterFam(m.NotNets, fam)
		if none {
			return rule{}, false, ""
		}
		if len(notNets) > 0 {
			b.addr(fam, side.dst, true, notNets)
		}
		for _, s := range m.Sets {
			b.setLookup(fam, side.dst, false, ipSetName(s, fam))
		}
		for _, s := range m.NotSets {
			b.setLookup(fam, side.dst, true, ipSetName(s, fam))
		}
		for _, s := range m.PortSets {
			b.portSetLookup(fam, side.dst, false, portSetName(s, fam))
		}
		for _, s := range m.NotPortSets {
			b.portSetLookup(fam, side.dst, true, portSetName(s, fam))
		}
	}
	if len(r.Src.Ports) > 0 {
		b.ports(false, false, r.Src.Ports)
	}
	if len(r.Src.NotPorts) > 0 {
		b.ports(false, true, r.Src.NotPorts)
	}
	if len(r.Dst.Ports) > 0 {
		b.ports(true, false, r.Dst.Ports)
	}
	if len(r.Dst.NotPorts) > 0 {
		b.ports(true, true, r.Dst.NotPorts)
	}
	if r.ICMP != nil {
		b.icmp(icmpProto == 58, r.ICMP, false)
	}
	if r.NotICMP != nil {
		b.icmp(icmpProto == 58, r.NotICMP, true)
	}
	if r.Action == actionFlowLog {
		b.flowLog(chain) // chain is the prefix here (compileRulesFlow)
		return b.rule(), true, ""
	}
	b.counter()
	switch r.Action {
	case dataplane.Allow:
		b.markOr(markAccept)
		b.verdict(expr.VerdictReturn, "")
	case dataplane.Pass:
		b.markOr(markPass)
		b.verdict(expr.VerdictReturn, "")
	case dataplane.Deny:
		b.verdict(expr.VerdictDrop, "")
	case dataplane.Log:
		b.log(logPrefix(chain))
	default:
		return rule{}, false, fmt.Sprintf("unknown action %q", r.Action)
	}
	return b.rule(), true, ""
}

func logPrefix(chain string) string {
	p := "calico " + chain + ": "
	if len(p) > logPfxLimit {
		p = p[:logPfxLimit]
	}
	return p
}

// controlPlaneRules drop traffic from a workload to a control-plane port
// (set cp-ports) of any node address (cp-addr4/6) or of any local address
// of this host (fib daddr type local: the chain is also reached from input).
// They sit between an fw- chain's policies and its profiles.
func controlPlaneRules() []rule {
	return rules(
		func(b *builder) {
			b.nfproto(4)
			b.setLookup(4, true, false, cpAddr4)
			b.protoPortLookup(cpPorts)
			b.verdict(expr.VerdictDrop, "")
		},
		func(b *builder) {
			b.nfproto(6)
			b.setLookup(6, true, false, cpAddr6)
			b.protoPortLookup(cpPorts)
			b.verdict(expr.VerdictDrop, "")
		},
		func(b *builder) {
			b.fibDaddrLocal()
			b.protoPortLookup(cpPorts)
			b.verdict(expr.VerdictDrop, "")
		},
	)
}

// protoPortLookup matches (transport protocol . destination port) against a
// named set of type inet_proto . inet_service. Each field takes one 32-bit
// register (NFT_REG32_00 and _01), which the loads zero-pad.
func (b *builder) protoPortLookup(set string) {
	b.w("meta l4proto . th dport @" + set)
	b.e(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG32_00},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: unix.NFT_REG32_01, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: unix.NFT_REG32_00, SetName: set})
}

// portSetLookup matches (address . transport protocol . port) of the
// source or destination against a named-port set. Each field starts a
// 32-bit register: the address takes NFT_REG32_00 (and _01.._03 for
// IPv6), the protocol and the port the next two; the loads zero-pad.
func (b *builder) portSetLookup(fam int, dst, neg bool, set string) {
	addrRegs := uint32(1)
	if fam == 6 {
		addrRegs = 4
	}
	word := b.loadAddr(fam, dst, unix.NFT_REG32_00)
	off, pw := uint32(0), "th sport"
	if dst {
		off, pw = 2, "th dport"
	}
	b.wf("%s . meta l4proto . %s %s@%s", word, pw, opText(neg), set)
	b.e(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG32_00 + addrRegs},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: unix.NFT_REG32_00 + addrRegs + 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Lookup{SourceRegister: unix.NFT_REG32_00, SetName: set, Invert: neg})
}

// fibDaddrLocal matches packets addressed to a local address of this host.
func (b *builder) fibDaddrLocal() {
	b.w("fib daddr type local")
	b.e(&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(unix.RTN_LOCAL)})
}

// baseChain is the hook of a base chain.
type baseChain struct {
	hook     uint32
	prio     int32
	typ      string
	hookName string
}

var (
	basePre = &baseChain{hook: unix.NF_INET_PRE_ROUTING, prio: -300, typ: "filter", hookName: "prerouting"}
	// Priority filter-10: before iptables' filter table (priority 0, both
	// back ends), so MarkForwardAllowed is set when Docker's FORWARD runs.
	baseFwd   = &baseChain{hook: unix.NF_INET_FORWARD, prio: -10, typ: "filter", hookName: "forward"}
	baseInput = &baseChain{hook: unix.NF_INET_LOCAL_IN, prio: 0, typ: "filter", hookName: "input"}
	basePost  = &baseChain{hook: unix.NF_INET_POST_ROUTING, prio: 100, typ: "nat", hookName: "postrouting"}
)

type hostSettings struct {
	prefix string
	action string // "Drop", "Accept" or "Return"
}

func hostOf(h dataplane.HostConfig) hostSettings {
	s := hostSettings{prefix: h.InterfacePrefix, action: h.EndpointToHostAction}
	if s.prefix == "" {
		s.prefix = defaultPfx
	}
	switch s.action {
	case "Accept", "Return":
	default:
		s.action = "Drop"
	}
	return s
}

func rules(fs ...func(b *builder)) []rule {
	out := make([]rule, 0, len(fs))
	for _, f := range fs {
		b := &builder{}
		f(b)
		out = append(out, b.rule())
	}
	return out
}

// Neighbour discovery a workload needs answered by its host: router
// solicitation, neighbour solicitation and advertisement.
var ndTypes = []uint8{133, 135, 136}

func preroutingRules(h hostSettings) []rule {
	return rules(
		func(b *builder) { b.ifname(false, h.prefix, true, true); b.verdict(expr.VerdictAccept, "") },
		// Link-local sources are never forwarded; they carry neighbour
		// discovery, which input judges.
		func(b *builder) {
			b.nfproto(6)
			b.addr(6, false, false, []netip.Prefix{netip.MustParsePrefix("fe80::/10")})
			b.verdict(expr.VerdictAccept, "")
		},
		// Duplicate address detection comes from the unspecified address.
		func(b *builder) {
			b.nfproto(6)
			b.addr(6, false, false, []netip.Prefix{netip.MustParsePrefix("::/128")})
			b.l4proto(58, false)
			b.verdict(expr.VerdictAccept, "")
		},
		// A DHCP client has no address yet.
		func(b *builder) {
			b.nfproto(4)
			b.addr(4, false, false, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")})
			b.l4proto(17, false)
			b.ports(false, false, []dataplane.PortRange{{First: 68, Last: 68}})
			b.ports(true, false, []dataplane.PortRange{{First: 67, Last: 67}})
			b.verdict(expr.VerdictAccept, "")
		},
		func(b *builder) { b.spoofCheck(4, spoof4, spoof4Net); b.verdict(expr.VerdictDrop, "") },
		func(b *builder) { b.spoofCheck(6, spoof6, spoof6Net); b.verdict(expr.VerdictDrop, "") },
	)
}

func conntrackRules() []func(b *builder) {
	return []func(b *builder){
		func(b *builder) {
			b.ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, "established,related")
			b.verdict(expr.VerdictAccept, "")
		},
		func(b *builder) { b.ctState(expr.CtStateBitINVALID, "invalid"); b.verdict(expr.VerdictDrop, "") },
	}
}

func forwardRules(h hostSettings) []rule {
	fwdMark := []func(b *builder){
		// The bit is ours: clear it on everything, then set it on packets
		// to or from a workload interface, which this chain judges.
		func(b *builder) {
			b.markSet(^MarkForwardAllowed, 0, fmt.Sprintf("& 0x%08x", ^MarkForwardAllowed))
		},
		func(b *builder) { b.ifname(false, h.prefix, true, false); b.markOr(MarkForwardAllowed) },
		func(b *builder) { b.ifname(true, h.prefix, true, false); b.markOr(MarkForwardAllowed) },
	}
	return rules(append(append(fwdMark, conntrackRules()...),
		func(b *builder) { b.ifname(false, h.prefix, true, false); b.markClear() },
		func(b *builder) { b.ifnameVmap(false, fwMap) },
		// Reached with the accept mark only from a known interface whose
		// egress allowed the packet; without it the interface is unknown.
		func(b *builder) {
			b.ifname(false, h.prefix, true, false)
			b.markTest(markAccept, 0)
			b.verdict(expr.VerdictDrop, "")
		},
		func(b *builder) { b.ifnameVmap(true, twMap) },
		func(b *builder) { b.ifname(true, h.prefix, true, false); b.verdict(expr.VerdictDrop, "") },
	)...)
}

func inputRules(h hostSettings) []rule {
	fs := []func(b *builder){
		func(b *builder) { b.ifname(false, h.prefix, true, true); b.verdict(expr.VerdictAccept, "") },
		// Neighbour discovery first: conntrack does not track it, and
		// IPv6 must work whatever EndpointToHostAction says.
		func(b *builder) { b.l4proto(58, false); b.icmp6Types(ndTypes); b.verdict(expr.VerdictAccept, "") },
	}
	fs = append(fs, conntrackRules()...)
	fs = append(fs,
		func(b *builder) {
			b.nfproto(4)
			b.l4proto(17, false)
			b.ports(false, false, []dataplane.PortRange{{First: 68, Last: 68}})
			b.ports(true, false, []dataplane.PortRange{{First: 67, Last: 67}})
			b.verdict(expr.VerdictAccept, "")
		},
		func(b *builder) {
			b.nfproto(6)
			b.l4proto(17, false)
			b.ports(false, false, []dataplane.PortRange{{First: 546, Last: 546}})
			b.ports(true, false, []dataplane.PortRange{{First: 547, Last: 547}})
			b.verdict(expr.VerdictAccept, "")
		},
	)
	if h.action == "Drop" {
		fs = append(fs, func(b *builder) { b.verdict(expr.VerdictDrop, "") })
		return rules(fs...)
	}
	// The workload's egress policy still applies to traffic to its host.
	fs = append(fs,
		func(b *builder) { b.markClear() },
		func(b *builder) { b.ifnameVmap(false, fwMap) },
		func(b *builder) { b.markTest(markAccept, 0); b.verdict(expr.VerdictDrop, "") },
	)
	if h.action == "Accept" {
		fs = append(fs, func(b *builder) { b.verdict(expr.VerdictAccept, "") })
	} else {
		fs = append(fs, func(b *builder) { b.verdict(expr.VerdictReturn, "") })
	}
	return rules(fs...)
}

func postroutingRules(h hostSettings) []rule {
	nat := func(fam int, masq, pools string) func(b *builder) {
		return func(b *builder) {
			b.nfproto(fam)
			b.setLookup(fam, false, false, masq)
			b.setLookup(fam, true, true, pools)
			b.masquerade()
		}
	}
	return rules(append(hairpinRules(),
		func(b *builder) { b.ifname(true, h.prefix, true, false); b.verdict(expr.VerdictAccept, "") },
		nat(4, masq4, pools4),
		nat(6, masq6, pools6),
	)...)
}

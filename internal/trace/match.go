package trace

import (
	"net/netip"
	"slices"

	"github.com/calico-docker/calico/internal/dataplane"
)

// SetIndex holds the members of a Desired's sets by ID.
type SetIndex struct {
	addrs map[string][]netip.Prefix
	ports map[string][]dataplane.AddrProtoPort // named-port sets
}

// setIndex indexes d's sets.
func setIndex(d *dataplane.Desired) *SetIndex {
	x := &SetIndex{addrs: make(map[string][]netip.Prefix, len(d.Sets)), ports: map[string][]dataplane.AddrProtoPort{}}
	for _, s := range d.Sets {
		if s.NamedPort != "" {
			x.ports[s.ID] = s.PortMembers
			continue
		}
		x.addrs[s.ID] = s.Members
	}
	return x
}

// Matches reports whether rule r matches pkt, with the same meaning as the
// nft driver's compiled rule (see package nft, compileRule): every present
// criterion must hold; a list matches when any element does, a Not list
// when none does; a rule with ports needs TCP, UDP or SCTP; a rule whose
// nets leave no prefix of the packet's family never matches; a named-port
// set holds the (address, protocol, port) of the packet's side.
func Matches(r *dataplane.Rule, pkt Packet, sets *SetIndex) bool {
	fam := 4
	if pkt.Src.Is6() && !pkt.Src.Is4In6() {
		fam = 6
	}
	if r.IPVersion != 0 && r.IPVersion != fam {
		return false
	}
	if r.Protocol != nil {
		if fam == 4 && *r.Protocol == 58 || fam == 6 && *r.Protocol == 1 {
			return false
		}
		if *r.Protocol != pkt.Protocol {
			return false
		}
	}
	if r.NotProtocol != nil && *r.NotProtocol == pkt.Protocol {
		return false
	}
	hasPorts := len(r.Src.Ports)+len(r.Src.NotPorts)+len(r.Dst.Ports)+len(r.Dst.NotPorts) > 0 ||
		len(r.Src.PortSets)+len(r.Src.NotPortSets)+len(r.Dst.PortSets)+len(r.Dst.NotPortSets) > 0
	if hasPorts && pkt.Protocol != 6 && pkt.Protocol != 17 && pkt.Protocol != 132 {
		return false
	}
	icmpProto := uint8(1)
	if fam == 6 {
		icmpProto = 58
	}
	if (r.ICMP != nil || r.NotICMP != nil) && pkt.Protocol != icmpProto {
		return false
	}
	if !matchSide(&r.Src, pkt.Src, fam, sets) || !matchSide(&r.Dst, pkt.Dst, fam, sets) {
		return false
	}
	// An unknown source port (0) is in no named-port set, as it is in no
	// port list.
	if !matchPortSets(&r.Src, dataplane.AddrProtoPort{Addr: pkt.Src, Protocol: pkt.Protocol, Port: pkt.SrcPort}, sets) ||
		!matchPortSets(&r.Dst, dataplane.AddrProtoPort{Addr: pkt.Dst, Protocol: pkt.Protocol, Port: pkt.DstPort}, sets) {
		return false
	}
	if len(r.Src.Ports) > 0 && (pkt.SrcPort == 0 || !inPorts(r.Src.Ports, pkt.SrcPort)) {
		return false
	}
	if len(r.Src.NotPorts) > 0 && inPorts(r.Src.NotPorts, pkt.SrcPort) {
		return false
	}
	if len(r.Dst.Ports) > 0 && !inPorts(r.Dst.Ports, pkt.DstPort) {
		return false
	}
	if len(r.Dst.NotPorts) > 0 && inPorts(r.Dst.NotPorts, pkt.DstPort) {
		return false
	}
	if r.ICMP != nil && !icmpMatch(r.ICMP, pkt) {
		return false
	}
	if r.NotICMP != nil && icmpMatch(r.NotICMP, pkt) {
		return false
	}
	return true
}

func matchPortSets(m *dataplane.Match, k dataplane.AddrProtoPort, sets *SetIndex) bool {
	k.Addr = k.Addr.Unmap()
	in := func(id string) bool {
		return k.Port != 0 && slices.Contains(sets.ports[id], k)
	}
	for _, id := range m.PortSets {
		if !in(id) {
			return false
		}
	}
	for _, id := range m.NotPortSets {
		if in(id) {
			return false
		}
	}
	return true
}

func matchSide(m *dataplane.Match, a netip.Addr, fam int, sets *SetIndex) bool {
	if len(m.Nets) > 0 {
		var any, hit bool
		for _, p := range m.Nets {
			if p.IsValid() && (p.Addr().Is4() == (fam == 4)) {
				any = true
				hit = hit || p.Contains(a)
			}
		}
		if !any || !hit {
			return false
		}
	}
	for _, p := range m.NotNets {
		if p.IsValid() && p.Addr().Is4() == (fam == 4) && p.Contains(a) {
			return false
		}
	}
	for _, id := range m.Sets {
		if !inSet(sets.addrs[id], a) {
			return false
		}
	}
	for _, id := range m.NotSets {
		if inSet(sets.addrs[id], a) {
			return false
		}
	}
	return true
}

func inSet(members []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(members, func(p netip.Prefix) bool { return p.Contains(a) })
}

func inPorts(rs []dataplane.PortRange, p uint16) bool {
	return slices.ContainsFunc(rs, func(r dataplane.PortRange) bool { return p >= r.First && p <= r.Last })
}

func icmpMatch(m *dataplane.ICMPMatch, pkt Packet) bool {
	if m.Type != pkt.ICMPType {
		return false
	}
	return m.Code == nil || *m.Code == pkt.ICMPCode
}

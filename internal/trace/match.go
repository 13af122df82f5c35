package trace

import (
	"net/netip"
	"slices"

	"github.com/calico-docker/calico/internal/dataplane"
)

// setIndex maps IPSet IDs to their members.
func setIndex(d *dataplane.Desired) map[string][]netip.Prefix {
	m := make(map[string][]netip.Prefix, len(d.Sets))
	for _, s := range d.Sets {
		m[s.ID] = s.Members
	}
	return m
}

// Matches reports whether rule r matches pkt, with the same meaning as the
// nft driver's compiled rule (see package nft, compileRule): every present
// criterion must hold; a list matches when any element does, a Not list
// when none does; a rule with ports needs TCP, UDP or SCTP; a rule whose
// nets leave no prefix of the packet's family never matches.
func Matches(r *dataplane.Rule, pkt Packet, sets map[string][]netip.Prefix) bool {
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
	hasPorts := len(r.Src.Ports)+len(r.Src.NotPorts)+len(r.Dst.Ports)+len(r.Dst.NotPorts) > 0
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

func matchSide(m *dataplane.Match, a netip.Addr, fam int, sets map[string][]netip.Prefix) bool {
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
		if !inSet(sets[id], a) {
			return false
		}
	}
	for _, id := range m.NotSets {
		if inSet(sets[id], a) {
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

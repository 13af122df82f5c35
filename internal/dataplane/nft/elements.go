package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"

	"github.com/calico-docker/calico/internal/dataplane"
)

// setType describes the key (and data) of a set in the terms the kernel
// reports back, so a set found in the kernel can be checked against ours.
type setType struct {
	name     string // for Render: "ipv4_addr", "ifname . ipv4_addr", ...
	key      nftables.SetDatatype
	fields   []uint32 // field lengths of a concatenated key, nil otherwise
	interval bool
	vmap     bool
	// data and dataFields describe the value of a data map (not a verdict
	// map): its concatenated type and field lengths; nil for other sets.
	data       nftables.SetDatatype
	dataFields []uint32
	// byteOrder is the key byte order hint the nft CLI needs to print
	// keys (1 host, 2 network; 0: none). The kernel ignores it.
	byteOrder uint32
}

var (
	typeIP4      = setType{name: "ipv4_addr", key: nftables.TypeIPAddr, interval: true, byteOrder: 2}
	typeIP6      = setType{name: "ipv6_addr", key: nftables.TypeIP6Addr, interval: true, byteOrder: 2}
	typeDispatch = setType{name: "ifname : verdict", key: nftables.TypeIFName, vmap: true, byteOrder: 1}
	// Anti-spoofing: exact addresses in hash sets (cheap to add to and
	// remove from at any size), other prefixes in interval sets, whose
	// kernel backend (pipapo) makes each removal cost O(set size).
	typeSpoof4 = setType{name: "ifname . ipv4_addr", key: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr),
		fields: []uint32{16, 4}}
	typeSpoof6 = setType{name: "ifname . ipv6_addr", key: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIP6Addr),
		fields: []uint32{16, 16}}
	typeSpoof4Net = setType{name: "ifname . ipv4_addr (interval)", key: typeSpoof4.key, fields: typeSpoof4.fields, interval: true}
	typeSpoof6Net = setType{name: "ifname . ipv6_addr (interval)", key: typeSpoof6.key, fields: typeSpoof6.fields, interval: true}
	// Control-plane ports: protocol . port, each field padded to 4 bytes.
	typeProtoPort = setType{name: "inet_proto . inet_service", key: nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
		fields: []uint32{1, 2}}
	// Named-port sets: address . protocol . port, hash sets (members are
	// single addresses, added and removed one by one).
	typeNP4 = setType{name: "ipv4_addr . inet_proto . inet_service", key: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService),
		fields: []uint32{4, 1, 2}}
	typeNP6 = setType{name: "ipv6_addr . inet_proto . inet_service", key: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService),
		fields: []uint32{16, 1, 2}}
	// Anonymous set types used inside rules.
	typePorts   = setType{name: "inet_service", key: nftables.TypeInetService, interval: true, byteOrder: 2}
	typeProtos  = setType{name: "inet_proto", key: nftables.TypeInetProto, byteOrder: 2}
	typeICMP6   = setType{name: "icmpv6_type", key: nftables.TypeICMP6Type, byteOrder: 2}
	allSetTypes = []setType{typeIP4, typeIP6, typeDispatch, typeSpoof4, typeSpoof6, typeSpoof4Net, typeSpoof6Net,
		typeHP4, typeHP6, typeHP4IP, typeHP6IP, typeHairpin4, typeHairpin6, typeProtoPort, typeNP4, typeNP6}
)

// fieldsLen is the length of a concatenation: each field takes whole
// 32-bit registers.
func fieldsLen(fields []uint32) int {
	n := 0
	for _, f := range fields {
		n += int(f+3) / 4 * 4
	}
	return n
}

func (t setType) keyLen() int {
	if t.fields != nil {
		return fieldsLen(t.fields)
	}
	return int(t.key.Bytes)
}

// isData reports whether the set is a data map (values are bytes).
func (t setType) isData() bool { return t.dataFields != nil }

// isMap reports whether the set is a map of any kind.
func (t setType) isMap() bool { return t.vmap || t.isData() }

// concat reports whether the key is a concatenation. With intervals the
// kernel keeps such an element as a key and an inclusive key end (pipapo),
// not as a start element and an exclusive end element (rbtree).
func (t setType) concat() bool { return t.fields != nil }

// same reports whether a set the kernel reported has this type.
func (t setType) same(s *nftables.Set) bool {
	switch {
	case t.vmap && s.IsMap && s.KeyType.GetNFTMagic() == nftables.TypeVerdict.GetNFTMagic():
		// The library (v0.3.0) stores a verdict map's data type in
		// KeyType, losing the key type; the map flag and our naming are
		// what is left to go by.
	case s.KeyType.GetNFTMagic() != t.key.GetNFTMagic() || int(s.KeyType.Bytes) != t.keyLen():
		return false
	case t.isData() && (s.DataType.GetNFTMagic() != t.data.GetNFTMagic() || int(s.DataType.Bytes) != fieldsLen(t.dataFields)):
		return false
	}
	return s.Interval == t.interval && s.IsMap == t.isMap() && s.Concatenation == t.concat()
}

// elem is one set element. For interval sets without concatenation, end is
// the exclusive end of the range (nil: up to the largest key), which the
// kernel stores as a second element flagged interval-end. For concatenated
// interval sets, end is the inclusive last key. For verdict maps, verdict is
// the mapped verdict ("goto fw-cali1"); for data maps, the value's bytes.
type elem struct {
	key, end []byte
	verdict  string
}

// mapKey is the element's identity within its set: keys have a fixed
// length per set type, so key followed by end is unambiguous.
func (e elem) mapKey() string { return string(e.key) + string(e.end) }

// elemSet is a named set's content: mapKey -> verdict ("" for plain sets).
type elemSet map[string]string

func (s elemSet) add(e elem) { s[e.mapKey()] = e.verdict }

// decode turns a mapKey back into an element of a set of type t.
func (t setType) decode(k, verdict string) elem {
	n := t.keyLen()
	e := elem{key: []byte(k[:n]), verdict: verdict}
	if len(k) > n {
		e.end = []byte(k[n:])
	}
	return e
}

// addrRange is a half-open range [start, end) of addresses of one family;
// end is nil when the range reaches the top of the address space.
type addrRange struct {
	start, end []byte
}

// prefixRange converts a prefix to its half-open address range.
func prefixRange(p netip.Prefix) addrRange {
	p = p.Masked()
	start := p.Addr().AsSlice()
	bits := len(start) * 8
	// end = start + 2^(bits-p.Bits()), computed as big-endian addition.
	end := slices.Clone(start)
	carry := true
	hostBits := bits - p.Bits()
	// Add 1 at bit position hostBits (from the least significant end).
	byteIdx := len(end) - 1 - hostBits/8
	if byteIdx < 0 {
		return addrRange{start: start} // /0: the whole space
	}
	add := uint16(1) << (hostBits % 8)
	for i := byteIdx; i >= 0 && carry; i-- {
		sum := uint16(end[i]) + add
		end[i] = byte(sum)
		carry = sum > 0xff
		add = 1
	}
	if carry {
		return addrRange{start: start} // wrapped: the range reaches the top
	}
	return addrRange{start: start, end: end}
}

// lastAddr returns the inclusive last address of a half-open range.
func (r addrRange) lastAddr() []byte {
	if r.end == nil {
		out := make([]byte, len(r.start))
		for i := range out {
			out[i] = 0xff
		}
		return out
	}
	out := slices.Clone(r.end)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			break
		}
	}
	return out
}

// ranges converts prefixes of one family (4 or 6) to sorted ranges, merging
// nested and overlapping ones, which an interval set cannot hold side by side.
// Adjacent ranges stay separate so that adding or removing one address
// changes one element, not a merged run.
func ranges(ps []netip.Prefix, fam int) []addrRange {
	var out []addrRange
	for _, p := range ps {
		if !p.IsValid() || familyOf(p) != fam {
			continue
		}
		out = append(out, prefixRange(p))
	}
	slices.SortFunc(out, func(a, b addrRange) int {
		if c := bytes.Compare(a.start, b.start); c != 0 {
			return c
		}
		return cmpEnd(b.end, a.end) // wider first, so nested ones follow it
	})
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			if last.end == nil || bytes.Compare(r.start, last.end) < 0 {
				if cmpEnd(r.end, last.end) > 0 {
					last.end = r.end
				}
				continue
			}
		}
		merged = append(merged, r)
	}
	return merged
}

// cmpEnd compares exclusive ends where nil means beyond every address.
func cmpEnd(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

func familyOf(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 4
	}
	return 6
}

// ipElems returns the elements of an ipv4_addr or ipv6_addr interval set.
func ipElems(ps []netip.Prefix, fam int) elemSet {
	rs := ranges(ps, fam)
	s := make(elemSet, len(rs))
	for _, r := range rs {
		s.add(elem{key: r.start, end: r.end})
	}
	return s
}

// protoPortElems returns the elements of an inet_proto . inet_service set.
func protoPortElems(ps []dataplane.ProtoPort) elemSet {
	s := make(elemSet, len(ps))
	for _, p := range ps {
		k := make([]byte, 8)
		k[0] = p.Protocol
		binary.BigEndian.PutUint16(k[4:], p.Port)
		s.add(elem{key: k})
	}
	return s
}

// namedPortElems returns the elements of family fam of a named-port set:
// address . protocol . port, each field padded to 4 bytes.
func namedPortElems(ms []dataplane.AddrProtoPort, fam int) elemSet {
	s := elemSet{}
	for _, m := range ms {
		if !m.Addr.IsValid() || (fam == 4) != m.Addr.Unmap().Is4() {
			continue
		}
		a := m.Addr.Unmap().AsSlice()
		k := make([]byte, len(a)+8)
		copy(k, a)
		k[len(a)] = m.Protocol
		binary.BigEndian.PutUint16(k[len(a)+4:], m.Port)
		s.add(elem{key: k})
	}
	return s
}

// addrPrefixes turns addresses into single-address prefixes.
func addrPrefixes(as []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(as))
	for _, a := range as {
		if a.IsValid() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// ifnameKey pads an interface name to the 16 bytes the kernel compares.
func ifnameKey(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}

func ifnameFromKey(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// spoofElem returns the anti-spoofing element of an endpoint address
// range and whether it belongs in the interval set (not a single address).
func spoofElem(iface string, r addrRange) (elem, bool) {
	k := ifnameKey(iface)
	last := r.lastAddr()
	if r.end != nil && bytes.Equal(incr(r.start), r.end) {
		return elem{key: append(k, r.start...)}, false
	}
	return elem{key: append(slices.Clone(k), r.start...), end: append(k, last...)}, true
}

// portRanges sorts and merges port ranges (adjacent ones too: they live in
// anonymous sets that are never edited).
func portRanges(ps []dataplane.PortRange) []dataplane.PortRange {
	out := slices.Clone(ps)
	for i, p := range out {
		if p.First > p.Last {
			out[i].First, out[i].Last = p.Last, p.First
		}
	}
	slices.SortFunc(out, func(a, b dataplane.PortRange) int { return int(a.First) - int(b.First) })
	merged := out[:0]
	for _, p := range out {
		if n := len(merged); n > 0 && uint32(p.First) <= uint32(merged[n-1].Last)+1 {
			if p.Last > merged[n-1].Last {
				merged[n-1].Last = p.Last
			}
			continue
		}
		merged = append(merged, p)
	}
	return merged
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// addrText renders a key of an address set back as an address.
func addrText(b []byte) string {
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

// rangePrefix returns the prefix that covers exactly [start, end), if any.
func rangePrefix(r addrRange) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(r.start)
	if !ok {
		return netip.Prefix{}, false
	}
	// The prefix length is fixed by the range's size; compare candidates
	// from the longest (the usual /32 or /128) down.
	for bits := a.BitLen(); bits >= 0; bits-- {
		p := netip.PrefixFrom(a, bits)
		if p.Masked().Addr() != a {
			break // a is not aligned for shorter prefixes
		}
		pr := prefixRange(p)
		if c := cmpEnd(pr.end, r.end); c == 0 {
			return p, true
		} else if c > 0 {
			break
		}
	}
	return netip.Prefix{}, false
}

// rangeText renders [start, end) as an address or prefix when it is one,
// else as "first-last".
func rangeText(r addrRange) string {
	if p, ok := rangePrefix(r); ok {
		if p.Bits() == p.Addr().BitLen() {
			return p.Addr().String()
		}
		return p.String()
	}
	return addrText(r.start) + "-" + addrText(r.lastAddr())
}

// elemText renders one element of a named set for Render.
func (t setType) elemText(e elem) string {
	switch {
	case t.isData() || t.name == typeHairpin4.name || t.name == typeHairpin6.name:
		return hostPortText(t, e)
	case t.vmap:
		return fmt.Sprintf("%q : %s", ifnameFromKey(e.key), e.verdict)
	case t.name == typeProtoPort.name && len(e.key) == 8:
		return fmt.Sprintf("%s . %d", protoText(e.key[0]), binary.BigEndian.Uint16(e.key[4:6]))
	case (t.name == typeNP4.name || t.name == typeNP6.name) && len(e.key) >= 12:
		n := len(e.key) - 8
		return fmt.Sprintf("%s . %s . %d", addrText(e.key[:n]), protoText(e.key[n]), binary.BigEndian.Uint16(e.key[n+4:n+6]))
	case t.concat() && e.end == nil:
		return fmt.Sprintf("%q . %s", ifnameFromKey(e.key[:16]), addrText(e.key[16:]))
	case t.concat():
		iface := ifnameFromKey(e.key[:16])
		start := e.key[16:]
		end := e.end[16:]
		// Inclusive end back to an exclusive one for rangeText.
		r := addrRange{start: start}
		if !bytes.Equal(end, bytes.Repeat([]byte{0xff}, len(end))) {
			r.end = incr(end)
		}
		return fmt.Sprintf("%q . %s", iface, rangeText(r))
	default:
		return rangeText(addrRange{start: e.key, end: e.end})
	}
}

func incr(b []byte) []byte {
	out := slices.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			break
		}
	}
	return out
}

// sortedElemTexts renders a set's elements in a stable order.
func (t setType) sortedElemTexts(s elemSet) []string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, t.elemText(t.decode(k, s[k])))
	}
	return out
}

// joinElems formats element texts the way nft prints them.
func joinElems(es []string) string {
	if len(es) == 0 {
		return ""
	}
	return "{ " + strings.Join(es, ", ") + " }"
}

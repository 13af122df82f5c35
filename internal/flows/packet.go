package flows

import (
	"encoding/binary"
	"net/netip"
)

// Tuple is what a flow is keyed on.
type Tuple struct {
	Src, Dst netip.Addr
	Proto    uint8
	SrcPort  uint16
	DstPort  uint16 // for ICMP: type<<8 | code
}

// ParsePacket reads the 5-tuple of an IPv4 or IPv6 packet (no IPv6
// extension headers: the transport fields stay zero behind one).
func ParsePacket(b []byte) (Tuple, bool) {
	var t Tuple
	if len(b) < 1 {
		return t, false
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return t, false
		}
		ihl := int(b[0]&0x0f) * 4
		t.Proto = b[9]
		t.Src = netip.AddrFrom4([4]byte(b[12:16]))
		t.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		if ihl >= 20 && len(b) >= ihl {
			l4 = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return t, false
		}
		t.Proto = b[6]
		t.Src = netip.AddrFrom16([16]byte(b[8:24]))
		t.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return t, false
	}
	switch t.Proto {
	case 6, 17, 132:
		if len(l4) >= 4 {
			t.SrcPort = binary.BigEndian.Uint16(l4[0:2])
			t.DstPort = binary.BigEndian.Uint16(l4[2:4])
		}
	case 1, 58:
		if len(l4) >= 2 {
			t.DstPort = uint16(l4[0])<<8 | uint16(l4[1])
		}
	}
	return t, true
}

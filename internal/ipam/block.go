package ipam

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Block is one IPAM block as stored at its block key: Calico's AllocationBlock
// JSON. Allocations[i] is nil when address i of the block is free, otherwise
// the index into Attributes of who holds it. Unallocated lists the free
// ordinals in the order they will be handed out; released ordinals go to the
// back so that an address is not reused at once.
//
// Every method is pure: it changes the Block in memory and does no I/O.
// Callers decode a fresh copy for each compare-and-swap attempt.
type Block struct {
	CIDR           netip.Prefix `json:"cidr"`
	Affinity       *string      `json:"affinity"`
	StrictAffinity bool         `json:"strictAffinity"`
	Allocations    []*int       `json:"allocations"`
	Unallocated    []int        `json:"unallocated"`
	Attributes     []Attribute  `json:"attributes"`
	SequenceNumber uint64       `json:"sequenceNumber"`
	// SequenceNumberForAllocation maps an assigned ordinal ("5") to the
	// SequenceNumber it was assigned at, as Calico's model records it.
	SequenceNumberForAllocation map[string]uint64 `json:"sequenceNumberForAllocation,omitempty"`
	// Deleted is Calico's mark of a block being deleted.
	Deleted bool `json:"deleted"`
	// EmptySince is when the block last became empty; the grace period of
	// ReleaseEmptyBlocks counts from it. Not in Calico's model.
	EmptySince *time.Time `json:"emptySince,omitempty"`
}

// Attribute records who holds an address: the handle and the secondary
// attributes (see Attrs).
type Attribute struct {
	HandleID  *string           `json:"handle_id"`
	Secondary map[string]string `json:"secondary"`
}

// Handle returns the attribute's handle or "".
func (a Attribute) Handle() string {
	if a.HandleID == nil {
		return ""
	}
	return *a.HandleID
}

// AffinityPrefix is how a block's affinity names its node: "host:<node>".
const AffinityPrefix = "host:"

// NewBlock returns an empty block for cidr with every address free, affine to
// node (no affinity when node is "").
func NewBlock(cidr netip.Prefix, node string) *Block {
	cidr = cidr.Masked()
	n := prefixSize(cidr)
	b := &Block{CIDR: cidr, Allocations: make([]*int, n), Unallocated: make([]int, n)}
	for i := range b.Unallocated {
		b.Unallocated[i] = i
	}
	b.SetHost(node)
	return b
}

// prefixSize is the number of addresses in a block-sized prefix. Blocks are
// /20 to /32 (IPv4) or /116 to /128 (IPv6), so it fits an int.
func prefixSize(p netip.Prefix) int {
	host := p.Addr().BitLen() - p.Bits()
	if host > 30 {
		host = 30 // never a block; keeps callers from overflowing
	}
	return 1 << host
}

// Host returns the node the block is affine to, or "".
func (b *Block) Host() string {
	if b.Affinity == nil {
		return ""
	}
	return strings.TrimPrefix(*b.Affinity, AffinityPrefix)
}

// SetHost sets the block's affinity to node; "" removes it.
func (b *Block) SetHost(node string) {
	if node == "" {
		b.Affinity = nil
		return
	}
	s := AffinityPrefix + node
	b.Affinity = &s
}

// Size is the number of addresses in the block.
func (b *Block) Size() int { return len(b.Allocations) }

// NumFree is the number of free addresses.
func (b *Block) NumFree() int { return len(b.Unallocated) }

// InUse is the number of assigned addresses.
func (b *Block) InUse() int {
	n := 0
	for _, a := range b.Allocations {
		if a != nil {
			n++
		}
	}
	return n
}

// Empty reports whether no address is assigned.
func (b *Block) Empty() bool { return b.InUse() == 0 }

// Addr returns the address with ordinal i in the block.
func (b *Block) Addr(i int) netip.Addr { return addOffset(b.CIDR.Addr(), uint64(i)) }

// Ordinal returns the ordinal of ip in the block, or false if ip is outside it.
func (b *Block) Ordinal(ip netip.Addr) (int, bool) {
	if !b.CIDR.Contains(ip) {
		return 0, false
	}
	off := offset(b.CIDR.Addr(), ip)
	if off >= uint64(len(b.Allocations)) {
		return 0, false
	}
	return int(off), true
}

// attrIndex returns the index of an attribute equal to (handle, sec),
// appending one if there is none.
func (b *Block) attrIndex(handle string, sec map[string]string) int {
	for i, a := range b.Attributes {
		if a.Handle() == handle && maps.Equal(a.Secondary, sec) {
			return i
		}
	}
	h := handle
	b.Attributes = append(b.Attributes, Attribute{HandleID: &h, Secondary: maps.Clone(sec)})
	return len(b.Attributes) - 1
}

// Assign takes up to n free addresses, in Unallocated order, for handle with
// the secondary attributes sec, and returns them. Fewer than n come back
// when the block has fewer free.
func (b *Block) Assign(n int, handle string, sec map[string]string) []netip.Addr {
	if n <= 0 || len(b.Unallocated) == 0 {
		return nil
	}
	n = min(n, len(b.Unallocated))
	idx := b.attrIndex(handle, sec)
	out := make([]netip.Addr, 0, n)
	for _, ord := range b.Unallocated[:n] {
		v := idx
		b.Allocations[ord] = &v
		b.setSeq(ord)
		out = append(out, b.Addr(ord))
	}
	b.Unallocated = slices.Clone(b.Unallocated[n:])
	b.touch()
	b.EmptySince = nil
	return out
}

// InUseError says an address is already assigned, and to whom.
type InUseError struct {
	IP     netip.Addr
	Handle string
	Attrs  Attrs
}

func (e *InUseError) Error() string {
	s := fmt.Sprintf("%s is already assigned to handle %q", e.IP, e.Handle)
	if d := e.Attrs.Describe(); d != "" {
		s += " (" + d + ")"
	}
	return s
}

// AssignAddr assigns the specific address ip to handle. It fails with an
// *InUseError if another handle holds it; if handle already holds it, it
// succeeds and reports changed=false.
func (b *Block) AssignAddr(ip netip.Addr, handle string, sec map[string]string) (changed bool, err error) {
	ord, ok := b.Ordinal(ip)
	if !ok {
		return false, fmt.Errorf("%s is not in block %s", ip, b.CIDR)
	}
	if a := b.Allocations[ord]; a != nil {
		attr := b.attr(*a)
		if attr.Handle() == handle && handle != "" {
			return false, nil
		}
		return false, &InUseError{IP: ip, Handle: attr.Handle(), Attrs: AttrsFromSecondary(attr.Secondary)}
	}
	pos := slices.Index(b.Unallocated, ord)
	if pos < 0 {
		return false, fmt.Errorf("%s in block %s is neither assigned nor free (the block is inconsistent; run calico ipam check)", ip, b.CIDR)
	}
	idx := b.attrIndex(handle, sec)
	b.Allocations[ord] = &idx
	b.setSeq(ord)
	b.Unallocated = slices.Delete(slices.Clone(b.Unallocated), pos, pos+1)
	b.touch()
	b.EmptySince = nil
	return true, nil
}

func (b *Block) attr(i int) Attribute {
	if i < 0 || i >= len(b.Attributes) {
		return Attribute{}
	}
	return b.Attributes[i]
}

// Release frees the given addresses of the block. It returns how many
// addresses each handle lost, and the addresses that were not assigned.
// now stamps EmptySince when the block becomes empty. An address outside the
// block is an error and nothing changes.
func (b *Block) Release(ips []netip.Addr, now time.Time) (byHandle map[string]int, notAssigned []netip.Addr, err error) {
	ords := make([]int, 0, len(ips))
	for _, ip := range ips {
		ord, ok := b.Ordinal(ip)
		if !ok {
			return nil, nil, fmt.Errorf("%s is not in block %s", ip, b.CIDR)
		}
		ords = append(ords, ord)
	}
	byHandle = map[string]int{}
	seen := map[int]bool{}
	for i, ord := range ords {
		if seen[ord] {
			continue
		}
		seen[ord] = true
		a := b.Allocations[ord]
		if a == nil {
			notAssigned = append(notAssigned, ips[i])
			continue
		}
		byHandle[b.attr(*a).Handle()]++
		b.Allocations[ord] = nil
		delete(b.SequenceNumberForAllocation, strconv.Itoa(ord))
		b.Unallocated = append(b.Unallocated, ord)
	}
	if len(notAssigned) < len(seen) {
		b.compactAttributes()
		b.touch()
		if b.Empty() {
			t := now.UTC()
			b.EmptySince = &t
		}
	}
	return byHandle, notAssigned, nil
}

// ReleaseHandle frees every address held by handle and returns them.
func (b *Block) ReleaseHandle(handle string, now time.Time) []netip.Addr {
	ips := b.AddrsOf(handle)
	if len(ips) > 0 {
		_, _, _ = b.Release(ips, now) // the addresses are in the block by construction
	}
	return ips
}

// AddrsOf returns the addresses held by handle, in ordinal order.
func (b *Block) AddrsOf(handle string) []netip.Addr {
	var out []netip.Addr
	for ord, a := range b.Allocations {
		if a != nil && b.attr(*a).Handle() == handle {
			out = append(out, b.Addr(ord))
		}
	}
	return out
}

// HandleCounts returns how many addresses each handle holds in the block.
func (b *Block) HandleCounts() map[string]int {
	out := map[string]int{}
	for _, a := range b.Allocations {
		if a != nil {
			out[b.attr(*a).Handle()]++
		}
	}
	return out
}

// Allocation is one assigned address of a block.
type Allocation struct {
	IP     netip.Addr
	Handle string
	Attrs  Attrs
	// AttrMissing: the allocation points at an attribute that does not exist,
	// so nobody is recorded as holding the address.
	AttrMissing bool
}

// Allocations returns the assigned addresses in ordinal order.
func (b *Block) AllocationList() []Allocation {
	var out []Allocation
	for ord, a := range b.Allocations {
		if a == nil {
			continue
		}
		al := Allocation{IP: b.Addr(ord)}
		if *a < 0 || *a >= len(b.Attributes) {
			al.AttrMissing = true
		} else {
			at := b.Attributes[*a]
			al.Handle = at.Handle()
			al.Attrs = AttrsFromSecondary(at.Secondary)
		}
		out = append(out, al)
	}
	return out
}

// Holder returns who holds ip, or false if it is free or outside the block.
func (b *Block) Holder(ip netip.Addr) (Allocation, bool) {
	ord, ok := b.Ordinal(ip)
	if !ok || b.Allocations[ord] == nil {
		return Allocation{}, false
	}
	a := *b.Allocations[ord]
	if a < 0 || a >= len(b.Attributes) {
		return Allocation{IP: ip, AttrMissing: true}, true
	}
	return Allocation{IP: ip, Handle: b.Attributes[a].Handle(), Attrs: AttrsFromSecondary(b.Attributes[a].Secondary)}, true
}

// Borrowed returns the allocations made for a node other than the block's
// affine node: each needs its own /32 (/128) route to that node.
func (b *Block) Borrowed() []Allocation {
	var out []Allocation
	host := b.Host()
	for _, al := range b.AllocationList() {
		if al.Attrs.Node != "" && al.Attrs.Node != host {
			out = append(out, al)
		}
	}
	return out
}

// SetAttrs replaces the secondary attributes of every address held by handle
// and returns how many addresses that touched.
func (b *Block) SetAttrs(handle string, sec map[string]string) int {
	ords := []int{}
	for ord, a := range b.Allocations {
		if a != nil && b.attr(*a).Handle() == handle {
			ords = append(ords, ord)
		}
	}
	if len(ords) == 0 {
		return 0
	}
	idx := b.attrIndex(handle, sec)
	for _, ord := range ords {
		v := idx
		b.Allocations[ord] = &v
	}
	b.compactAttributes()
	b.touch()
	return len(ords)
}

// compactAttributes drops attributes no allocation refers to and renumbers.
// Allocations pointing at a missing attribute are left alone (check reports them).
func (b *Block) compactAttributes() {
	used := make([]bool, len(b.Attributes))
	for _, a := range b.Allocations {
		if a != nil && *a >= 0 && *a < len(used) {
			used[*a] = true
		}
	}
	remap := make([]int, len(b.Attributes))
	kept := b.Attributes[:0:0]
	for i, at := range b.Attributes {
		if used[i] {
			remap[i] = len(kept)
			kept = append(kept, at)
		}
	}
	for i, a := range b.Allocations {
		if a != nil && *a >= 0 && *a < len(remap) {
			v := remap[*a]
			b.Allocations[i] = &v
		}
	}
	b.Attributes = kept
}

func (b *Block) touch() { b.SequenceNumber++ }

// setSeq records the sequence number an ordinal is assigned at (Calico's
// SetSequenceNumberForOrdinal).
func (b *Block) setSeq(ord int) {
	if b.SequenceNumberForAllocation == nil {
		b.SequenceNumberForAllocation = map[string]uint64{}
	}
	b.SequenceNumberForAllocation[strconv.Itoa(ord)] = b.SequenceNumber
}

// ---- consistency ----

// Problem kinds found inside one block.
const (
	// ProblemAllocatedAndFree: an assigned ordinal is also on the free list,
	// so it would be handed out twice.
	ProblemAllocatedAndFree = "allocated-and-free"
	// ProblemFreeTwice: an ordinal appears twice on the free list.
	ProblemFreeTwice = "free-twice"
	// ProblemLost: an ordinal is neither assigned nor free.
	ProblemLost = "lost"
	// ProblemBadOrdinal: the free list names an ordinal outside the block.
	ProblemBadOrdinal = "bad-ordinal"
	// ProblemAttrMissing: an assigned ordinal points at no attribute.
	ProblemAttrMissing = "attribute-missing"
)

// BlockProblem is one inconsistency inside a block.
type BlockProblem struct {
	Kind    string
	Ordinal int
	IP      netip.Addr // invalid for ProblemBadOrdinal
}

// Problems returns the block's internal inconsistencies, sorted by ordinal.
func (b *Block) Problems() []BlockProblem {
	var out []BlockProblem
	free := map[int]int{}
	for _, ord := range b.Unallocated {
		if ord < 0 || ord >= len(b.Allocations) {
			out = append(out, BlockProblem{Kind: ProblemBadOrdinal, Ordinal: ord})
			continue
		}
		free[ord]++
	}
	for ord, a := range b.Allocations {
		switch {
		case a != nil && free[ord] > 0:
			out = append(out, BlockProblem{Kind: ProblemAllocatedAndFree, Ordinal: ord, IP: b.Addr(ord)})
		case a == nil && free[ord] > 1:
			out = append(out, BlockProblem{Kind: ProblemFreeTwice, Ordinal: ord, IP: b.Addr(ord)})
		case a == nil && free[ord] == 0:
			out = append(out, BlockProblem{Kind: ProblemLost, Ordinal: ord, IP: b.Addr(ord)})
		}
		if a != nil && (*a < 0 || *a >= len(b.Attributes)) {
			out = append(out, BlockProblem{Kind: ProblemAttrMissing, Ordinal: ord, IP: b.Addr(ord)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Ordinal < out[j].Ordinal })
	return out
}

// Repair fixes one problem of the kinds the free list can have, choosing
// the side that never hands out an address a workload may be using: an
// assigned ordinal leaves the free list; a lost ordinal becomes free; a
// duplicate or out-of-range free entry goes. It reports whether the block
// changed (false when the problem is no longer there). ProblemAttrMissing is
// repaired by releasing the address (see Release), not here.
func (b *Block) Repair(p BlockProblem) bool {
	switch p.Kind {
	case ProblemAllocatedAndFree:
		if p.Ordinal < 0 || p.Ordinal >= len(b.Allocations) || b.Allocations[p.Ordinal] == nil {
			return false
		}
		n := len(b.Unallocated)
		b.Unallocated = slices.DeleteFunc(slices.Clone(b.Unallocated), func(o int) bool { return o == p.Ordinal })
		if len(b.Unallocated) == n {
			return false
		}
	case ProblemFreeTwice:
		first, changed := true, false
		b.Unallocated = slices.DeleteFunc(slices.Clone(b.Unallocated), func(o int) bool {
			if o != p.Ordinal {
				return false
			}
			if first {
				first = false
				return false
			}
			changed = true
			return true
		})
		if !changed {
			return false
		}
	case ProblemLost:
		if p.Ordinal < 0 || p.Ordinal >= len(b.Allocations) || b.Allocations[p.Ordinal] != nil || slices.Contains(b.Unallocated, p.Ordinal) {
			return false
		}
		b.Unallocated = append(b.Unallocated, p.Ordinal)
	case ProblemBadOrdinal:
		n := len(b.Unallocated)
		b.Unallocated = slices.DeleteFunc(slices.Clone(b.Unallocated), func(o int) bool { return o == p.Ordinal })
		if len(b.Unallocated) == n {
			return false
		}
	default:
		return false
	}
	b.touch()
	return true
}

// ---- address arithmetic ----

// addOffset returns a + off, carrying across the whole address.
func addOffset(a netip.Addr, off uint64) netip.Addr {
	if a.Is4() {
		b := a.As4()
		v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		v += off
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	b := a.As16()
	carry := off
	for i := 15; i >= 0 && carry > 0; i-- {
		s := uint64(b[i]) + (carry & 0xff)
		b[i] = byte(s)
		carry = carry>>8 + s>>8
	}
	return netip.AddrFrom16(b).WithZone(a.Zone())
}

// offset returns ip - base for ip at or above base; it saturates at MaxUint64.
func offset(base, ip netip.Addr) uint64 {
	x, y := base.As16(), ip.As16()
	var hiDiff bool
	for i := 0; i < 8; i++ {
		if x[i] != y[i] {
			hiDiff = true
			break
		}
	}
	if hiDiff {
		return ^uint64(0)
	}
	var a, c uint64
	for i := 8; i < 16; i++ {
		a = a<<8 | uint64(x[i])
		c = c<<8 | uint64(y[i])
	}
	return c - a
}

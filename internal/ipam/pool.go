package ipam

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/resources"
	"github.com/calico-docker/calico/internal/selector"
)

// Default block sizes (Calico's).
const (
	DefaultBlockSize4 = 26
	DefaultBlockSize6 = 122
)

// Pool is the part of an IPPool the allocator uses.
type Pool struct {
	Name         string
	CIDR         netip.Prefix
	BlockSize    int
	Disabled     bool
	NodeSelector string
	// AllowedUses are the IPPool's uses (api.AllowedUse*); empty means
	// Calico's default, Workload and Tunnel.
	AllowedUses []string
}

// Allows reports whether the pool may give addresses for use (Workload or
// Tunnel). A LoadBalancer-only pool allows neither: nothing here allocates
// load balancer addresses, and a workload must never get one.
func (p Pool) Allows(use string) bool {
	if len(p.AllowedUses) == 0 {
		return use == api.AllowedUseWorkload || use == api.AllowedUseTunnel
	}
	return slices.Contains(p.AllowedUses, use)
}

// useOf is the pool use an assignment of attribute type typ needs: a
// tunnel address type needs Tunnel, anything else Workload.
func useOf(typ string) string {
	switch typ {
	case TypeVXLANTunnel, TypeVXLANV6Tunnel, TypeIPIPTunnel, TypeWireguardTunnel, TypeWireguardV6Tunnel:
		return api.AllowedUseTunnel
	}
	return api.AllowedUseWorkload
}

// Family is 4 or 6.
func (p Pool) Family() int { return family(p.CIDR.Addr()) }

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func familyName(f int) string { return fmt.Sprintf("ipv%d", f) }

// PoolFromAPI converts an IPPool, applying Calico's default block size and
// checking what the allocator depends on (the api package validates the rest).
func PoolFromAPI(p api.IPPool) (Pool, error) {
	cidr, err := netip.ParsePrefix(strings.TrimSpace(p.Spec.CIDR))
	if err != nil {
		return Pool{}, fmt.Errorf("ippool %q: spec.cidr %q: %w", p.Name, p.Spec.CIDR, err)
	}
	cidr = cidr.Masked()
	bs := p.Spec.BlockSize
	lo, hi := 20, 32
	if cidr.Addr().Is6() {
		lo, hi = 116, 128
	}
	if bs == 0 {
		bs = DefaultBlockSize4
		if cidr.Addr().Is6() {
			bs = DefaultBlockSize6
		}
	}
	if bs < lo || bs > hi {
		return Pool{}, fmt.Errorf("ippool %q: spec.blockSize %d out of range %d-%d", p.Name, bs, lo, hi)
	}
	if bs < cidr.Bits() {
		return Pool{}, fmt.Errorf("ippool %q: spec.blockSize /%d is larger than the pool %s", p.Name, bs, cidr)
	}
	return Pool{Name: p.Name, CIDR: cidr, BlockSize: bs, Disabled: p.Spec.Disabled, NodeSelector: p.Spec.NodeSelector, AllowedUses: slices.Clone(p.Spec.AllowedUses)}, nil
}

// PoolsOverlap reports whether two pool CIDRs share any address.
func PoolsOverlap(a, b netip.Prefix) bool { return resources.PoolsOverlap(a, b) }

// CheckPoolOverlap returns an error naming the first pool in existing whose
// CIDR overlaps candidate's (see resources.CheckPoolOverlap, which every
// write of an IPPool runs).
func CheckPoolOverlap(existing []api.IPPool, candidate api.IPPool) error {
	return resources.CheckPoolOverlap(existing, candidate)
}

// PoolSize is the number of addresses in the pool.
func PoolSize(p netip.Prefix) *big.Int {
	return new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
}

// SelectPools returns the pools of the family a node may take new addresses
// from, in the order to use them (by CIDR). With restrict empty: every
// enabled pool whose nodeSelector matches the node's labels. With restrict:
// exactly those pools, each of which must exist, be enabled and match, or the
// error says which and why. It is pure. Only pools allowed for Workload use
// count (see SelectPoolsFor).
func SelectPools(pools []Pool, fam int, node string, labels map[string]string, restrict []netip.Prefix) ([]Pool, error) {
	return SelectPoolsFor(pools, api.AllowedUseWorkload, fam, node, labels, restrict)
}

// SelectPoolsFor is SelectPools for addresses of use (api.AllowedUseWorkload
// or api.AllowedUseTunnel): a pool whose allowedUses lack it is never used,
// and asking for it by CIDR is an error naming the pool's uses.
func SelectPoolsFor(pools []Pool, use string, fam int, node string, labels map[string]string, restrict []netip.Prefix) ([]Pool, error) {
	var ofFam []Pool
	for _, p := range pools {
		if p.Family() == fam {
			ofFam = append(ofFam, p)
		}
	}
	sort.Slice(ofFam, func(i, j int) bool { return ofFam[i].CIDR.Addr().Less(ofFam[j].CIDR.Addr()) })
	matches := func(p Pool) (bool, error) {
		if strings.TrimSpace(p.NodeSelector) == "" {
			return true, nil
		}
		sel, err := selector.Parse(p.NodeSelector)
		if err != nil {
			return false, fmt.Errorf("ippool %q: nodeSelector %q: %w", p.Name, p.NodeSelector, err)
		}
		return sel.Evaluate(labels), nil
	}
	if len(restrict) > 0 {
		var out []Pool
		for _, r := range restrict {
			r = r.Masked()
			if family(r.Addr()) != fam {
				return nil, fmt.Errorf("pool %s is not an IPv%d pool", r, fam)
			}
			i := -1
			for j, p := range ofFam {
				if p.CIDR == r {
					i = j
					break
				}
			}
			if i < 0 {
				return nil, fmt.Errorf("pool %s: no IPPool has this cidr", r)
			}
			p := ofFam[i]
			if p.Disabled {
				return nil, fmt.Errorf("pool %s (ippool %q) is disabled", r, p.Name)
			}
			if !p.Allows(use) {
				return nil, fmt.Errorf("pool %s (ippool %q) has allowedUses %v: not for %s addresses", r, p.Name, p.AllowedUses, use)
			}
			ok, err := matches(p)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("pool %s (ippool %q): nodeSelector %q does not match node %q", r, p.Name, p.NodeSelector, node)
			}
			out = append(out, p)
		}
		return out, nil
	}
	var out []Pool
	var why []string
	for _, p := range ofFam {
		if p.Disabled {
			why = append(why, fmt.Sprintf("%s is disabled", p.CIDR))
			continue
		}
		if !p.Allows(use) {
			why = append(why, fmt.Sprintf("%s has allowedUses %v", p.CIDR, p.AllowedUses))
			continue
		}
		ok, err := matches(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			why = append(why, fmt.Sprintf("%s has nodeSelector %q", p.CIDR, p.NodeSelector))
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		msg := fmt.Sprintf("no enabled IPv%d pool for node %q", fam, node)
		if len(why) > 0 {
			msg += " (" + strings.Join(why, "; ") + ")"
		} else {
			msg += " (create an IPPool)"
		}
		return nil, fmt.Errorf("%w: %s", ErrNoPool, msg)
	}
	return out, nil
}

// PoolFor returns the pool that contains ip, or false.
func PoolFor(pools []Pool, ip netip.Addr) (Pool, bool) {
	for _, p := range pools {
		if p.CIDR.Contains(ip) {
			return p, true
		}
	}
	return Pool{}, false
}

// BlockFor returns the block of pool p that contains ip.
func BlockFor(p Pool, ip netip.Addr) netip.Prefix {
	b, _ := ip.Prefix(p.BlockSize)
	return b
}

// blockAt returns the i-th block of the pool.
func blockAt(p Pool, i uint64) netip.Prefix {
	host := p.CIDR.Addr().BitLen() - p.BlockSize
	return netip.PrefixFrom(addOffset(p.CIDR.Masked().Addr(), i<<host), p.BlockSize)
}

// numBlocks is how many blocks the pool has, capped at 1<<40 (more than any
// datastore holds, so the search below always ends first).
func numBlocks(p Pool) uint64 {
	n := p.BlockSize - p.CIDR.Bits()
	if n > 40 {
		n = 40
	}
	return 1 << n
}

// FreeBlock returns the first block of pool p, in address order, that
// overlaps none of the existing blocks (of any pool: this stays safe even if
// pools were written overlapping), or false when the pool has none left.
func FreeBlock(p Pool, existing []netip.Prefix) (netip.Prefix, bool) {
	same := map[netip.Prefix]bool{}
	var other []netip.Prefix
	for _, e := range existing {
		e = e.Masked()
		if !e.Overlaps(p.CIDR) {
			continue
		}
		if e.Bits() == p.BlockSize {
			same[e] = true
		} else {
			other = append(other, e)
		}
	}
	// Every candidate skipped is ruled out by an existing block, so this ends
	// after at most (existing blocks + blocks they cover) + 1 candidates.
	n := numBlocks(p)
	for i := uint64(0); i < n; i++ {
		c := blockAt(p, i)
		if same[c] {
			continue
		}
		clash := false
		for _, o := range other {
			if o.Overlaps(c) {
				clash = true
				break
			}
		}
		if !clash {
			return c, true
		}
	}
	return netip.Prefix{}, false
}

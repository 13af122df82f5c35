package ipam

import (
	"context"
	"fmt"
	"math/big"
	"net/netip"
	"sort"
)

// PoolUsage is one pool's totals.
type PoolUsage struct {
	Name     string       `json:"name"`
	CIDR     netip.Prefix `json:"cidr"`
	Disabled bool         `json:"disabled,omitempty"`
	Size     *big.Int     `json:"size"`
	InUse    int          `json:"inUse"`
	Free     *big.Int     `json:"free"`
	Blocks   []BlockUsage `json:"blocks"`
}

// BlockUsage is one block's use.
type BlockUsage struct {
	CIDR     netip.Prefix `json:"cidr"`
	Node     string       `json:"node,omitempty"` // affine node; "" for none
	Size     int          `json:"size"`
	InUse    int          `json:"inUse"`
	Free     int          `json:"free"`
	Borrowed int          `json:"borrowed,omitempty"` // addresses held for other nodes
}

// Usage is what `calico ipam show` prints. Blocks that lie in no pool (the
// pool was deleted) are listed in Orphans.
type Usage struct {
	Pools   []PoolUsage  `json:"pools"`
	Orphans []BlockUsage `json:"orphanBlocks,omitempty"`
}

// Usage returns per-pool totals and per-block use.
func (a *Allocator) Usage(ctx context.Context) (Usage, error) {
	pools, err := a.Pools(ctx)
	if err != nil {
		return Usage{}, err
	}
	var blocks []blockKV
	for _, fam := range []int{4, 6} {
		bs, err := a.listBlocks(ctx, fam)
		if err != nil {
			return Usage{}, err
		}
		blocks = append(blocks, bs...)
	}
	return usageOf(pools, blocks), nil
}

// usageOf is the pure part of Usage.
func usageOf(pools []Pool, blocks []blockKV) Usage {
	var u Usage
	placed := make([]bool, len(blocks))
	sorted := append([]Pool(nil), pools...)
	sortPools(sorted)
	for _, p := range sorted {
		pu := PoolUsage{Name: p.Name, CIDR: p.CIDR, Disabled: p.Disabled, Size: PoolSize(p.CIDR), Blocks: []BlockUsage{}}
		for i, bk := range blocks {
			if placed[i] || !p.CIDR.Overlaps(bk.b.CIDR) {
				continue
			}
			placed[i] = true
			bu := blockUsage(bk.b)
			pu.InUse += bu.InUse
			pu.Blocks = append(pu.Blocks, bu)
		}
		pu.Free = new(big.Int).Sub(pu.Size, big.NewInt(int64(pu.InUse)))
		u.Pools = append(u.Pools, pu)
	}
	for i, bk := range blocks {
		if !placed[i] {
			u.Orphans = append(u.Orphans, blockUsage(bk.b))
		}
	}
	return u
}

func sortPools(ps []Pool) {
	sort.Slice(ps, func(i, j int) bool { return lessPool(ps[i], ps[j]) })
}

func lessPool(a, b Pool) bool {
	if a.Family() != b.Family() {
		return a.Family() < b.Family()
	}
	return a.CIDR.Addr().Less(b.CIDR.Addr())
}

func blockUsage(b *Block) BlockUsage {
	in := b.InUse()
	return BlockUsage{CIDR: b.CIDR, Node: b.Host(), Size: b.Size(), InUse: in, Free: b.Size() - in, Borrowed: len(b.Borrowed())}
}

// IPInfo says who holds one address.
type IPInfo struct {
	IP       netip.Addr    `json:"ip"`
	Assigned bool          `json:"assigned"`
	Pool     string        `json:"pool,omitempty"` // pool name; "" if in none
	Block    *netip.Prefix `json:"block,omitempty"`
	Node     string        `json:"blockNode,omitempty"` // the block's affine node
	Handle   string        `json:"handle,omitempty"`
	Attrs    *Attrs        `json:"attrs,omitempty"`
}

// String is one line for `calico ipam show --ip`.
func (i IPInfo) String() string {
	if !i.Assigned {
		s := fmt.Sprintf("%s is not assigned", i.IP)
		if i.Pool == "" {
			s += " (it is in no IPPool)"
		} else {
			s += fmt.Sprintf(" (pool %s)", i.Pool)
		}
		return s
	}
	s := fmt.Sprintf("%s is assigned to handle %q", i.IP, i.Handle)
	if i.Attrs != nil {
		if d := i.Attrs.Describe(); d != "" {
			s += ": " + d
		}
	}
	if i.Block != nil {
		s += fmt.Sprintf("; block %s", *i.Block)
		if i.Node != "" {
			s += " affine to " + i.Node
		}
	}
	return s
}

// ShowIP says whether ip is assigned and to whom.
func (a *Allocator) ShowIP(ctx context.Context, ip netip.Addr) (IPInfo, error) {
	ip = ip.Unmap()
	info := IPInfo{IP: ip}
	pools, err := a.Pools(ctx)
	if err != nil {
		return info, err
	}
	if p, ok := PoolFor(pools, ip); ok {
		info.Pool = p.Name
	}
	blocks, err := a.listBlocks(ctx, family(ip))
	if err != nil {
		return info, err
	}
	for _, bk := range blocks {
		if !bk.b.CIDR.Contains(ip) {
			continue
		}
		c := bk.b.CIDR
		info.Block, info.Node = &c, bk.b.Host()
		if al, ok := bk.b.Holder(ip); ok {
			info.Assigned = true
			info.Handle = al.Handle
			at := al.Attrs
			info.Attrs = &at
		}
		break
	}
	return info, nil
}

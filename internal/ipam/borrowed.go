package ipam

import (
	"context"
	"net/netip"
)

// BorrowedAddr is an address held for a node other than its block's
// affine node (or in a block with no affinity), as calicoctl ipam show
// --show-borrowed lists them.
type BorrowedAddr struct {
	IP            netip.Addr   `json:"ip"`
	BorrowingNode string       `json:"borrowingNode"`
	Block         netip.Prefix `json:"block"`
	BlockOwner    string       `json:"blockOwner"` // "" when the block has no affinity
	Type          string       `json:"type"`       // "pod" for a workload with a pod, else the attribute type
	AllocatedTo   string       `json:"allocatedTo"`
}

// Borrowed lists every borrowed address, in block and address order, and
// counts the allocations that name no node (Calico cannot classify them
// either).
func (a *Allocator) Borrowed(ctx context.Context) (out []BorrowedAddr, unclassified int, err error) {
	for _, fam := range []int{4, 6} {
		blocks, err := a.listBlocks(ctx, fam)
		if err != nil {
			return nil, 0, err
		}
		for _, bk := range blocks {
			got, n := borrowedOf(bk.b)
			out = append(out, got...)
			unclassified += n
		}
	}
	return out, unclassified, nil
}

// borrowedOf is the pure part of Borrowed for one block.
func borrowedOf(b *Block) ([]BorrowedAddr, int) {
	var out []BorrowedAddr
	unclassified := 0
	owner := b.Host()
	for _, al := range b.AllocationList() {
		if al.Attrs.Node == "" {
			unclassified++
			continue
		}
		if al.Attrs.Node == owner {
			continue
		}
		ba := BorrowedAddr{IP: al.IP, BorrowingNode: al.Attrs.Node, Block: b.CIDR, BlockOwner: owner, Type: al.Attrs.Type}
		switch {
		case al.Attrs.Pod != "":
			ba.Type, ba.AllocatedTo = "pod", al.Attrs.Namespace+"/"+al.Attrs.Pod
		case al.Attrs.Endpoint != "":
			ba.AllocatedTo = al.Attrs.Endpoint
		}
		out = append(out, ba)
	}
	return out, unclassified
}

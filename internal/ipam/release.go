package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
)

// ReleaseIPs frees the given addresses, whoever holds them, and returns
// those that were not assigned. Handles are updated in the same transaction
// as their blocks.
func (a *Allocator) ReleaseIPs(ctx context.Context, ips ...netip.Addr) (notAssigned []netip.Addr, err error) {
	byBlock := map[netip.Prefix][]netip.Addr{}
	lists := map[int][]blockKV{}
	for _, ip := range ips {
		if !ip.IsValid() {
			return nil, errors.New("release: invalid address")
		}
		ip = ip.Unmap()
		fam := family(ip)
		if _, ok := lists[fam]; !ok {
			if lists[fam], err = a.listBlocks(ctx, fam); err != nil {
				return nil, err
			}
		}
		i := slices.IndexFunc(lists[fam], func(bk blockKV) bool { return bk.b.CIDR.Contains(ip) })
		if i < 0 {
			notAssigned = append(notAssigned, ip)
			continue
		}
		c := lists[fam][i].b.CIDR
		byBlock[c] = append(byBlock[c], ip)
	}
	cidrs := make([]netip.Prefix, 0, len(byBlock))
	for c := range byBlock {
		cidrs = append(cidrs, c)
	}
	sort.Slice(cidrs, func(i, j int) bool { return cidrs[i].Addr().Less(cidrs[j].Addr()) })
	for _, c := range cidrs {
		na, err := a.releaseInBlock(ctx, c, byBlock[c], nil)
		if err != nil {
			return notAssigned, err
		}
		notAssigned = append(notAssigned, na...)
	}
	return notAssigned, nil
}

// releaseInBlock frees ips of one block. If only is not nil, an address is
// freed only while only(allocation) holds (release-from-report uses it to
// free exactly what it found).
func (a *Allocator) releaseInBlock(ctx context.Context, cidr netip.Prefix, ips []netip.Addr, only func(Allocation) bool) ([]netip.Addr, error) {
	for i := 0; ; i++ {
		if i > a.maxRetries {
			return nil, fmt.Errorf("%w: releasing in block %s", ErrTooManyRetries, cidr)
		}
		b, rev, err := a.getBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			return ips, nil
		}
		if err != nil {
			return nil, err
		}
		var free, skipped []netip.Addr
		for _, ip := range ips {
			al, held := b.Holder(ip)
			if held && (only == nil || only(al)) {
				free = append(free, ip)
			} else {
				skipped = append(skipped, ip)
			}
		}
		if len(free) == 0 {
			return skipped, nil
		}
		byHandle, _, err := b.Release(free, a.now())
		if err != nil {
			return nil, err
		}
		ops := []datastore.Op{blockAfterRelease(b, rev)}
		handles := make([]string, 0, len(byHandle))
		for h := range byHandle {
			if h != "" {
				handles = append(handles, h)
			}
		}
		sort.Strings(handles)
		for _, hn := range handles {
			h, hrev, err := a.getHandle(ctx, hn)
			if err != nil {
				return nil, err
			}
			if hrev == 0 {
				continue // no record to update (check reports such handles)
			}
			h.add(cidr.String(), -byHandle[hn])
			ops = append(ops, handleOp(hn, h, hrev))
		}
		_, err = a.store.Txn(ctx, ops)
		if err == nil {
			a.log.Debug("ipam: released", "ips", free)
			return skipped, nil
		}
		if !isRace(err) {
			return nil, fmt.Errorf("write block %s: %w", cidr, err)
		}
	}
}

// blockAfterRelease writes a block back after a release; a block that is
// empty and affine to no node has no owner left and is deleted.
func blockAfterRelease(b *Block, rev int64) datastore.Op {
	if b.Empty() && b.Affinity == nil {
		return datastore.Op{Type: datastore.OpDelete, Key: BlockKey(b.CIDR), Revision: rev}
	}
	return blockPut(b, rev)
}

// ReleaseByHandle frees every address held by handle and deletes the
// handle. An unknown handle is success (nothing to do).
func (a *Allocator) ReleaseByHandle(ctx context.Context, handle string) ([]netip.Addr, error) {
	if err := validName("handle", handle); err != nil {
		return nil, err
	}
	var released []netip.Addr
	for i := 0; ; i++ {
		if i > a.maxRetries {
			return released, fmt.Errorf("%w: releasing handle %q", ErrTooManyRetries, handle)
		}
		h, hrev, err := a.getHandle(ctx, handle)
		if err != nil {
			return released, err
		}
		if hrev == 0 {
			return released, nil
		}
		nh := h.clone()
		var ops []datastore.Op
		var ips []netip.Addr
		if len(h.Block) > 0 {
			keys := make([]string, 0, len(h.Block))
			for k := range h.Block {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			delete(nh.Block, keys[0])
			if cidr, perr := netip.ParsePrefix(keys[0]); perr == nil {
				b, brev, err := a.getBlock(ctx, cidr)
				switch {
				case errors.Is(err, datastore.ErrNotFound):
				case err != nil:
					return released, err
				default:
					if ips = b.ReleaseHandle(handle, a.now()); len(ips) > 0 {
						ops = append(ops, blockAfterRelease(b, brev))
					}
				}
			}
		}
		ops = append(ops, handleOp(handle, nh, hrev))
		if _, err = a.store.Txn(ctx, ops); err != nil {
			if isRace(err) {
				continue
			}
			return released, fmt.Errorf("release handle %q: %w", handle, err)
		}
		released = append(released, ips...)
		if nh.Total() == 0 {
			return released, nil
		}
	}
}

// ReleaseHostAffinities gives up every block affinity of node (a node leaving
// the cluster). Empty blocks are deleted; with mustBeEmpty false, blocks that
// still hold addresses keep them but lose their affinity, so no node claims
// them until they empty. It returns the blocks released.
func (a *Allocator) ReleaseHostAffinities(ctx context.Context, node string, mustBeEmpty bool) ([]netip.Prefix, error) {
	if err := validName("node", node); err != nil {
		return nil, err
	}
	return a.releaseAffinities(ctx, node, func(b *Block) bool { return !mustBeEmpty || b.Empty() })
}

// ReleaseEmptyBlocks releases node's blocks that have been empty for at
// least olderThan, so other nodes can claim them. An empty block not yet
// stamped gets its EmptySince stamped now (the grace period starts);
// olderThan <= 0 releases every empty block at once. It returns the blocks
// released.
func (a *Allocator) ReleaseEmptyBlocks(ctx context.Context, node string, olderThan time.Duration) ([]netip.Prefix, error) {
	if err := validName("node", node); err != nil {
		return nil, err
	}
	now := a.now()
	return a.releaseAffinities(ctx, node, func(b *Block) bool {
		if !b.Empty() {
			return false
		}
		return olderThan <= 0 || (b.EmptySince != nil && now.Sub(*b.EmptySince) >= olderThan)
	})
}

func (a *Allocator) releaseAffinities(ctx context.Context, node string, cond func(*Block) bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, fam := range []int{4, 6} {
		kvs, _, err := a.store.List(ctx, AffinitiesPrefix(node, fam))
		if err != nil {
			return out, fmt.Errorf("list affinities of node %q: %w", node, err)
		}
		for _, kv := range kvs {
			_, cidr, ok := ParseAffinityKey(kv.Key)
			if !ok {
				continue
			}
			done, err := a.releaseAffinity(ctx, node, cidr, cond)
			if err != nil {
				return out, err
			}
			if done {
				out = append(out, cidr)
			}
		}
	}
	return out, nil
}

// releaseAffinity drops node's affinity to block cidr if cond holds for the
// block (empty blocks are deleted, others keep their addresses without an
// affinity). A dangling affinity key is simply deleted. An empty block whose
// EmptySince is missing gets it stamped instead, starting its grace period.
func (a *Allocator) releaseAffinity(ctx context.Context, node string, cidr netip.Prefix, cond func(*Block) bool) (bool, error) {
	fam := family(cidr.Addr())
	for i := 0; ; i++ {
		if i > a.maxRetries {
			return false, fmt.Errorf("%w: releasing block %s of node %q", ErrTooManyRetries, cidr, node)
		}
		genRev, gen, err := a.getClaimGen(ctx, node, fam)
		if err != nil {
			return false, err
		}
		b, rev, err := a.getBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			return a.deleteKey(ctx, AffinityKey(node, cidr))
		}
		if err != nil {
			return false, err
		}
		if b.Host() != node {
			return a.deleteKey(ctx, AffinityKey(node, cidr))
		}
		if !cond(b) {
			if b.Empty() && b.EmptySince == nil {
				t := a.now().UTC()
				b.EmptySince = &t
				if _, err := a.store.Txn(ctx, []datastore.Op{blockPut(b, rev)}); err != nil && !isRace(err) {
					return false, fmt.Errorf("stamp empty block %s: %w", cidr, err)
				}
			}
			return false, nil
		}
		var op datastore.Op
		if b.Empty() {
			op = datastore.Op{Type: datastore.OpDelete, Key: BlockKey(cidr), Revision: rev}
		} else {
			b.SetHost("")
			b.touch()
			op = blockPut(b, rev)
		}
		_, err = a.store.Txn(ctx, []datastore.Op{op,
			{Type: datastore.OpDelete, Key: AffinityKey(node, cidr)},
			claimOp(node, fam, gen, genRev)})
		if err == nil {
			a.log.Info("ipam: released block affinity", "node", node, "block", cidr, "deleted", b.Empty())
			return true, nil
		}
		if !isRace(err) {
			return false, fmt.Errorf("release block %s of node %q: %w", cidr, node, err)
		}
	}
}

// deleteKey deletes key and reports whether it existed.
func (a *Allocator) deleteKey(ctx context.Context, key string) (bool, error) {
	err := a.store.Delete(ctx, key, 0)
	if errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", key, err)
	}
	return true, nil
}

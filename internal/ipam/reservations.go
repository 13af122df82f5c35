package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// IP reservations (IPReservation resources, spec.reservedCIDRs): automatic
// assignment never hands out a reserved address; it stays free in its block
// and is skipped, as in Calico. An address asked for by name (AssignIP) is
// still given out.

// Reserved is a set of reserved networks.
type Reserved []netip.Prefix

// Contains reports whether ip is reserved.
func (r Reserved) Contains(ip netip.Addr) bool {
	for _, p := range r {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Reservations reads every IPReservation's networks. Unreadable resources
// and entries are logged and skipped.
func (a *Allocator) Reservations(ctx context.Context) (Reserved, error) {
	kvs, _, err := a.store.List(ctx, datastore.ResourcePrefix("ipreservations"))
	if err != nil {
		return nil, fmt.Errorf("list ipreservations: %w", err)
	}
	var out Reserved
	for _, kv := range kvs {
		r, err := resources.Decode(api.KindIPReservation, kv)
		if err != nil {
			a.log.Warn("ipam: skipping an unreadable ipreservation", "key", kv.Key, "error", err)
			continue
		}
		for _, s := range r.(*api.IPReservation).Spec.ReservedCIDRs {
			p, err := api.ParseAddrOrNet(strings.TrimSpace(s))
			if err != nil {
				a.log.Warn("ipam: skipping an invalid reserved network", "key", kv.Key, "cidr", s)
				continue
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// numFreeFor counts the block's free addresses that are not reserved.
func (b *Block) numFreeFor(r Reserved) int {
	if len(r) == 0 {
		return b.NumFree()
	}
	n := 0
	for _, ord := range b.Unallocated {
		if !r.Contains(b.Addr(ord)) {
			n++
		}
	}
	return n
}

// assignFor is Assign skipping reserved addresses (they stay free, in
// their place in Unallocated).
func (b *Block) assignFor(n int, handle string, sec map[string]string, r Reserved) []netip.Addr {
	if len(r) == 0 {
		return b.Assign(n, handle, sec)
	}
	if n <= 0 {
		return nil
	}
	var take, keep []int
	for _, ord := range b.Unallocated {
		if len(take) < n && !r.Contains(b.Addr(ord)) {
			take = append(take, ord)
		} else {
			keep = append(keep, ord)
		}
	}
	if len(take) == 0 {
		return nil
	}
	// Assign takes from the front of Unallocated: put the chosen ones there.
	b.Unallocated = slices.Concat(take, keep)
	return b.Assign(len(take), handle, sec)
}

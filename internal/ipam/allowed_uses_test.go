package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
)

// A pool is used only for the uses in its allowedUses: a LoadBalancer pool
// never gives a workload or tunnel address (nothing here allocates load
// balancer addresses), a Tunnel-only pool gives only tunnel addresses, and
// a Workload-only pool only workload ones.
func TestAllowedUses(t *testing.T) {
	st := datastore.NewMemory()
	ctx := ctxT(t)
	// The LoadBalancer pool sorts first, so without the check it is used.
	putPool(t, st, "lb", "10.60.0.0/24", 26, func(p *api.IPPool) { p.Spec.AllowedUses = []string{api.AllowedUseLoadBalancer} })
	putPool(t, st, "tun", "10.61.0.0/24", 26, func(p *api.IPPool) { p.Spec.AllowedUses = []string{api.AllowedUseTunnel} })
	putPool(t, st, "wl", "10.62.0.0/24", 26, func(p *api.IPPool) { p.Spec.AllowedUses = []string{api.AllowedUseWorkload} })
	putNode(t, st, "n1", nil)
	a := New(st)
	lb, tun, wl := netip.MustParsePrefix("10.60.0.0/24"), netip.MustParsePrefix("10.61.0.0/24"), netip.MustParsePrefix("10.62.0.0/24")

	for i := range 3 {
		r := mustAssign(t, a, AssignArgs{Handle: "wl" + itoa(i), Node: "n1", Num4: 1, Attrs: Attrs{Kind: KindWorkload, Endpoint: "docker/w" + itoa(i), Node: "n1"}})
		if !wl.Contains(r.IPv4[0]) {
			t.Fatalf("workload address %s, want one of %s", r.IPv4[0], wl)
		}
	}
	// (Not mustAssign: it replaces attributes without a kind.)
	r, err := a.AutoAssign(ctx, AssignArgs{Handle: "vxlan-tunnel-addr-n1", Node: "n1", Num4: 1, Attrs: Attrs{Node: "n1", Type: TypeVXLANTunnel}})
	if err != nil {
		t.Fatal(err)
	}
	if !tun.Contains(r.IPv4[0]) {
		t.Fatalf("tunnel address %s, want one of %s", r.IPv4[0], tun)
	}

	// Asked for by CIDR: refused, naming the pool's uses.
	for _, c := range []struct {
		pool  netip.Prefix
		attrs Attrs
		want  string
	}{
		{lb, manual("x"), `pool 10.60.0.0/24 (ippool "lb") has allowedUses [LoadBalancer]: not for Workload addresses`},
		{tun, manual("x"), `pool 10.61.0.0/24 (ippool "tun") has allowedUses [Tunnel]: not for Workload addresses`},
		{lb, Attrs{Node: "n1", Type: TypeVXLANTunnel}, `has allowedUses [LoadBalancer]: not for Tunnel addresses`},
	} {
		_, err := a.AutoAssign(ctx, AssignArgs{Handle: "byname", Node: "n1", Num4: 1, Pools4: []netip.Prefix{c.pool}, Attrs: c.attrs})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("assign from %s: %v, want %q", c.pool, err, c.want)
		}
	}

	// With only the LoadBalancer pool left, workloads get nothing.
	st2 := datastore.NewMemory()
	putPool(t, st2, "lb", "10.60.0.0/24", 26, func(p *api.IPPool) { p.Spec.AllowedUses = []string{api.AllowedUseLoadBalancer} })
	putNode(t, st2, "n1", nil)
	_, err = New(st2).AutoAssign(ctx, AssignArgs{Handle: "w", Node: "n1", Num4: 1, Attrs: manual("x")})
	if !errors.Is(err, ErrNoPool) || !strings.Contains(err.Error(), "10.60.0.0/24 has allowedUses [LoadBalancer]") {
		t.Fatalf("workload from a LoadBalancer-only pool: %v", err)
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

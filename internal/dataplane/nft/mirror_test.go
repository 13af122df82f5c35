package nft

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

// TestMirrorSharesAddressSets: once applied, an address set's elements are
// held once, by the compiled content and the mirror of the kernel together;
// a later change neither modifies the shared map nor leaves the mirror
// stale (a resync finds no drift).
func TestMirrorSharesAddressSets(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	d := twoOpen(w1, w2)
	d.Chains = []dataplane.PolicyChain{sameProfile("profile:open", "s-m")}
	a, b := netip.MustParsePrefix("10.99.0.1/32"), netip.MustParsePrefix("10.99.0.3/32")
	d.Sets = []dataplane.IPSet{{ID: "s-m", Selector: "all()", Members: []netip.Prefix{a, b}}}
	tp.apply(t, d)
	name := ipSetName("s-m", 4)
	first := tp.drv.cache.sets["s-m"].s4.elems
	if ks := tp.drv.k.sets[name]; reflect.ValueOf(ks.elems).UnsafePointer() != reflect.ValueOf(first).UnsafePointer() || !ks.shared {
		t.Fatalf("the mirror holds its own copy of %s", name)
	}
	d.Sets[0].Members = []netip.Prefix{a}
	tp.apply(t, d)
	if len(first) != 2 {
		t.Errorf("the applied content was modified: %d elements, want 2", len(first))
	}
	if got := len(tp.drv.k.sets[name].elems); got != 1 {
		t.Errorf("mirror of %s holds %d elements, want 1", name, got)
	}
	if err := tp.drv.Resync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tp.drv.drifted != 0 {
		t.Errorf("resync found %d differences after the change", tp.drv.drifted)
	}
}

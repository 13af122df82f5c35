package ipam

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
)

func putReservation(t *testing.T, st datastore.Store, name string, cidrs ...string) {
	t.Helper()
	r := &api.IPReservation{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.IPReservationSpec{ReservedCIDRs: cidrs}}
	api.Default(r)
	b, err := api.EncodeStored(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctxT(t), datastore.ResourceKey("ipreservations", "", name), b, 0); err != nil {
		t.Fatal(err)
	}
}

// Automatic assignment skips reserved addresses (in an affine block, in a
// new block, when borrowing) and runs out rather than hand one out; an
// address asked for by name is still given.
func TestReservationsSkipped(t *testing.T) {
	stores(t, func(t *testing.T, st datastore.Store) {
		// 16 addresses in 4 blocks of 4.
		putPool(t, st, "small", "10.65.0.0/28", 30)
		putReservation(t, st, "r1", "10.65.0.0/31", "10.65.0.3")
		putReservation(t, st, "r2", "10.65.0.4/30", "fd00::/64") // a whole block
		a := New(st)
		r := mustAssign(t, a, AssignArgs{Handle: "h1", Node: "n1", Num4: 3})
		// Block .0/30 offers only .2; block .4/30 is all reserved; .8/30 gives two.
		if want := addrs("10.65.0.2", "10.65.0.8", "10.65.0.9"); !slices.Equal(r.IPv4, want) {
			t.Fatalf("assigned %v, want %v", r.IPv4, want)
		}
		if b := readBlock(t, st, "10.65.0.0/30"); b.InUse() != 1 || b.NumFree() != 3 {
			t.Fatalf("reserved addresses must stay free: %d in use, %d free", b.InUse(), b.NumFree())
		}
		if r := mustAssign(t, a, AssignArgs{Handle: "h2", Node: "n2", Num4: 4}); !slices.Equal(r.IPv4, addrs("10.65.0.12", "10.65.0.13", "10.65.0.14", "10.65.0.15")) {
			t.Fatalf("n2 got %v", r.IPv4)
		}
		if r := mustAssign(t, a, AssignArgs{Handle: "h3", Node: "n1", Num4: 2}); !slices.Equal(r.IPv4, addrs("10.65.0.10", "10.65.0.11")) {
			t.Fatalf("n1 got %v", r.IPv4)
		}
		// Only reserved addresses are free now: the next request fails.
		_, err := a.AutoAssign(ctxT(t), AssignArgs{Handle: "h4", Node: "n1", Num4: 1, Attrs: manual("x")})
		if !errors.Is(err, ErrExhausted) {
			t.Fatalf("with only reserved addresses left: %v, want ErrExhausted", err)
		}
		for _, cidr := range []string{"10.65.0.0/30", "10.65.0.4/30"} {
			b := readBlock(t, st, cidr)
			for _, ip := range addrs("10.65.0.0", "10.65.0.1", "10.65.0.3", "10.65.0.4", "10.65.0.5", "10.65.0.6", "10.65.0.7") {
				if al, ok := b.Holder(ip); ok {
					t.Fatalf("reserved %s assigned to %+v", ip, al)
				}
			}
		}
		// By name: allowed, as in Calico.
		if err := a.AssignIP(ctxT(t), netip.MustParseAddr("10.65.0.1"), "named", "n1", manual("by name")); err != nil {
			t.Fatalf("AssignIP of a reserved address: %v", err)
		}
	})
}

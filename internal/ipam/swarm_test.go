package ipam

import (
	"context"
	"testing"

	"github.com/calico-docker/calico/internal/datastore"
)

// An address Docker swarm's allocator holds with no endpoint yet is the
// swarm's, not a problem; once an endpoint names it and goes, it is a leak.
func TestCheckSwarmAddresses(t *testing.T) {
	st := datastore.NewMemory()
	ctx := context.Background()
	putPool(t, st, "p", "10.65.0.0/24", 26)
	a := New(st)
	h := SwarmHandlePrefix + "abc"
	mustAssign(t, a, AssignArgs{Handle: h, Node: "n1", Num4: 1, Attrs: Attrs{Kind: KindWorkload, Node: "n1", Note: "swarm"}})
	mustAssign(t, a, AssignArgs{Handle: "other", Node: "n1", Num4: 1, Attrs: Attrs{Kind: KindWorkload}})
	rep, err := a.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Inconsistencies) != 1 || rep.Inconsistencies[0].Handle != "other" || len(rep.Leaked) != 0 {
		t.Fatalf("want only the non-swarm unnamed address reported:\n%s", rep)
	}
	if err := a.SetHandleAttrs(ctx, h, Attrs{Kind: KindWorkload, Endpoint: "default/gone"}); err != nil {
		t.Fatal(err)
	}
	rep, _ = a.Check(ctx, CheckOptions{})
	if len(rep.Leaked) != 1 || rep.Leaked[0].Handle != h || rep.Leaked[0].Reason != LeakEndpointGone {
		t.Fatalf("a swarm address naming a gone endpoint is a leak:\n%s", rep)
	}
}

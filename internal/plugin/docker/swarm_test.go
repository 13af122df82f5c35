package docker

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// The reconcile drops this node's memory of a swarm address whose task's
// endpoint never came or is gone (a host restarted: dockerd dropped the
// task without its release reaching the node). Kept, it would make this
// node (the manager here) take the allocator's release for its own local
// one, and the address would leak.
func TestReconcileStaleSwarmRecords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pool := e.requestPool(GlobalAddressSpace, false)
	alloc := func() string {
		out := e.ok("/IpamDriver.RequestAddress", map[string]any{"PoolID": pool, "Options": map[string]string{optSerialAlloc: "true"}})
		return strings.TrimSuffix(out["Address"].(string), "/32")
	}
	takeUp := func(ip, mac string) {
		e.ok("/IpamDriver.RequestAddress", map[string]any{"PoolID": pool, "Address": ip, "Options": map[string]string{optMAC: mac}})
	}
	stale, live := alloc(), alloc()
	takeUp(stale, macA) // its task's endpoint never comes
	takeUp(live, macB)
	e.networkCreated(testNetID, "front")
	e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epB,
		"Interface": map[string]any{"Address": live + "/32", "MacAddress": macB}})

	res, err := e.srv.Reconcile(ctx)
	if err != nil || len(res.SwarmRecords) != 0 {
		t.Fatalf("within the grace period: %+v %v", res, err)
	}
	e.clock.Add(DefaultGracePeriod + time.Second)
	res, err = e.srv.Reconcile(ctx)
	if err != nil || !slices.Equal(res.SwarmRecords, []string{stale}) {
		t.Fatalf("after the grace period: %+v %v (want only %s dropped)", res, err, stale)
	}
	if _, err := e.st.Get(ctx, swarmKey(testNode, netip.MustParseAddr(live))); err != nil {
		t.Fatalf("the live task's record was dropped: %v", err)
	}
	// The allocator's release now frees the stale address.
	e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": pool, "Address": stale})
	if n := e.inUse(); n != 1 {
		t.Fatalf("%d addresses in use after the allocator released the stale task's, want 1", n)
	}
	// A record that is not understood is never dropped.
	if _, err := e.st.Update(ctx, SwarmPrefix+testNode+"/10.65.9.9", []byte("??"), 0); err != nil {
		t.Fatal(err)
	}
	if res, err := e.srv.Reconcile(ctx); err != nil || len(res.SwarmRecords) != 0 {
		t.Fatalf("unknown record: %+v %v", res, err)
	}
}

func TestVIPNetworks(t *testing.T) {
	ours := func(id string) bool { return id == "netcalico000000000000000a" }
	resolve := func(target string) string {
		if target == "front" {
			return "netcalico000000000000000a"
		}
		return ""
	}
	svc := func(mode swarm.ResolutionMode, targets ...string) swarm.Service {
		var s swarm.Service
		if mode != "-" {
			s.Spec.EndpointSpec = &swarm.EndpointSpec{Mode: mode}
		}
		for _, tg := range targets {
			s.Spec.TaskTemplate.Networks = append(s.Spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: tg})
		}
		return s
	}
	for _, c := range []struct {
		name string
		svc  swarm.Service
		want []string
	}{
		{"vip by id", svc(swarm.ResolutionModeVIP, "netcalico000000000000000a"), []string{"netcalico000000000000000a"}},
		{"default mode is vip", svc("-", "front"), []string{"front"}},
		{"empty mode is vip", svc("", "front", "other"), []string{"front"}},
		{"dnsrr", svc(swarm.ResolutionModeDNSRR, "front"), nil},
		{"not ours", svc(swarm.ResolutionModeVIP, "other"), nil},
	} {
		if got := vipNetworks(c.svc, ours, resolve); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
)

// TestCheckFindsPlantedLeaksAndReleaseFixesExactlyThose plants each kind of
// problem in real etcd, checks that Check reports exactly those, and that
// ReleaseFromReport (after a JSON round trip of the report) fixes exactly
// those while manual reservations, healthy workloads, young addresses and
// a finding that stopped being true are left alone.
func TestCheckFindsPlantedLeaksAndReleaseFixesExactlyThose(t *testing.T) {
	st, _ := etcdStore(t)
	ctx := ctxT(t)
	putPool(t, st, "p", "10.65.0.0/24", 28)
	putNode(t, st, "n1", nil)
	putNode(t, st, "n2", nil)
	putNode(t, st, "gone", nil) // deleted below, after it claimed a block
	now := t0
	a := New(st, WithClock(func() time.Time { return now }))
	one := func(handle, node string, at Attrs) netip.Addr {
		t.Helper()
		r := mustAssign(t, a, AssignArgs{Handle: handle, Node: node, Num4: 1, Attrs: at})
		return r.IPv4[0]
	}
	wl := func(ep, ctr string) Attrs { return Attrs{Kind: KindWorkload, Endpoint: ep, ContainerID: ctr} }

	alive := one("alive", "n1", wl("ns/alive", "c-alive"))
	putWEP(t, st, "ns", "alive", "n1", alive)
	deadWEP := one("dead-wep", "n1", wl("ns/dead", "c-dead-wep")) // endpoint never written
	deadCtr := one("dead-ctr", "n1", wl("ns/ctr", "c-dead"))
	putWEPContainer(t, st, "ns", "ctr", "n1", "c-dead", deadCtr)
	stray := one("stray", "n1", wl("ns/multi", ""))
	multi := one("multi", "n1", wl("ns/multi", ""))
	putWEP(t, st, "ns", "multi", "n1", multi) // the endpoint uses another address than stray
	otherNode := one("n2-ctr", "n2", wl("", "c-n2"))
	printer := one("printer", "n1", manual("printer"))
	goneManual := one("gone-res", "gone", manual("left behind"))
	now = now.Add(10 * time.Minute)
	young := one("young", "n1", wl("ns/young", "c-young")) // its endpoint is not written yet
	now = now.Add(30 * time.Second)

	if err := st.Delete(ctx, datastore.ResourceKey("nodes", "", "gone"), 0); err != nil {
		t.Fatal(err)
	}
	// The endpoint of dead-wep existed, then was deleted.
	putWEP(t, st, "ns", "dead", "n1", deadWEP)
	if err := st.Delete(ctx, datastore.ResourceKey("workloadendpoints", "ns", "dead"), 0); err != nil {
		t.Fatal(err)
	}
	// An address recorded twice: alive's ordinal also on the free list.
	b := readBlock(t, st, "10.65.0.0/28")
	ord, _ := b.Ordinal(alive)
	b.Unallocated = append(b.Unallocated, ord)
	putJSON(t, st, BlockKey(b.CIDR), b)
	// A handle that disagrees with its block.
	putJSON(t, st, HandleKey("alive"), Handle{HandleID: "alive", Block: map[string]int{"10.65.0.0/28": 5}})

	dockerAsked := []string{}
	opts := CheckOptions{MinAge: time.Minute, DockerNode: "n1", ContainerExists: func(id string) (bool, error) {
		dockerAsked = append(dockerAsked, id)
		return id == "c-alive" || id == "c-young", nil
	}}
	rep, err := a.Check(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())

	leaks := map[netip.Addr]string{}
	for _, l := range rep.Leaked {
		leaks[l.IP] = l.Reason
	}
	wantLeaks := map[netip.Addr]string{deadWEP: LeakEndpointGone, deadCtr: LeakContainerGone, stray: LeakNotUsedByEndpoint}
	if len(leaks) != len(wantLeaks) {
		t.Fatalf("leaks %v, want %v", leaks, wantLeaks)
	}
	for ip, r := range wantLeaks {
		if leaks[ip] != r {
			t.Errorf("leak %s: %q, want %q", ip, leaks[ip], r)
		}
	}
	if !slices.Equal(dockerAsked, []string{"c-alive", "c-dead"}) {
		t.Errorf("docker asked about %v (want only n1's containers whose endpoint exists)", dockerAsked)
	}
	if len(rep.StaleAffinities) != 1 || rep.StaleAffinities[0].Node != "gone" || rep.StaleAffinities[0].InUse != 1 {
		t.Fatalf("stale affinities %+v", rep.StaleAffinities)
	}
	kinds := []string{}
	for _, in := range rep.Inconsistencies {
		kinds = append(kinds, in.Kind+":"+in.Problem+in.Handle)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"block:allocated-and-free", "handle-mismatch:alive"}) {
		t.Fatalf("inconsistencies %v", kinds)
	}
	var manualIPs []netip.Addr
	for _, m := range rep.Manual {
		manualIPs = append(manualIPs, m.IP)
	}
	if !slices.Equal(manualIPs, []netip.Addr{printer, goneManual}) {
		t.Fatalf("manual %v", manualIPs)
	}
	if rep.Summary.Recent != 1 || !rep.Summary.ContainersChecked || rep.Summary.Problems() != 6 {
		t.Fatalf("summary %+v", rep.Summary)
	}

	// The report goes through a file in real use.
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	// Meanwhile dead-wep's address is released and taken by someone else:
	// the report must not free it now.
	if _, err := a.ReleaseByHandle(ctx, "dead-wep"); err != nil {
		t.Fatal(err)
	}
	if err := a.AssignIP(ctx, deadWEP, "newcomer", "n1", manual("took it")); err != nil {
		t.Fatal(err)
	}

	res, err := a.ReleaseFromReport(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	slices.SortFunc(res.Released, func(x, y netip.Addr) int { return x.Compare(y) })
	wantReleased := []netip.Addr{deadCtr, stray}
	slices.SortFunc(wantReleased, func(x, y netip.Addr) int { return x.Compare(y) })
	if !slices.Equal(res.Released, wantReleased) {
		t.Fatalf("released %v, want %v", res.Released, wantReleased)
	}
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], deadWEP.String()) {
		t.Fatalf("skipped %v", res.Skipped)
	}
	if len(res.AffinitiesReleased) != 1 || len(res.Repaired) != 2 || !slices.Equal(res.EndpointsDeleted, []string{"ns/ctr"}) {
		t.Fatalf("affinities %v repaired %v endpoints deleted %v", res.AffinitiesReleased, res.Repaired, res.EndpointsDeleted)
	}

	// Untouched: healthy workloads, manual reservations, the newcomer, the young one.
	for ip, h := range map[netip.Addr]string{alive: "alive", multi: "multi", otherNode: "n2-ctr", printer: "printer",
		goneManual: "gone-res", deadWEP: "newcomer", young: "young"} {
		info, err := a.ShowIP(ctx, ip)
		if err != nil || !info.Assigned || info.Handle != h {
			t.Errorf("%s: %+v %v, want held by %s", ip, info, err, h)
		}
	}
	for _, ip := range []netip.Addr{deadCtr, stray} {
		if info, _ := a.ShowIP(ctx, ip); info.Assigned {
			t.Errorf("%s still assigned: %+v", ip, info)
		}
	}
	gb := readBlock(t, st, rep.StaleAffinities[0].Block.String())
	if gb.Host() != "" || gb.InUse() != 1 || exists(t, st, AffinityKey("gone", gb.CIDR)) {
		t.Fatalf("gone's block: host %q in use %d", gb.Host(), gb.InUse())
	}

	rep2, err := a.Check(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Summary.Problems() != 0 || rep2.Summary.Manual != 3 {
		t.Fatalf("after repair:\n%s", rep2)
	}
	// Applying the same report again changes nothing.
	res, err = a.ReleaseFromReport(ctx, back)
	if err != nil || len(res.Released)+len(res.AffinitiesReleased)+len(res.Repaired) != 0 {
		t.Fatalf("second apply: %+v %v", res, err)
	}
}

func TestCheckMoreInconsistencies(t *testing.T) {
	st := datastore.NewMemory()
	ctx := context.Background()
	putPool(t, st, "p", "10.65.0.0/24", 28)
	putNode(t, st, "n1", nil)
	a := New(st)
	r := mustAssign(t, a, AssignArgs{Handle: "h", Node: "n1", Num4: 2, Attrs: Attrs{Kind: KindWorkload, Endpoint: "ns/w"}})
	putWEP(t, st, "ns", "w", "n1", r.IPv4...)
	putWEP(t, st, "ns", "copy", "n1", r.IPv4[0])                           // the same address in two endpoints
	putWEP(t, st, "ns", "rogue", "n1", netip.MustParseAddr("10.65.0.200")) // never assigned
	// Lose the handle record, leave a handle with nothing, a dangling affinity
	// and a block without its affinity key.
	if err := st.Delete(ctx, HandleKey("h"), 0); err != nil {
		t.Fatal(err)
	}
	putJSON(t, st, HandleKey("ghost"), Handle{HandleID: "ghost", Block: map[string]int{"10.65.0.0/28": 1}})
	putJSON(t, st, AffinityKey("n1", netip.MustParsePrefix("10.65.0.128/28")), Affinity{State: "confirmed"})
	if err := st.Delete(ctx, AffinityKey("n1", netip.MustParsePrefix("10.65.0.0/28")), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, BlockKey(netip.MustParsePrefix("10.65.0.240/28")), []byte(`{"cidr":"10.65.0.240/28","allocations":[]}`)); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Check(ctx, CheckOptions{NoDockerReason: "DOCKER_HOST unset and /var/run/docker.sock missing"})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, in := range rep.Inconsistencies {
		got = append(got, in.Kind+"/"+in.Repair)
	}
	slices.Sort(got)
	want := []string{
		AddressInTwoEndpoints + "/", EndpointAddressHeldByOther + "/", AffinityDangling + "/" + RepairDeleteAffinity, AffinityKeyMissing + "/" + RepairCreateAffinity,
		EndpointAddressUnassigned + "/", HandleEmpty + "/" + RepairHandle, HandleMissing + "/" + RepairHandle, Unreadable + "/",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("inconsistencies\n got %v\nwant %v\n%s", got, want, rep)
	}
	if rep.Summary.ContainersChecked || !strings.Contains(strings.Join(rep.Notes, "\n"), "containers not checked: DOCKER_HOST unset") {
		t.Fatalf("notes %v", rep.Notes)
	}
	res, err := a.ReleaseFromReport(ctx, rep)
	if err != nil || len(res.Repaired) != 4 || len(res.Released) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	rep2, _ := a.Check(ctx, CheckOptions{})
	left := []string{}
	for _, in := range rep2.Inconsistencies {
		left = append(left, in.Kind)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{AddressInTwoEndpoints, EndpointAddressHeldByOther, EndpointAddressUnassigned, Unreadable}) {
		t.Fatalf("left after repair: %v", left)
	}
	// The restored handle releases both addresses.
	if rel, err := a.ReleaseByHandle(ctx, "h"); err != nil || len(rel) != 2 {
		t.Fatalf("release after repair %v %v", rel, err)
	}
	// The allocator steps over the unreadable block when claiming.
	for i := range 14 {
		mustAssign(t, a, AssignArgs{Handle: fmt.Sprintf("fill%d", i), Node: "n2", Num4: 16})
	}
	// No block left to claim: n3 borrows from n1's block, never retrying on
	// the unreadable one.
	more, err := a.AutoAssign(ctx, AssignArgs{Handle: "more", Node: "n3", Num4: 1, Attrs: manual("")})
	if err != nil || !netip.MustParsePrefix("10.65.0.0/28").Contains(more.IPv4[0]) || more.Retries != 0 {
		t.Fatalf("pool with an unreadable block: %+v %v", more, err)
	}
	if _, err := a.AutoAssign(ctx, AssignArgs{Handle: "all", Node: "n3", Num4: 16, Attrs: manual("")}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want exhausted: %v", err)
	}
	rep3, _ := a.Check(ctx, CheckOptions{})
	if !strings.Contains(rep3.String(), EndpointAddressHeldByOther+`: 10.65.0.200, handle "fill11": workload endpoint ns/rogue uses it but IPAM assigned it to manual reservation "test" on node n2`) {
		t.Fatalf("rogue endpoint's address now held by a reservation:\n%s", rep3)
	}
	if _, err := a.ReleaseFromReport(ctx, Report{Version: 99}); err == nil {
		t.Fatal("unknown report version accepted")
	}
}

func TestSetHandleAttrsNamesTheEndpointLater(t *testing.T) {
	st := datastore.NewMemory()
	ctx := context.Background()
	putPool(t, st, "p", "10.65.0.0/24", 26)
	a := New(st)
	// As the Docker IPAM driver does: the address comes before the endpoint.
	r := mustAssign(t, a, AssignArgs{Handle: "ep1", Node: "n1", Num4: 1, Attrs: Attrs{Kind: KindWorkload}})
	rep, _ := a.Check(ctx, CheckOptions{})
	if len(rep.Inconsistencies) != 1 || rep.Inconsistencies[0].Kind != WorkloadUnnamed {
		t.Fatalf("before naming: %s", rep)
	}
	if err := a.SetHandleAttrs(ctx, "ep1", Attrs{Kind: KindWorkload, Endpoint: "ns/ep1", ContainerID: "c1"}); err != nil {
		t.Fatal(err)
	}
	info, _ := a.ShowIP(ctx, r.IPv4[0])
	if info.Attrs == nil || info.Attrs.Endpoint != "ns/ep1" || info.Attrs.Node != "n1" || info.Attrs.Assigned.IsZero() {
		t.Fatalf("attrs %+v", info.Attrs)
	}
	rep, _ = a.Check(ctx, CheckOptions{})
	if len(rep.Leaked) != 1 || rep.Leaked[0].Reason != LeakEndpointGone {
		t.Fatalf("after naming: %s", rep)
	}
	if err := a.SetHandleAttrs(ctx, "nobody", Attrs{Kind: KindWorkload}); err == nil {
		t.Fatal("unknown handle accepted")
	}
}

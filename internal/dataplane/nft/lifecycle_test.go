package nft

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

func twoOpen(w1, w2 *workload) *dataplane.Desired {
	return &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{w1.ep("profile:open"), w2.ep("profile:open")},
		Chains:    []dataplane.PolicyChain{allowAll("profile:open")},
	}
}

func TestAntiSpoofing(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	serve(t, w2.ns, "tcp:8080")
	// w1 also holds an address that is not its endpoint's; the host even
	// routes it back to w1, so only the anti-spoofing check stands between
	// it and w2.
	spoof4, spoof6 := netip.MustParseAddr("10.65.0.99"), netip.MustParseAddr("fd00:65::99")
	w1.ns.MustExec(t, "ip", "addr", "add", spoof4.String()+"/32", "dev", "eth0")
	w1.ns.MustExec(t, "ip", "addr", "add", spoof6.String()+"/128", "dev", "eth0", "nodad")
	tp.host.MustExec(t, "ip", "route", "add", spoof4.String()+"/32", "dev", "cali1", "scope", "link")
	tp.host.MustExec(t, "ip", "-6", "route", "add", spoof6.String()+"/128", "dev", "cali1")

	d := twoOpen(w1, w2)
	tp.apply(t, d)
	if got := mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080), w1.v4); got != w1.v4.String() {
		t.Fatalf("server saw %s", got)
	}
	mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080), w1.v6)
	mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080), spoof4)
	mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 8080), spoof6)

	// Control: once the endpoint owns a network holding the extra
	// addresses, they pass.
	d = twoOpen(w1, w2)
	d.Endpoints[0].Addrs = append(d.Endpoints[0].Addrs, netip.MustParsePrefix("10.65.0.96/28"), netip.MustParsePrefix("fd00:65::/120"))
	st := tp.apply(t, d)
	if st.ElementsAdded != 2 || st.RulesWritten != 0 {
		t.Errorf("adding two networks should add two anti-spoofing elements: %+v", st)
	}
	mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080), spoof4)
	mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080), spoof6)
	if out := nftList(t, tp.host); !strings.Contains(out, `"cali1" . 10.65.0.96/28`) {
		t.Errorf("the network should be in spoof4net:\n%s", out)
	}
}

func TestWorkloadToHost(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	serve(t, tp.host, "tcp:8080")
	serve(t, w1.ns, "tcp:8080")
	host := ap(tp.hostAddr, 8080)

	d := twoOpen(w1, w2) // EndpointToHostAction empty: Drop
	tp.apply(t, d)
	mustNotReach(t, w1.ns, "tcp", host)
	mustNotReach(t, w1.ns, "tcp", ap(tp.hostAddr6, 8080))
	// IPv6 still works between workloads: neighbour discovery with the
	// host is let through even though traffic to the host is dropped.
	mustReach(t, w2.ns, "tcp", ap(w1.v6, 8080))

	d.Host.EndpointToHostAction = "Accept"
	tp.apply(t, d)
	mustReach(t, w1.ns, "tcp", host)
	mustReach(t, w1.ns, "tcp", ap(tp.hostAddr6, 8080))

	// With Accept the workload's egress policy still applies.
	deny := dataplane.PolicyChain{ID: "policy:t/no-out", Egress: []dataplane.Rule{{Action: dataplane.Deny}}}
	d = twoOpen(w1, w2)
	d.Host.EndpointToHostAction = "Accept"
	d.Chains = append(d.Chains, deny)
	d.Endpoints[0].EgressPolicies = []string{deny.ID}
	tp.apply(t, d)
	mustNotReach(t, w1.ns, "tcp", host)
	mustReach(t, w2.ns, "tcp", host)

	// The host reaches its workloads even when their ingress denies all
	// (Calico does not police host-to-local-workload traffic).
	d = twoOpen(w1, w2)
	d.Endpoints[0].Profiles = nil
	tp.apply(t, d)
	mustNotReach(t, w2.ns, "tcp", ap(w1.v4, 8080))
	mustReach(t, tp.host, "tcp", ap(w1.v4, 8080))
}

func TestNATOutgoing(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	serve(t, tp.outside, "tcp:8080")
	serve(t, w2.ns, "tcp:8080")

	d := twoOpen(w1, w2)
	tp.apply(t, d)
	// The outside has no route to the pool: without masquerading there is no way back.
	mustNotReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 8080))

	d.NAT = dataplane.NATConfig{
		MasqueradePools: pfx("10.65.0.0/16", "fd00:65::/64"),
		AllPools:        pfx("10.65.0.0/16", "10.66.0.0/16", "fd00:65::/64"),
	}
	st := tp.apply(t, d)
	if st.RulesWritten != 0 {
		t.Errorf("natOutgoing pools should change set elements only: %+v", st)
	}
	if got := mustReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 8080)); got != tp.hostAddr.String() {
		t.Fatalf("outside saw source %s, want the host's %s", got, tp.hostAddr)
	}
	if got := mustReach(t, w1.ns, "tcp", ap(tp.outsideAddr6, 8080)); got != tp.hostAddr6.String() {
		t.Fatalf("outside saw source %s, want the host's %s", got, tp.hostAddr6)
	}
	// Pool to pool is not masqueraded.
	if got := mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080)); got != w1.v4.String() {
		t.Fatalf("w2 saw source %s, want %s", got, w1.v4)
	}
}

func TestUnknownInterfaceDropped(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	stray := tp.addWorkload(t, "cali9", 9) // no endpoint for it
	serve(t, w1.ns, "tcp:8080")
	serve(t, stray.ns, "tcp:8080")
	serve(t, tp.host, "tcp:8080")
	d := twoOpen(w1, w2)
	d.Host.EndpointToHostAction = "Accept"
	tp.apply(t, d)
	mustReach(t, w2.ns, "tcp", ap(w1.v4, 8080))
	mustNotReach(t, stray.ns, "tcp", ap(w1.v4, 8080))
	mustNotReach(t, stray.ns, "tcp", ap(w1.v6, 8080))
	mustNotReach(t, w1.ns, "tcp", ap(stray.v4, 8080))
	mustNotReach(t, stray.ns, "tcp", ap(tp.hostAddr, 8080))
	mustNotReach(t, tp.outside, "tcp", ap(stray.v4, 8080))
	// Known once its endpoint appears.
	d.Endpoints = append(d.Endpoints, stray.ep("profile:open"))
	tp.apply(t, d)
	mustReach(t, stray.ns, "tcp", ap(w1.v4, 8080))
	mustReach(t, w1.ns, "tcp", ap(stray.v4, 8080))
}

func TestRestartKeepsEstablished(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	serve(t, w2.ns, "tcp:8080")
	d := twoOpen(w1, w2)
	tp.apply(t, d)
	s := openSession(t, w1.ns, ap(w2.v4, 8080))
	if !s.roundTrip(t, "before") {
		t.Fatal("session does not work")
	}

	// The agent restarts: a new driver with no memory, same desired state.
	tp.drv.Close()
	drv, err := New(Options{NetNS: tp.host.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	tp.drv = drv
	st := tp.apply(t, twoOpen(w1, w2))
	if !st.KernelRead || st.Messages != 0 {
		t.Fatalf("a restart over an identical table should change nothing: %+v", st)
	}
	if !s.roundTrip(t, "after restart") {
		t.Fatal("established connection broke across the restart")
	}

	// Restart again into a state that no longer allows w1 -> w2: new
	// connections are refused, the established one keeps flowing, and the
	// table is edited in place, not rebuilt.
	tp.drv.Close()
	drv, err = New(Options{NetNS: tp.host.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	tp.drv = drv
	d = twoOpen(w1, w2)
	d.Endpoints[1].Profiles = nil
	st = tp.apply(t, d)
	if st.Rebuilt || st.ChainsRewritten != 0 || st.ChainsAdded != 2 || st.ChainsDeleted != 0 ||
		st.ElementsAdded != 2 || st.ElementsDeleted != 2 {
		t.Fatalf("expected two new endpoint chains and cali2's map elements switched to them: %+v", st)
	}
	mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
	if !s.roundTrip(t, "after policy change") {
		t.Fatal("established connection broke when the policy changed")
	}
}

func TestResyncRepairsDrift(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	w3 := tp.addWorkload(t, "cali3", 3)
	serve(t, w1.ns, "tcp:8080")
	d := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{w1.ep("profile:a"), w2.ep("profile:a"), w3.ep("profile:b")},
		Chains:    []dataplane.PolicyChain{sameProfile("profile:a", "s-a"), sameProfile("profile:b", "s-b")},
		Sets: []dataplane.IPSet{
			{ID: "s-a", Selector: "has(a)", Members: hostPfx(w1, w2)},
			{ID: "s-b", Selector: "has(b)", Members: hostPfx(w3)},
		},
	}
	tp.apply(t, d)
	want := nftList(t, tp.host)
	mustReach(t, w2.ns, "tcp", ap(w1.v4, 8080))
	mustNotReach(t, w3.ns, "tcp", ap(w1.v4, 8080))
	ctx := context.Background()

	// No drift: a resync finds the table exactly as programmed.
	if err := tp.drv.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := tp.apply(t, d); st.Messages != 0 || st.Drifted != 0 {
		t.Fatalf("resync of an untouched table should find nothing: %+v", st)
	}

	tp.host.MustExec(t, "nft", "flush", "table", "inet", tableName)
	mustReach(t, w3.ns, "tcp", ap(w1.v4, 8080)) // nothing enforces policy now
	// Without a resync the driver trusts its memory: nothing to do.
	if st := tp.apply(t, d); st.Messages != 0 {
		t.Fatalf("apply without resync should not read the kernel: %+v", st)
	}
	if err := tp.drv.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	st := tp.apply(t, d)
	if st.Drifted == 0 || st.RulesWritten == 0 || st.Rebuilt {
		t.Fatalf("resync+apply should have repaired the flushed chains in place: %+v", st)
	}
	mustNotReach(t, w3.ns, "tcp", ap(w1.v4, 8080))
	mustReach(t, w2.ns, "tcp", ap(w1.v4, 8080))
	if got := nftList(t, tp.host); got != want {
		t.Fatalf("table after repair differs:\n%s\nwant:\n%s", got, want)
	}

	// Single objects: a map element, a set element, a rule, a chain.
	tp.host.MustExec(t, "nft", "delete", "element", "inet", tableName, twMap, `{ "cali1" }`)
	tp.host.MustExec(t, "nft", "delete", "element", "inet", tableName, ipSetName("s-a", 4), "{ "+w2.v4.String()+" }")
	tp.host.MustExec(t, "nft", "add", "element", "inet", tableName, ipSetName("s-a", 4), "{ "+w3.v4.String()+" }")
	tw3 := endpointChainName(nil, []string{"profile:b"}, true)
	handle := ruleHandle(t, tp, tw3, 1)
	tp.host.MustExec(t, "nft", "delete", "rule", "inet", tableName, tw3, "handle", handle)
	tp.host.MustExec(t, "nft", "add", "chain", "inet", tableName, "intruder")
	if err := tp.drv.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	st = tp.apply(t, d)
	if st.Drifted != 4 || st.ElementsAdded != 2 || st.ElementsDeleted != 1 || st.ChainsRewritten != 1 || st.ChainsDeleted != 1 {
		t.Fatalf("unexpected repair: %+v", st)
	}
	if got := nftList(t, tp.host); got != want {
		t.Fatalf("table after repair differs:\n%s\nwant:\n%s", got, want)
	}

	// A base chain on another priority cannot be edited in place: the
	// table is replaced in one transaction, and established flows (judged
	// by conntrack) do not notice.
	s := openSession(t, w2.ns, ap(w1.v4, 8080))
	if !s.roundTrip(t, "before") {
		t.Fatal("session does not work")
	}
	tp.host.MustExec(t, "nft", "flush", "chain", "inet", tableName, chainFwd)
	tp.host.MustExec(t, "nft", "delete", "chain", "inet", tableName, chainFwd)
	tp.host.MustExec(t, "nft", "add", "chain", "inet", tableName, chainFwd, "{ type filter hook forward priority 10; policy accept; }")
	if err := tp.drv.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	st = tp.apply(t, d)
	if !st.Rebuilt {
		t.Fatalf("expected the table to be replaced: %+v", st)
	}
	if got := nftList(t, tp.host); got != want {
		t.Fatalf("table after replacement differs:\n%s\nwant:\n%s", got, want)
	}
	if !s.roundTrip(t, "after") {
		t.Fatal("established connection broke when the table was replaced")
	}
	mustNotReach(t, w3.ns, "tcp", ap(w1.v4, 8080))

	// The whole table gone.
	tp.host.MustExec(t, "nft", "delete", "table", "inet", tableName)
	if err := tp.drv.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	tp.apply(t, d)
	if got := nftList(t, tp.host); got != want {
		t.Fatalf("table after recreation differs:\n%s\nwant:\n%s", got, want)
	}
	mustNotReach(t, w3.ns, "tcp", ap(w1.v4, 8080))
}

// ruleHandle returns the handle of the n-th rule (from 0) of a chain.
func ruleHandle(t *testing.T, tp *topo, chain string, n int) string {
	t.Helper()
	out := tp.host.MustExec(t, "nft", "-a", "list", "chain", "inet", tableName, chain)
	var handles []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "# handle "); i >= 0 && !strings.Contains(l, "chain ") {
			handles = append(handles, strings.TrimSpace(l[i+len("# handle "):]))
		}
	}
	if n >= len(handles) {
		t.Fatalf("chain %s has %d rules", chain, len(handles))
	}
	return handles[n]
}

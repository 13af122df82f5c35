package nft

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
)

func tcpPort(p uint16) dataplane.Match {
	return dataplane.Match{Ports: []dataplane.PortRange{{First: p, Last: p}}}
}

func fromNet(s string) dataplane.Match {
	return dataplane.Match{Nets: []netip.Prefix{netip.MustParsePrefix(s)}}
}

var defaultFailsafeIn = []dataplane.FailsafePort{{Protocol: 6, Port: 22}, {Protocol: 6, Port: 179}, {Protocol: 17, Port: 68}}

// TestHostEndpointTraffic sends real traffic to, from and through a host
// namespace whose uplink gets a host endpoint: default deny, failsafe
// ports, a policy allowing one source, established connections kept,
// pre-DNAT policy on a published port, applyOnForward, and untracked
// policy (no conntrack entry).
func TestHostEndpointTraffic(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	serve(t, w1.ns, "tcp:80")
	serve(t, tp.host, "tcp:8000", "tcp:22", "tcp:7000")
	serve(t, tp.outside, "tcp:9000")
	// A second client address outside, and a route to the workloads.
	tp.outside.MustExec(t, "ip", "addr", "add", "192.0.2.3/24", "dev", "eth0")
	tp.outside.MustExec(t, "ip", "route", "add", "10.65.0.0/16", "via", tp.hostAddr.String())
	good := netip.MustParseAddr("192.0.2.3")
	tcp := u8(6)

	hostPort := []dataplane.HostPort{{Protocol: 6, HostPort: 8080, Target: w1.v4, Port: 80, Endpoint: "test/cali1"}}
	base := func(heps []dataplane.HostEndpoint, fsIn []dataplane.FailsafePort, extra ...dataplane.PolicyChain) *dataplane.Desired {
		d := &dataplane.Desired{
			Endpoints: []dataplane.Endpoint{w1.ep("profile:open")},
			Chains:    append([]dataplane.PolicyChain{allowAll("profile:open")}, extra...),
			HostPorts: hostPort,
		}
		d.Hosts = dataplane.HostProtection{Endpoints: heps, FailsafeIn: fsIn,
			FailsafeOut: []dataplane.FailsafePort{{Protocol: 17, Port: 53}}}
		return d
	}
	tp.apply(t, base(nil, defaultFailsafeIn))
	t.Run("no host endpoint: host open", func(t *testing.T) {
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		mustReach(t, tp.host, "tcp", ap(tp.outsideAddr, 9000))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080))
		mustReach(t, tp.outside, "tcp", ap(w1.v4, 80))
	})

	sess := openSession(t, tp.outside, ap(tp.hostAddr, 7000))
	up0 := dataplane.HostEndpoint{ID: "h-up0", Iface: "up0"}
	t.Run("host endpoint without policy: deny but failsafe and established", func(t *testing.T) {
		tp.apply(t, base([]dataplane.HostEndpoint{up0}, defaultFailsafeIn))
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		mustNotReach(t, tp.host, "tcp", ap(tp.outsideAddr, 9000))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 22))
		if !sess.roundTrip(t, "still there") {
			t.Fatal("an established connection was cut by the host endpoint")
		}
		// Forwarded traffic is not judged without applyOnForward policy.
		mustReach(t, tp.outside, "tcp", ap(w1.v4, 80))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080))
	})

	t.Run("policy allows one source; failsafes off close 22", func(t *testing.T) {
		allowGood := dataplane.PolicyChain{ID: "gnp:allow-good", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, IPVersion: 4, Protocol: tcp, Src: fromNet("192.0.2.3/32"), Dst: tcpPort(8000)}}}
		e := up0
		e.Ingress = []string{allowGood.ID}
		tp.apply(t, base([]dataplane.HostEndpoint{e}, defaultFailsafeIn, allowGood))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000), good)
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 22))
		tp.apply(t, base([]dataplane.HostEndpoint{e}, nil, allowGood))
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 22))
		// A profile applies when no policy does.
		e.Ingress, e.Egress, e.Profiles = nil, nil, []string{"profile:open"}
		tp.apply(t, base([]dataplane.HostEndpoint{e}, nil))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		mustReach(t, tp.host, "tcp", ap(tp.outsideAddr, 9000))
	})

	t.Run("found by expectedIPs follows the address", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events := tp.drv.WatchAddrs(ctx)
		byIP := dataplane.HostEndpoint{ID: "by-ip", ExpectedIPs: []netip.Addr{netip.MustParseAddr("192.0.2.77")}}
		d := base([]dataplane.HostEndpoint{byIP}, defaultFailsafeIn)
		// No interface carries the address: nothing is governed.
		tp.apply(t, d)
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		tp.host.MustExec(t, "ip", "addr", "add", "192.0.2.77/32", "dev", "up0")
		waitEvent(t, events)
		tp.apply(t, d)
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 22))
		tp.host.MustExec(t, "ip", "addr", "del", "192.0.2.77/32", "dev", "up0")
		waitEvent(t, events)
		tp.apply(t, d)
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
	})

	t.Run("tiers: a pass in the first tier reaches an allow in the next", func(t *testing.T) {
		passGood := dataplane.PolicyChain{ID: "gnp:security.pass-good", Ingress: []dataplane.Rule{
			{Action: dataplane.Pass, IPVersion: 4, Src: fromNet("192.0.2.3/32")}}}
		allow8000 := dataplane.PolicyChain{ID: "gnp:allow-8000", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, Protocol: tcp, Dst: tcpPort(8000)}}}
		e := up0
		e.Ingress = []string{passGood.ID, allow8000.ID}
		e.IngressTiers = []dataplane.EndpointTier{{Name: "security", Policies: 1}, {Name: "default", Policies: 1}}
		tp.apply(t, base([]dataplane.HostEndpoint{e}, defaultFailsafeIn, passGood, allow8000))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000), good)
		// The other source is not passed: the security tier's end drops.
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		// The same lists without tiers: the pass skips the allow, so the
		// good source is dropped too (no profile).
		e.IngressTiers = nil
		tp.apply(t, base([]dataplane.HostEndpoint{e}, defaultFailsafeIn, passGood, allow8000))
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000), good)
		// A security tier whose default action is Pass lets both through.
		e.IngressTiers = []dataplane.EndpointTier{{Name: "security", Policies: 1, DefaultPass: true}, {Name: "default", Policies: 1}}
		tp.apply(t, base([]dataplane.HostEndpoint{e}, defaultFailsafeIn, passGood, allow8000))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000), good)
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		// Pre-DNAT lists are tiered too: a pass from the first tier
		// reaches the next tier's deny of 8080 (as does a packet the
		// first tier leaves undecided: pre-DNAT tiers do not drop at
		// their end, as in Felix). Untiered, the pass ends the list.
		deny8080 := dataplane.PolicyChain{ID: "gnp:deny-8080", Ingress: []dataplane.Rule{
			{Action: dataplane.Deny, Protocol: tcp, Dst: tcpPort(8080)}}}
		star := dataplane.HostEndpoint{ID: "all", Iface: "*", Profiles: []string{"profile:open"},
			PreDNAT: []string{passGood.ID, deny8080.ID}, PreDNATTiers: []dataplane.EndpointTier{{Name: "security", Policies: 1}, {Name: "default", Policies: 1}}}
		tp.apply(t, base([]dataplane.HostEndpoint{star}, defaultFailsafeIn, passGood, deny8080))
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080), good)
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080))
		star.PreDNATTiers = nil
		tp.apply(t, base([]dataplane.HostEndpoint{star}, defaultFailsafeIn, passGood, deny8080))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080), good)
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080))
	})

	t.Run("pre-DNAT policy restricts a published port", func(t *testing.T) {
		// Only 192.0.2.3 may reach 8080, on every interface ("*");
		// host traffic itself stays open through the profile.
		onlyGood := dataplane.PolicyChain{ID: "gnp:only-good-8080", Ingress: []dataplane.Rule{
			{Action: dataplane.Deny, IPVersion: 4, Protocol: tcp, Src: dataplane.Match{NotNets: []netip.Prefix{netip.MustParsePrefix("192.0.2.3/32")}}, Dst: tcpPort(8080)}}}
		star := dataplane.HostEndpoint{ID: "all", Iface: "*", PreDNAT: []string{onlyGood.ID}, Profiles: []string{"profile:open"}}
		tp.apply(t, base([]dataplane.HostEndpoint{star}, defaultFailsafeIn, onlyGood))
		if peer := mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080), good); peer != good.String() {
			t.Errorf("published port: workload saw %s, want %s", peer, good)
		}
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080))
		// The workload's own port (no DNAT) is not 8080: unaffected.
		mustReach(t, tp.outside, "tcp", ap(w1.v4, 80))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
	})

	t.Run("applyOnForward judges forwarded traffic", func(t *testing.T) {
		fwd := dataplane.PolicyChain{ID: "gnp:fwd-good", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, IPVersion: 4, Src: fromNet("192.0.2.3/32")}}}
		e := up0
		e.Ingress, e.ForwardIngress, e.Profiles = []string{fwd.ID}, []string{fwd.ID}, []string{"profile:open"}
		tp.apply(t, base([]dataplane.HostEndpoint{e}, defaultFailsafeIn, fwd))
		mustReach(t, tp.outside, "tcp", ap(w1.v4, 80), good)
		mustNotReach(t, tp.outside, "tcp", ap(w1.v4, 80))
		// Without applyOnForward the same policy leaves forwarded traffic alone.
		e.ForwardIngress = nil
		tp.apply(t, base([]dataplane.HostEndpoint{e}, defaultFailsafeIn, fwd))
		mustReach(t, tp.outside, "tcp", ap(w1.v4, 80))
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
	})

	t.Run("doNotTrack leaves no conntrack entry", func(t *testing.T) {
		untracked := dataplane.PolicyChain{ID: "gnp:untracked-8000",
			Ingress: []dataplane.Rule{{Action: dataplane.Allow, Protocol: tcp, Dst: tcpPort(8000)}},
			Egress:  []dataplane.Rule{{Action: dataplane.Allow, Protocol: tcp, Src: tcpPort(8000)}}}
		e := up0
		e.UntrackedIngress, e.UntrackedEgress = []string{untracked.ID}, []string{untracked.ID}
		tp.apply(t, base([]dataplane.HostEndpoint{e}, defaultFailsafeIn, untracked))
		tp.host.MustExec(t, "conntrack", "-F")
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
		out, _ := tp.host.Exec("conntrack", "-L", "-p", "tcp", "--dport", "8000")
		if strings.Contains(out, "dport=8000") {
			t.Errorf("untracked connection is in conntrack:\n%s", out)
		}
		// Everything else on the interface is still denied (and tracked).
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 7000))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 22))
		if out, err := tp.host.Exec("conntrack", "-L", "-p", "tcp", "--dport", "22"); !strings.Contains(out, "dport=22") {
			t.Errorf("the tracked failsafe connection is not in conntrack (is the check blind?): %v\n%s", err, out)
		}
		// A restarted driver reads the host chains back and finds nothing to do.
		drv, err := New(Options{NetNS: tp.host.Path()})
		if err != nil {
			t.Fatal(err)
		}
		defer drv.Close()
		drv.SetDesired(base([]dataplane.HostEndpoint{e}, defaultFailsafeIn, untracked))
		st, err := drv.Apply(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Messages != 0 {
			t.Errorf("a fresh driver over the same state sent %d messages: %+v", st.Messages, st)
		}
	})

	t.Run("removal", func(t *testing.T) {
		tp.apply(t, base(nil, defaultFailsafeIn))
		if out := nftList(t, tp.host); strings.Contains(out, "host-") || strings.Contains(out, "hep-") {
			t.Errorf("host endpoint objects left behind:\n%s", out)
		}
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8000))
	})
}

func waitEvent(t *testing.T, events <-chan struct{}) {
	t.Helper()
	select {
	case _, ok := <-events:
		if !ok {
			t.Fatal("address watch ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no address event within 10s")
	}
}

func TestResolveHostEndpoints(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	ifAddrs := map[string][]netip.Addr{
		"eth0":  {a("192.0.2.1"), a("2001:db8::1")},
		"eth1":  {a("192.0.2.2")},
		"eth2":  {a("192.0.2.1")},
		"cali1": {a("192.0.2.9")},
	}
	skip := func(n string) bool { return strings.HasPrefix(n, "cali") }
	hp := dataplane.HostProtection{Endpoints: []dataplane.HostEndpoint{
		{ID: "b", ExpectedIPs: []netip.Addr{a("192.0.2.1"), a("192.0.2.2")}, Ingress: []string{"p"}},
		{ID: "c", ExpectedIPs: []netip.Addr{a("2001:db8::1"), a("192.0.2.9")}},
		{ID: "gone", ExpectedIPs: []netip.Addr{a("198.51.100.1")}},
		{ID: "s", Iface: "*"},
		{ID: "named", Iface: "eth2"},
	}}
	got := resolveHostEndpoints(hp, ifAddrs, skip)
	want := []dataplane.HostEndpoint{
		{ID: "s", Iface: "*"},
		{ID: "b", Iface: "eth0", Ingress: []string{"p"}},
		{ID: "b", Iface: "eth1", Ingress: []string{"p"}},
		{ID: "named", Iface: "eth2"},
	}
	if !reflect.DeepEqual(got.Endpoints, want) {
		t.Fatalf("got %+v\nwant %+v", got.Endpoints, want)
	}
	if hp.Endpoints[0].Iface != "" {
		t.Fatal("the input was modified")
	}
}

// TestRenderHostsGolden pins the host endpoint objects' rendering
// (testdata/hosts.golden; -update rewrites it).
func TestRenderHostsGolden(t *testing.T) {
	d := &dataplane.Desired{
		Chains: []dataplane.PolicyChain{
			{ID: "gnp:fwd", Ingress: []dataplane.Rule{{Action: dataplane.Allow}}},
			{ID: "gnp:host", Ingress: []dataplane.Rule{{Action: dataplane.Allow, Protocol: u8(6), Dst: tcpPort(443)}}, Egress: []dataplane.Rule{{Action: dataplane.Allow}}},
			{ID: "gnp:pre", Ingress: []dataplane.Rule{{Action: dataplane.Deny, IPVersion: 4, Src: dataplane.Match{NotNets: pfx("203.0.113.0/24")}, Protocol: u8(6), Dst: tcpPort(8080)}}},
			{ID: "gnp:untracked", Ingress: []dataplane.Rule{{Action: dataplane.Allow, Protocol: u8(17), Dst: tcpPort(53)}}},
			{ID: "profile:allow", Ingress: []dataplane.Rule{{Action: dataplane.Allow}}, Egress: []dataplane.Rule{{Action: dataplane.Allow}}},
		},
		Hosts: dataplane.HostProtection{
			Endpoints: []dataplane.HostEndpoint{
				{ID: "all", Iface: "*", PreDNAT: []string{"gnp:pre"}, Profiles: []string{"profile:allow"}},
				{ID: "eth0", Iface: "eth0", Ingress: []string{"gnp:fwd", "gnp:host"}, Egress: []string{"gnp:host"}, ForwardIngress: []string{"gnp:fwd"},
					UntrackedIngress: []string{"gnp:untracked"}},
			},
			FailsafeIn:  []dataplane.FailsafePort{{Protocol: 6, Port: 22}, {Protocol: 6, Port: 2379, Net: netip.MustParsePrefix("10.0.0.0/8")}},
			FailsafeOut: []dataplane.FailsafePort{{Protocol: 17, Port: 53}},
		},
	}
	got := Render(d)
	path := filepath.Join("testdata", "hosts.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test -run TestRenderHostsGolden -update` to create it)", err)
	}
	if string(want) != got {
		t.Errorf("Render differs from %s (rerun with -update if intended):\n%s", path, got)
	}
	if strings.Contains(got, "# problem") {
		t.Errorf("problems reported:\n%s", got)
	}
}

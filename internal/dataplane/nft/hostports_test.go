package nft

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

// TestHostPortTraffic sends real traffic through published ports in a
// throwaway host namespace: from "outside" (another host), from another
// workload, from the workload itself (hairpin) and from the host. It checks
// the address the server saw (the client's own, except for hairpin), that
// the workload's ingress policy judges the real client, and that removing
// the port closes it.
func TestHostPortTraffic(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	for _, w := range []*workload{w1, w2} {
		serve(t, w.ns, "tcp:80", "udp:53")
	}
	// A second address on the uplink, for ports published on one address.
	tp.host.MustExec(t, "ip", "addr", "add", "192.0.2.10/24", "dev", "up0")
	other := netip.MustParseAddr("192.0.2.10")
	ports := []dataplane.HostPort{
		{Protocol: 6, HostPort: 8080, Target: w1.v4, Port: 80, Endpoint: "test/cali1"},
		{Protocol: 6, HostPort: 8080, Target: w1.v6, Port: 80, Endpoint: "test/cali1"},
		{Protocol: 17, HostPort: 5353, Target: w1.v4, Port: 53, Endpoint: "test/cali1"},
		{Protocol: 17, HostPort: 5353, Target: w1.v6, Port: 53, Endpoint: "test/cali1"},
		{Protocol: 6, HostIP: other, HostPort: 9090, Target: w2.v4, Port: 80, Endpoint: "test/cali2"},
	}
	desired := func(ingress []string, hps []dataplane.HostPort, extra ...dataplane.PolicyChain) *dataplane.Desired {
		e1, e2 := w1.ep("profile:open"), w2.ep("profile:open")
		e1.IngressPolicies = ingress
		return &dataplane.Desired{
			Endpoints: []dataplane.Endpoint{e1, e2},
			Chains:    append([]dataplane.PolicyChain{allowAll("profile:open")}, extra...),
			HostPorts: hps,
		}
	}
	tp.apply(t, desired(nil, ports))

	t.Run("from another host, source kept", func(t *testing.T) {
		for _, c := range []struct {
			proto string
			dst   netip.AddrPort
			want  netip.Addr
		}{
			{"tcp", ap(tp.hostAddr, 8080), tp.outsideAddr},
			{"tcp", ap(tp.hostAddr6, 8080), tp.outsideAddr6},
			{"udp", ap(tp.hostAddr, 5353), tp.outsideAddr},
			{"udp", ap(tp.hostAddr6, 5353), tp.outsideAddr6},
			{"tcp", ap(other, 9090), tp.outsideAddr},
		} {
			if peer := mustReach(t, tp.outside, c.proto, c.dst); peer != c.want.String() {
				t.Errorf("%s to %s: the workload saw %s, want the client %s", c.proto, c.dst, peer, c.want)
			}
		}
		// A port published on one address is not open on the others.
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 9090))
	})

	t.Run("from a workload and from the host", func(t *testing.T) {
		if peer := mustReach(t, w2.ns, "tcp", ap(tp.hostAddr, 8080)); peer != w2.v4.String() {
			t.Errorf("workload to published port: seen as %s, want %s", peer, w2.v4)
		}
		if peer := mustReach(t, w2.ns, "udp", ap(tp.hostAddr6, 5353)); peer != w2.v6.String() {
			t.Errorf("workload to published port (IPv6): seen as %s, want %s", peer, w2.v6)
		}
		// Hairpin: the workload reaches itself through the host; the
		// connection is masqueraded so that the reply comes back.
		if peer := mustReach(t, w1.ns, "tcp", ap(tp.hostAddr, 8080)); peer == w1.v4.String() {
			t.Errorf("hairpin connection was not masqueraded (seen as %s)", peer)
		}
		mustReach(t, w1.ns, "tcp", ap(tp.hostAddr6, 8080))
		mustReach(t, w1.ns, "udp", ap(tp.hostAddr, 5353))
		// The host itself, to its own address.
		if peer := mustReach(t, tp.host, "tcp", ap(tp.hostAddr, 8080)); peer != tp.hostAddr.String() {
			t.Errorf("host to its own published port: seen as %s", peer)
		}
		mustReach(t, tp.host, "tcp", ap(tp.hostAddr6, 8080))
		mustReach(t, tp.host, "udp", ap(tp.hostAddr, 5353))
		// Loopback is not translated (the node's proxy serves it).
		mustNotReach(t, tp.host, "tcp", ap(netip.MustParseAddr("127.0.0.1"), 8080))
	})

	t.Run("ingress policy judges the real client", func(t *testing.T) {
		onlyOutside := dataplane.PolicyChain{ID: "policy:t/only-outside", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, IPVersion: 4, Src: dataplane.Match{Nets: []netip.Prefix{netip.PrefixFrom(tp.outsideAddr, 32)}}},
		}}
		tp.apply(t, desired([]string{onlyOutside.ID}, ports, onlyOutside))
		mustReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080))
		mustNotReach(t, w2.ns, "tcp", ap(tp.hostAddr, 8080))
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr6, 8080))
		notOutside := dataplane.PolicyChain{ID: "policy:t/not-outside", Ingress: []dataplane.Rule{
			{Action: dataplane.Deny, IPVersion: 4, Src: dataplane.Match{Nets: []netip.Prefix{netip.PrefixFrom(tp.outsideAddr, 32)}}},
			{Action: dataplane.Allow},
		}}
		tp.apply(t, desired([]string{notOutside.ID}, ports, notOutside))
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080))
		mustReach(t, w2.ns, "tcp", ap(tp.hostAddr, 8080))
	})

	t.Run("kernel state and removal", func(t *testing.T) {
		tp.apply(t, desired(nil, ports))
		out := nftList(t, tp.host)
		for _, want := range []string{"map hp4 ", "tcp . 8080 : 10.65.0.1 . 80", "chain dnat-pre", "fib daddr type != local accept"} {
			if !strings.Contains(out, want) {
				t.Errorf("nft list lacks %q:\n%s", want, out)
			}
		}
		// A restarted driver reads the maps back and finds nothing to do.
		drv, err := New(Options{NetNS: tp.host.Path()})
		if err != nil {
			t.Fatal(err)
		}
		defer drv.Close()
		drv.SetDesired(desired(nil, ports))
		st, err := drv.Apply(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Messages != 0 {
			t.Errorf("a fresh driver over the same state sent %d messages: %+v", st.Messages, st)
		}
		if err := drv.Resync(context.Background()); err != nil {
			t.Fatal(err)
		}
		st = tp.apply(t, desired(nil, ports[4:]))
		if st.ElementsDeleted == 0 || st.RulesWritten != 0 {
			t.Errorf("removing ports should only delete elements: %+v", st)
		}
		mustNotReach(t, tp.outside, "tcp", ap(tp.hostAddr, 8080))
		mustNotReach(t, tp.outside, "udp", ap(tp.hostAddr, 5353))
		mustReach(t, tp.outside, "tcp", ap(other, 9090))
	})
}

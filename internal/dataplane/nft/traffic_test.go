package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Chains and sets used by the traffic tests.
func allowAll(id string) dataplane.PolicyChain {
	return dataplane.PolicyChain{ID: id,
		Ingress: []dataplane.Rule{{Action: dataplane.Allow}}, Egress: []dataplane.Rule{{Action: dataplane.Allow}}}
}

// sameProfile is the Docker-network profile: ingress from members, egress anywhere.
func sameProfile(id, set string) dataplane.PolicyChain {
	return dataplane.PolicyChain{ID: id,
		Ingress: []dataplane.Rule{{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{set}}}},
		Egress:  []dataplane.Rule{{Action: dataplane.Allow}}}
}

func hostPfx(ws ...*workload) []netip.Prefix {
	var out []netip.Prefix
	for _, w := range ws {
		out = append(out, netip.PrefixFrom(w.v4, 32), netip.PrefixFrom(w.v6, 128))
	}
	return out
}

func TestTraffic(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	w3 := tp.addWorkload(t, "cali3", 3)
	for _, w := range []*workload{w1, w2, w3} {
		serve(t, w.ns, "tcp:8080", "tcp:8081", "tcp:9090", "udp:8080")
	}

	t.Run("profiles", func(t *testing.T) {
		tp.apply(t, &dataplane.Desired{
			Endpoints: []dataplane.Endpoint{w1.ep("profile:a"), w2.ep("profile:a"), w3.ep("profile:b")},
			Chains:    []dataplane.PolicyChain{sameProfile("profile:a", "s-a"), sameProfile("profile:b", "s-b")},
			Sets: []dataplane.IPSet{
				{ID: "s-a", Selector: "has(a)", Members: hostPfx(w1, w2)},
				{ID: "s-b", Selector: "has(b)", Members: hostPfx(w3)},
			},
		})
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w2.ns, "tcp", ap(w1.v4, 8080))
		mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
		mustReach(t, w1.ns, "udp", ap(w2.v4, 8080))
		if !pingOK(w1.ns, w2.v4) || !pingOK(w1.ns, w2.v6) {
			t.Fatal("ping within the profile failed")
		}
		mustNotReach(t, w3.ns, "tcp", ap(w1.v4, 8080))
		mustNotReach(t, w3.ns, "tcp", ap(w1.v6, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w3.v4, 8080))
		if pingOK(w3.ns, w2.v6) {
			t.Fatal("ping6 across profiles got through")
		}
	})

	open3 := func(extra ...dataplane.PolicyChain) *dataplane.Desired {
		return &dataplane.Desired{
			Endpoints: []dataplane.Endpoint{w1.ep("profile:open"), w2.ep("profile:open"), w3.ep("profile:open")},
			Chains:    append([]dataplane.PolicyChain{allowAll("profile:open")}, extra...),
		}
	}
	withIngress := func(d *dataplane.Desired, w *workload, pols ...string) *dataplane.Desired {
		for i := range d.Endpoints {
			if d.Endpoints[i].Iface == w.iface {
				d.Endpoints[i].IngressPolicies = pols
			}
		}
		return d
	}
	tcp := u8(6)
	dports := func(ps ...uint16) []dataplane.PortRange {
		var out []dataplane.PortRange
		for _, p := range ps {
			out = append(out, dataplane.PortRange{First: p, Last: p})
		}
		return out
	}

	t.Run("policy overrides profiles and pass falls through", func(t *testing.T) {
		web := dataplane.PolicyChain{ID: "policy:t/web", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, Protocol: tcp, Dst: dataplane.Match{Ports: dports(8080)}},
		}}
		tp.apply(t, withIngress(open3(web), w2, web.ID))
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 9090)) // the profile would allow it
		mustReach(t, w1.ns, "tcp", ap(w3.v4, 9090))    // no policy on w3: its profile decides
		web.Ingress = append(web.Ingress, dataplane.Rule{Action: dataplane.Pass, Protocol: tcp, Dst: dataplane.Match{Ports: dports(9090)}})
		st := tp.apply(t, withIngress(open3(web), w2, web.ID))
		if st.ChainsRewritten != 1 || st.ChainsAdded != 0 {
			t.Errorf("changing one policy should rewrite one chain: %+v", st)
		}
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 9090))
		mustReach(t, w1.ns, "tcp", ap(w2.v6, 9090))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8081))
	})

	t.Run("deny before allow by order", func(t *testing.T) {
		deny := dataplane.PolicyChain{ID: "gnp:deny-w1", Ingress: []dataplane.Rule{
			{Action: dataplane.Deny, Src: dataplane.Match{Nets: hostPfx(w1)}}}}
		allow := dataplane.PolicyChain{ID: "policy:t/allow", Ingress: []dataplane.Rule{{Action: dataplane.Allow, Protocol: tcp}}}
		tp.apply(t, withIngress(open3(deny, allow), w2, deny.ID, allow.ID))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
		mustReach(t, w3.ns, "tcp", ap(w2.v4, 8080))
		tp.apply(t, withIngress(open3(deny, allow), w2, allow.ID, deny.ID))
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
	})

	t.Run("ports and notPorts", func(t *testing.T) {
		p := dataplane.PolicyChain{ID: "policy:t/ports", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, Protocol: tcp, Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 8080, Last: 8081}}}}}}
		tp.apply(t, withIngress(open3(p), w2, p.ID))
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8081))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 9090))
		p.Ingress = []dataplane.Rule{{Action: dataplane.Allow, Protocol: tcp, Dst: dataplane.Match{NotPorts: dports(8080, 8081)}}}
		tp.apply(t, withIngress(open3(p), w2, p.ID))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 9090))
		mustReach(t, w1.ns, "tcp", ap(w2.v6, 9090))
	})

	t.Run("nets and notNets", func(t *testing.T) {
		p := dataplane.PolicyChain{ID: "policy:t/nets", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, Src: dataplane.Match{Nets: []netip.Prefix{netip.PrefixFrom(w1.v4, 32)}}}}}
		tp.apply(t, withIngress(open3(p), w2, p.ID))
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 8080)) // only an IPv4 net was allowed
		mustNotReach(t, w3.ns, "tcp", ap(w2.v4, 8080))
		p.Ingress = []dataplane.Rule{{Action: dataplane.Allow, Src: dataplane.Match{NotNets: hostPfx(w1)}}}
		tp.apply(t, withIngress(open3(p), w2, p.ID))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
		mustReach(t, w3.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w3.ns, "tcp", ap(w2.v6, 8080))
	})

	t.Run("protocol", func(t *testing.T) {
		p := dataplane.PolicyChain{ID: "policy:t/proto", Ingress: []dataplane.Rule{{Action: dataplane.Allow, Protocol: u8(17)}}}
		tp.apply(t, withIngress(open3(p), w2, p.ID))
		mustReach(t, w1.ns, "udp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		p.Ingress = []dataplane.Rule{{Action: dataplane.Allow, NotProtocol: tcp}}
		tp.apply(t, withIngress(open3(p), w2, p.ID))
		mustReach(t, w1.ns, "udp", ap(w2.v6, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
	})

	t.Run("icmp type", func(t *testing.T) {
		p := dataplane.PolicyChain{ID: "policy:t/icmp", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, Protocol: u8(1), ICMP: &dataplane.ICMPMatch{Type: 8}},
			{Action: dataplane.Allow, Protocol: u8(58), ICMP: &dataplane.ICMPMatch{Type: 128, Code: u8(0)}},
		}}
		tp.apply(t, withIngress(open3(p), w2, p.ID))
		if !pingOK(w1.ns, w2.v4) || !pingOK(w1.ns, w2.v6) {
			t.Fatal("echo requests should be allowed")
		}
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		p.Ingress = []dataplane.Rule{{Action: dataplane.Allow, Protocol: u8(1), ICMP: &dataplane.ICMPMatch{Type: 13}}}
		tp.apply(t, withIngress(open3(p), w2, p.ID))
		if pingOK(w1.ns, w2.v4) {
			t.Fatal("only timestamp requests are allowed, yet an echo request got through")
		}
	})

	t.Run("egress policy", func(t *testing.T) {
		p := dataplane.PolicyChain{ID: "policy:t/out", Egress: []dataplane.Rule{
			{Action: dataplane.Deny, Protocol: tcp, Dst: dataplane.Match{Ports: dports(9090)}},
			{Action: dataplane.Allow},
		}}
		d := open3(p)
		d.Endpoints[0].EgressPolicies = []string{p.ID} // w1
		tp.apply(t, d)
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 9090))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 9090))
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w2.ns, "tcp", ap(w1.v4, 9090)) // ingress to w1 is not affected
	})

	t.Run("set membership change moves an endpoint in and out", func(t *testing.T) {
		p := dataplane.PolicyChain{ID: "policy:t/sel", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, Protocol: tcp, Src: dataplane.Match{Sets: []string{"s-sel"}}}}}
		d := withIngress(open3(p), w2, p.ID)
		d.Sets = []dataplane.IPSet{{ID: "s-sel", Selector: "role == 'client'", Members: hostPfx(w1)}}
		tp.apply(t, d)
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
		mustNotReach(t, w3.ns, "tcp", ap(w2.v4, 8080))
		d = withIngress(open3(p), w2, p.ID)
		d.Sets = []dataplane.IPSet{{ID: "s-sel", Selector: "role == 'client'", Members: hostPfx(w3)}}
		st := tp.apply(t, d)
		if st.ChainsRewritten+st.ChainsAdded+st.SetsAdded != 0 || st.ElementsAdded != 2 || st.ElementsDeleted != 2 {
			t.Errorf("a membership change should only swap set elements: %+v", st)
		}
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w3.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w3.ns, "tcp", ap(w2.v6, 8080))
	})

	t.Run("named ports", func(t *testing.T) {
		// Calc's form of "ports: [http, 9090]" with protocol TCP: the
		// numbers, then the named-port set excluding the numbers.
		p := dataplane.PolicyChain{ID: "policy:t/named", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, Protocol: tcp, Dst: dataplane.Match{Ports: dports(9090)}},
			{Action: dataplane.Allow, Protocol: tcp, Dst: dataplane.Match{PortSets: []string{"s-http"}, NotPorts: dports(9090)}},
		}}
		http := func(ps ...dataplane.AddrProtoPort) []dataplane.IPSet {
			return []dataplane.IPSet{{ID: "s-http", Selector: "all() namedPort(http/6)", NamedPort: "http", Protocol: 6, PortMembers: ps}}
		}
		m := func(a netip.Addr, proto uint8, port uint16) dataplane.AddrProtoPort {
			return dataplane.AddrProtoPort{Addr: a, Protocol: proto, Port: port}
		}
		d := withIngress(open3(p), w2, p.ID)
		d.Sets = http(m(w2.v4, 6, 8080), m(w2.v6, 6, 8080), m(w2.v4, 17, 8081))
		tp.apply(t, d)
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 9090))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8081)) // only UDP 8081 is in the set
		mustNotReach(t, w1.ns, "udp", ap(w2.v4, 8080))
		if out := nftList(t, tp.host); !strings.Contains(out, "type ipv4_addr . inet_proto . inet_service") || !strings.Contains(out, "@p6-") {
			t.Errorf("no named-port lookup in the ruleset:\n%s", out)
		}
		// The endpoint gains port 8081 and loses 8080 (IPv4): only
		// elements change.
		d = withIngress(open3(p), w2, p.ID)
		d.Sets = http(m(w2.v4, 6, 8081), m(w2.v6, 6, 8080), m(w2.v4, 17, 8081))
		st := tp.apply(t, d)
		if st.ChainsRewritten+st.ChainsAdded+st.SetsAdded != 0 || st.ElementsAdded != 1 || st.ElementsDeleted != 1 {
			t.Errorf("a named port change should only swap set elements: %+v", st)
		}
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8081))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
		// notPorts with a name: deny everything but the named port.
		p.Ingress = []dataplane.Rule{{Action: dataplane.Deny, Protocol: tcp, Dst: dataplane.Match{NotPortSets: []string{"s-http"}}},
			{Action: dataplane.Allow}}
		d = withIngress(open3(p), w2, p.ID)
		d.Sets = http(m(w2.v4, 6, 8081))
		tp.apply(t, d)
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8081))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
	})

	t.Run("no policy and no profile drops", func(t *testing.T) {
		d := open3()
		d.Endpoints[1].Profiles = nil // w2
		tp.apply(t, d)
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w2.ns, "tcp", ap(w1.v4, 8080))
		mustReach(t, w1.ns, "tcp", ap(w3.v4, 8080))
	})
}

package calc

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

func hep(name, node, iface string, labels map[string]string, ips []string, profiles ...string) api.HostEndpoint {
	h := api.HostEndpoint{}
	h.Name, h.Labels = name, labels
	h.Spec = api.HostEndpointSpec{Node: node, InterfaceName: iface, ExpectedIPs: ips, Profiles: profiles}
	return h
}

func hostPol(name string, order float64, sel string, types []string, in, eg []api.Rule, mod func(*api.PolicySpec)) api.GlobalNetworkPolicy {
	p := gnp(name, ord(order), sel, types, in, eg)
	if mod != nil {
		mod(&p.Spec)
	}
	return p
}

func preDNAT(s *api.PolicySpec)    { s.PreDNAT, s.ApplyOnForward = true, true }
func untracked(s *api.PolicySpec)  { s.DoNotTrack, s.ApplyOnForward = true, true }
func onForward(s *api.PolicySpec)  { s.ApplyOnForward = true }
func globalOnly(s *api.PolicySpec) { s.NamespaceSelector = "global()" }

func TestHostEndpointsClassify(t *testing.T) {
	in, eg := []string{"Ingress"}, []string{"Egress"}
	both := []string{"Ingress", "Egress"}
	fromNet := api.Rule{Action: api.ActionAllow, Source: api.EntityRule{Selector: "role == 'db'"}}
	s := &Snapshot{
		Node: "h1",
		WorkloadEndpoints: []api.WorkloadEndpoint{
			wep("ns", "w1", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"role": "db", "host": "yes"}),
		},
		HostEndpoints: []api.HostEndpoint{
			hep("h1-eth0", "h1", "eth0", map[string]string{"host": "yes"}, []string{"192.0.2.1"}),
			hep("h1-all", "h1", "*", map[string]string{"host": "yes"}, nil, "prof"),
			hep("h2-eth0", "h2", "eth0", map[string]string{"host": "yes", "role": "db"}, []string{"192.0.2.2"}),
			hep("h1-ips", "h1", "", map[string]string{"host": "yes"}, []string{"192.0.2.9"}),
		},
		Profiles: []api.Profile{profile("prof", map[string]string{"pl": "x"}, []api.Rule{allow()}, nil)},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{
			hostPol("a-normal", 1, "host == 'yes'", both, []api.Rule{fromNet}, []api.Rule{allow()}, nil),
			hostPol("b-fwd", 2, "host == 'yes'", in, []api.Rule{deny()}, nil, onForward),
			hostPol("c-prednat", 3, "has(host)", in, []api.Rule{deny()}, nil, preDNAT),
			hostPol("d-untracked", 4, "host == 'yes'", both, []api.Rule{allow()}, []api.Rule{allow()}, untracked),
			hostPol("e-profile-label", 5, "pl == 'x'", eg, nil, []api.Rule{deny()}, nil),
			hostPol("f-ns", 6, "host == 'yes'", in, []api.Rule{deny()}, nil, func(s *api.PolicySpec) { s.NamespaceSelector = "has(x)" }),
			hostPol("g-global", 7, "host == 'yes'", in, []api.Rule{deny()}, nil, globalOnly),
		},
	}
	d := compute(t, s)
	want := []dataplane.HostEndpoint{
		// Found by address: untracked policy applies (the driver resolves
		// it to named interfaces).
		{ID: "h1-ips", Iface: "", ExpectedIPs: addrs("192.0.2.9"),
			Ingress: []string{"gnp:a-normal", "gnp:b-fwd", "gnp:g-global"}, Egress: []string{"gnp:a-normal"},
			ForwardIngress: []string{"gnp:b-fwd"}, PreDNAT: []string{"gnp:c-prednat"},
			UntrackedIngress: []string{"gnp:d-untracked"}, UntrackedEgress: []string{"gnp:d-untracked"}},
		{ID: "h1-all", Iface: "*",
			Ingress: []string{"gnp:a-normal", "gnp:b-fwd", "gnp:g-global"}, Egress: []string{"gnp:a-normal", "gnp:e-profile-label"},
			ForwardIngress: []string{"gnp:b-fwd"}, PreDNAT: []string{"gnp:c-prednat"}, Profiles: []string{"profile:prof"}},
		{ID: "h1-eth0", Iface: "eth0",
			Ingress: []string{"gnp:a-normal", "gnp:b-fwd", "gnp:g-global"}, Egress: []string{"gnp:a-normal"},
			ForwardIngress: []string{"gnp:b-fwd"}, PreDNAT: []string{"gnp:c-prednat"},
			UntrackedIngress: []string{"gnp:d-untracked"}, UntrackedEgress: []string{"gnp:d-untracked"}},
	}
	if !reflect.DeepEqual(d.Hosts.Endpoints, want) {
		t.Fatalf("host endpoints:\n got %+v\nwant %+v", d.Hosts.Endpoints, want)
	}
	if !reflect.DeepEqual(d.Hosts.FailsafeIn, sorted(DefaultFailsafeInbound())) || !reflect.DeepEqual(d.Hosts.FailsafeOut, sorted(DefaultFailsafeOutbound())) {
		t.Fatalf("failsafes: %+v / %+v", d.Hosts.FailsafeIn, d.Hosts.FailsafeOut)
	}
	// The workload: pre-DNAT and untracked policies never apply to it;
	// the namespaceSelector one does (its namespace has no label x: no).
	if len(d.Endpoints) != 1 || !slices.Equal(d.Endpoints[0].IngressPolicies, []string{"gnp:a-normal", "gnp:b-fwd"}) {
		t.Fatalf("workload endpoint: %+v", d.Endpoints)
	}
	// The rule selector's set holds the workload and the remote host endpoint.
	id := setID(t, "role == 'db'")
	i := slices.IndexFunc(d.Sets, func(s dataplane.IPSet) bool { return s.ID == id })
	if i < 0 || !slices.Equal(d.Sets[i].Members, pfxs("10.0.0.1/32", "192.0.2.2/32")) {
		t.Fatalf("set %s: %+v", id, d.Sets)
	}
	for _, want := range []string{"gnp:a-normal", "gnp:b-fwd", "gnp:c-prednat", "gnp:d-untracked", "gnp:e-profile-label", "gnp:g-global", "profile:prof"} {
		if !slices.ContainsFunc(d.Chains, func(c dataplane.PolicyChain) bool { return c.ID == want }) {
			t.Fatalf("chain %s missing: %+v", want, d.Chains)
		}
	}
}

// TestHostEndpointsExpectedIPs: a HostEndpoint without interfaceName is
// emitted with its addresses for the driver to resolve; several such
// endpoints, and named ones, coexist (the driver decides which governs an
// interface that two of them match).
func TestHostEndpointsExpectedIPs(t *testing.T) {
	in := []string{"Ingress"}
	pol := hostPol("p", 1, "host == 'yes'", in, []api.Rule{allow()}, nil, nil)
	yes := map[string]string{"host": "yes"}
	for _, tc := range []struct {
		name string
		heps []api.HostEndpoint
		want []dataplane.HostEndpoint
	}{
		{"addresses only",
			[]api.HostEndpoint{hep("e", "h1", "", yes, []string{"192.0.2.5", "2001:db8::5", "192.0.2.1", "192.0.2.5"})},
			[]dataplane.HostEndpoint{{ID: "e", ExpectedIPs: addrs("192.0.2.1", "192.0.2.5", "2001:db8::5"), Ingress: []string{"gnp:p"}}}},
		{"another node's: none",
			[]api.HostEndpoint{hep("e", "h2", "", yes, []string{"192.0.2.5"})}, nil},
		{"no valid address: none",
			[]api.HostEndpoint{hep("e", "h1", "", yes, []string{"not-an-ip"})}, nil},
		{"several by address, sorted by ID, with named and star",
			[]api.HostEndpoint{
				hep("z", "h1", "", nil, []string{"192.0.2.7"}),
				hep("a", "h1", "", yes, []string{"192.0.2.7"}),
				hep("n", "h1", "eth0", nil, []string{"192.0.2.7"}),
				hep("s", "h1", "*", nil, nil),
			},
			[]dataplane.HostEndpoint{
				{ID: "a", ExpectedIPs: addrs("192.0.2.7"), Ingress: []string{"gnp:p"}},
				{ID: "z", ExpectedIPs: addrs("192.0.2.7")},
				{ID: "s", Iface: "*"},
				{ID: "n", Iface: "eth0"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := compute(t, &Snapshot{Node: "h1", HostEndpoints: tc.heps, GlobalNetworkPolicies: []api.GlobalNetworkPolicy{pol}})
			if !reflect.DeepEqual(d.Hosts.Endpoints, tc.want) {
				t.Fatalf("host endpoints:\n got %+v\nwant %+v", d.Hosts.Endpoints, tc.want)
			}
		})
	}
}

func sorted(ps []dataplane.FailsafePort) []dataplane.FailsafePort {
	sortFailsafe(ps)
	return ps
}

func TestHostEndpointsNoneLeavesDesiredAlone(t *testing.T) {
	s := &Snapshot{Node: "h1",
		HostEndpoints:         []api.HostEndpoint{hep("other", "h2", "eth0", nil, nil)},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{hostPol("p", 1, "all()", nil, []api.Rule{allow()}, nil, preDNAT)}}
	d := compute(t, s)
	if !reflect.DeepEqual(d.Hosts, dataplane.HostProtection{}) || d.Chains != nil || d.Sets != nil {
		t.Fatalf("no local host endpoint, got %+v chains %+v", d.Hosts, d.Chains)
	}
}

func TestFailsafeConfig(t *testing.T) {
	empty := []api.ProtoPort{}
	custom := []api.ProtoPort{{Protocol: "UDP", Port: 500}, {Protocol: "TCP", Port: 22, Net: "10.1.0.0/16"}, {Protocol: "tcp", Port: 22}}
	for _, tc := range []struct {
		name    string
		felix   *api.FelixConfigurationSpec
		in, out []dataplane.FailsafePort
	}{
		{"defaults", nil, sorted(DefaultFailsafeInbound()), sorted(DefaultFailsafeOutbound())},
		{"unset fields", &api.FelixConfigurationSpec{}, sorted(DefaultFailsafeInbound()), sorted(DefaultFailsafeOutbound())},
		{"empty turns off", &api.FelixConfigurationSpec{FailsafeInboundHostPorts: &empty, FailsafeOutboundHostPorts: &empty}, nil, nil},
		{"custom", &api.FelixConfigurationSpec{FailsafeInboundHostPorts: &custom},
			[]dataplane.FailsafePort{{Protocol: 6, Port: 22}, {Protocol: 6, Port: 22, Net: pfx("10.1.0.0/16")}, {Protocol: 17, Port: 500}},
			sorted(DefaultFailsafeOutbound())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Snapshot{Node: "h1", Felix: tc.felix, HostEndpoints: []api.HostEndpoint{hep("e", "h1", "eth0", nil, nil)}}
			d := compute(t, s)
			if !reflect.DeepEqual(d.Hosts.FailsafeIn, tc.in) || !reflect.DeepEqual(d.Hosts.FailsafeOut, tc.out) {
				t.Fatalf("got in %+v out %+v, want %+v / %+v", d.Hosts.FailsafeIn, d.Hosts.FailsafeOut, tc.in, tc.out)
			}
			if len(d.Hosts.Endpoints) != 1 || d.Hosts.Endpoints[0].Profiles != nil {
				t.Fatalf("endpoints %+v", d.Hosts.Endpoints)
			}
		})
	}
}

// TestHostEndpointsCalculatorMatchesCompute: random changes of host
// endpoints, policies, profiles, workloads and Felix, Calculator against
// Compute after each batch.
func TestHostEndpointsCalculatorMatchesCompute(t *testing.T) {
	for seed := range 20 {
		r := rand.New(rand.NewPCG(uint64(seed), 17))
		c := NewCalculator("h1")
		heps := map[string]api.HostEndpoint{}
		gnps := map[string]api.GlobalNetworkPolicy{}
		profs := map[string]api.Profile{}
		weps := map[string]api.WorkloadEndpoint{}
		var felix *api.FelixConfigurationSpec
		tiers := map[string]api.Tier{}
		pick := func(ss ...string) string { return ss[r.IntN(len(ss))] }
		for step := range 150 {
			switch r.IntN(6) {
			case 0:
				name := pick("a", "b", "c")
				if r.IntN(4) == 0 {
					delete(heps, name)
					c.DeleteHostEndpoint(name)
					break
				}
				h := hep(name, pick("h1", "h2"), pick("eth0", "eth1", "*", ""), map[string]string{"role": pick("x", "y")},
					[]string{fmt.Sprintf("192.0.2.%d", r.IntN(5)+1)}, pick("p1", "p2"))
				heps[name] = h
				c.UpsertHostEndpoint(&h)
			case 1:
				name := pick("g1", "g2", "g3")
				if r.IntN(4) == 0 {
					delete(gnps, name)
					c.DeleteGlobalNetworkPolicy(name)
					break
				}
				rule := api.Rule{Action: api.ActionAllow, Source: api.EntityRule{Selector: pick("role == 'x'", "app == 'w'")}}
				p := hostPol(name, float64(r.IntN(3)), pick("role == 'x'", "all()", "pl == '1'"), nil, []api.Rule{rule}, []api.Rule{deny()},
					[]func(*api.PolicySpec){nil, preDNAT, untracked, onForward}[r.IntN(4)])
				if tr := pick("", "", "t1"); tr != "" {
					p = inTier(p, tr)
				}
				gnps[name] = p
				c.UpsertGlobalNetworkPolicy(&p)
			case 2:
				name := pick("p1", "p2")
				if r.IntN(4) == 0 {
					delete(profs, name)
					c.DeleteProfile(name)
					break
				}
				p := profile(name, map[string]string{"pl": pick("1", "2")}, []api.Rule{allow()}, nil)
				profs[name] = p
				c.UpsertProfile(&p)
			case 3:
				name := pick("w1", "w2")
				if r.IntN(4) == 0 {
					delete(weps, name)
					c.DeleteWorkloadEndpoint("ns", name)
					break
				}
				w := wep("ns", name, pick("h1", "h2"), "cali"+name, []string{fmt.Sprintf("10.0.0.%d/32", r.IntN(4)+1)},
					map[string]string{"app": pick("w", "v")}, "p1")
				weps[name] = w
				c.UpsertWorkloadEndpoint(&w)
			case 5:
				if r.IntN(3) == 0 {
					delete(tiers, "t1")
					c.DeleteTier("t1")
					break
				}
				tr := tier("t1", ord(float64(r.IntN(3))*1e6), pick("Pass", "Deny"))
				tiers["t1"] = tr
				c.UpsertTier(&tr)
			default:
				felix = nil
				if r.IntN(2) == 0 {
					empty := []api.ProtoPort{}
					felix = &api.FelixConfigurationSpec{FailsafeInboundHostPorts: &empty}
				}
				c.SetFelix(felix)
			}
			if r.IntN(3) != 0 {
				continue
			}
			s := &Snapshot{Node: "h1", Felix: felix}
			for _, k := range sortedKeys(tiers) {
				s.Tiers = append(s.Tiers, tiers[k])
			}
			for _, k := range sortedKeys(heps) {
				s.HostEndpoints = append(s.HostEndpoints, heps[k])
			}
			for _, k := range sortedKeys(gnps) {
				s.GlobalNetworkPolicies = append(s.GlobalNetworkPolicies, gnps[k])
			}
			for _, k := range sortedKeys(profs) {
				s.Profiles = append(s.Profiles, profs[k])
			}
			for _, k := range sortedKeys(weps) {
				s.WorkloadEndpoints = append(s.WorkloadEndpoints, weps[k])
			}
			got, want := c.Desired(), Compute(s)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d:\n%s\nhosts got %+v\nwant %+v", seed, step, diffDesired(got, want), got.Hosts, want.Hosts)
			}
			if fresh := loadCalculator(s).Desired(); !reflect.DeepEqual(fresh, want) {
				t.Fatalf("seed %d step %d: loaded in another order:\n%s", seed, step, diffDesired(fresh, want))
			}
		}
	}
}

// TestHostEndpointsTiers: host policies are in tier order, and every list
// of a host endpoint says where its tiers end, as a workload's does.
func TestHostEndpointsTiers(t *testing.T) {
	in, both := []string{"Ingress"}, []string{"Ingress", "Egress"}
	sel := "host == 'yes'"
	pols := []api.GlobalNetworkPolicy{
		hostPol("allow-ssh", 1, sel, in, []api.Rule{allow()}, nil, nil),
		inTier(hostPol("security.late", 9, sel, both, []api.Rule{deny()}, []api.Rule{deny()}, nil), "security"),
		inTier(hostPol("security.pass", 1, sel, in, []api.Rule{{Action: api.ActionPass}}, nil, nil), "security"),
		inTier(hostPol("security.fwd", 2, sel, in, []api.Rule{deny()}, nil, onForward), "security"),
		inTier(hostPol("security.pre", 3, sel, in, []api.Rule{deny()}, nil, preDNAT), "security"),
		hostPol("pre-default", 0, sel, in, []api.Rule{allow()}, nil, preDNAT),
		inTier(hostPol("ops.raw", 1, sel, in, []api.Rule{allow()}, nil, untracked), "ops"),
	}
	tiers := []api.Tier{tier("security", ord(10), "Pass"), tier("ops", ord(20), "")}
	s := &Snapshot{Node: "h1", GlobalNetworkPolicies: pols, Tiers: tiers,
		HostEndpoints: []api.HostEndpoint{hep("e", "h1", "eth0", map[string]string{"host": "yes"}, nil)}}
	d := compute(t, s)
	sec := func(n int) dataplane.EndpointTier {
		return dataplane.EndpointTier{Name: "security", Policies: n, DefaultPass: true}
	}
	def := func(n int) dataplane.EndpointTier { return dataplane.EndpointTier{Name: "default", Policies: n} }
	want := []dataplane.HostEndpoint{{ID: "e", Iface: "eth0",
		Ingress:             []string{"gnp:security.pass", "gnp:security.fwd", "gnp:security.late", "gnp:allow-ssh"},
		IngressTiers:        []dataplane.EndpointTier{sec(3), def(1)},
		Egress:              []string{"gnp:security.late"},
		EgressTiers:         []dataplane.EndpointTier{sec(1)},
		ForwardIngress:      []string{"gnp:security.fwd"},
		ForwardIngressTiers: []dataplane.EndpointTier{sec(1)},
		PreDNAT:             []string{"gnp:security.pre", "gnp:pre-default"},
		PreDNATTiers:        []dataplane.EndpointTier{sec(1), def(1)},
		// One tier that denies by default: no tier list.
		UntrackedIngress: []string{"gnp:ops.raw"},
	}}
	if !reflect.DeepEqual(d.Hosts.Endpoints, want) {
		t.Fatalf("host endpoints:\n got %+v\nwant %+v", d.Hosts.Endpoints, want)
	}
	// The Calculator follows a tier change.
	c := loadCalculator(s)
	c.UpsertTier(&[]api.Tier{tier("security", ord(1e7), "")}[0])
	s.Tiers = []api.Tier{tier("security", ord(1e7), ""), tiers[1]}
	if got, want := c.Desired(), Compute(s); !reflect.DeepEqual(got.Hosts, want.Hosts) {
		t.Fatalf("after a tier change:\n got %+v\nwant %+v", got.Hosts, want.Hosts)
	}
	if got := c.Desired().Hosts.Endpoints[0].Ingress; got[0] != "gnp:allow-ssh" {
		t.Fatalf("security moved after default, ingress %v", got)
	}
}

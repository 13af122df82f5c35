package calc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// diffDesired describes how two Desired values differ, part by part.
func diffDesired(got, want *dataplane.Desired) string {
	var b strings.Builder
	part := func(name string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "%s:\n  got  %+v\n  want %+v\n", name, g, w)
		}
	}
	if got == nil || want == nil {
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	if len(got.Endpoints) != len(want.Endpoints) {
		part("Endpoints", got.Endpoints, want.Endpoints)
	} else {
		for i := range got.Endpoints {
			part(fmt.Sprintf("Endpoints[%d]", i), got.Endpoints[i], want.Endpoints[i])
		}
	}
	if len(got.Chains) != len(want.Chains) {
		part("Chains", chainIDs(got), chainIDs(want))
	} else {
		for i := range got.Chains {
			part(fmt.Sprintf("Chains[%d]", i), got.Chains[i], want.Chains[i])
		}
	}
	if len(got.Sets) != len(want.Sets) {
		part("Sets", got.Sets, want.Sets)
	} else {
		for i := range got.Sets {
			part(fmt.Sprintf("Sets[%d]", i), got.Sets[i], want.Sets[i])
		}
	}
	part("Routes", got.Routes, want.Routes)
	part("NAT", got.NAT, want.NAT)
	part("Host", got.Host, want.Host)
	part("VXLAN", got.VXLAN, want.VXLAN)
	part("HostPorts", got.HostPorts, want.HostPorts)
	return b.String()
}

// model is the state a random sequence of changes builds, kept as plain
// maps so that a Snapshot of it can be handed to Compute.
type model struct {
	weps     map[string]api.WorkloadEndpoint
	profiles map[string]api.Profile
	gnps     map[string]api.GlobalNetworkPolicy
	nps      map[string]api.NetworkPolicy
	pools    map[string]api.IPPool
	blocks   map[netip.Prefix]Block
	nodes    map[string]api.Node
	felix    *api.FelixConfigurationSpec
	hostMTU  int
}

func newModel() *model {
	return &model{
		weps: map[string]api.WorkloadEndpoint{}, profiles: map[string]api.Profile{},
		gnps: map[string]api.GlobalNetworkPolicy{}, nps: map[string]api.NetworkPolicy{},
		pools: map[string]api.IPPool{}, blocks: map[netip.Prefix]Block{}, nodes: map[string]api.Node{},
	}
}

func shuffled[K comparable, V any](r *rand.Rand, m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// snapshot returns the model's state with every list in a random order.
func (m *model) snapshot(r *rand.Rand, node string) *Snapshot {
	return &Snapshot{
		Node:                  node,
		WorkloadEndpoints:     shuffled(r, m.weps),
		Profiles:              shuffled(r, m.profiles),
		NetworkPolicies:       shuffled(r, m.nps),
		GlobalNetworkPolicies: shuffled(r, m.gnps),
		IPPools:               shuffled(r, m.pools),
		Blocks:                shuffled(r, m.blocks),
		Nodes:                 shuffled(r, m.nodes),
		Felix:                 m.felix,
		HostMTU:               m.hostMTU,
	}
}

// gen makes random but small, colliding inputs: few names, labels, values
// and addresses, so that changes keep hitting the same sets and policies.
type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g gen) chance(p float64) bool    { return g.r.Float64() < p }

func (g gen) labels() map[string]string {
	var l map[string]string
	for _, k := range []string{"app", "role", "tier"} {
		if g.chance(0.5) {
			if l == nil {
				l = map[string]string{}
			}
			l[k] = g.pick("a", "b", "c")
		}
	}
	return l
}

func (g gen) selector() string {
	term := func() string {
		return g.pick("app == 'a'", "app != 'b'", "has(role)", "!has(tier)", "role in {'a', 'b'}", "all()", "",
			"tier not in {'c'}", "app starts with 'a'", "projectcalico.org/namespace == 'na'", "role == 'c'",
			"projectcalico.org/orchestrator == 'docker'", "tier == 'a'")
	}
	s := term()
	if g.chance(0.4) {
		if t := term(); s != "" && t != "" {
			s = "(" + s + ") " + g.pick("&&", "||") + " (" + t + ")"
		}
	}
	return s
}

func (g gen) nets() []string {
	var out []string
	for range g.r.IntN(3) {
		out = append(out, g.pick("10.0.0.0/8", "192.168.0.0/24", "fd00::/8", "10.1.2.3", "fe80::/64"))
	}
	return out
}

func (g gen) side() api.EntityRule {
	var e api.EntityRule
	if g.chance(0.5) {
		e.Selector = g.selector()
	}
	if g.chance(0.2) {
		e.NotSelector = g.selector()
	}
	if g.chance(0.1) {
		e.NamespaceSelector = g.pick("projectcalico.org/name == 'na'", "all()", "global()", "projectcalico.org/name != 'nb'")
	}
	if g.chance(0.1) {
		e.ServiceAccounts = &api.ServiceAccountMatch{Selector: g.pick("", "all()", "projectcalico.org/name == 'sa2'", "!has(projectcalico.org/name)")}
		if g.chance(0.5) {
			e.ServiceAccounts.Names = []string{g.pick("sa1", "sa2")}
		}
	}
	if g.chance(0.03) {
		e.Services = &api.ServiceMatch{Name: "svc", Namespace: "na"}
	}
	if g.chance(0.3) {
		e.Nets = g.nets()
	}
	if g.chance(0.2) {
		e.NotNets = g.nets()
	}
	return e
}

func (g gen) rules() []api.Rule {
	var out []api.Rule
	for range g.r.IntN(3) {
		r := api.Rule{Action: g.pick("Allow", "Deny", "Log", "Pass"), Source: g.side(), Destination: g.side()}
		switch g.r.IntN(6) {
		case 0:
			r.Protocol = proto("TCP")
			r.Destination.Ports = []api.Port{{MinPort: 80, MaxPort: 80}}
			if g.chance(0.3) {
				r.Destination.Ports = append(r.Destination.Ports, api.Port{PortName: "http"})
			}
		case 1:
			r.Protocol = proto("UDP")
			r.Source.NotPorts = []api.Port{{MinPort: 1000, MaxPort: 2000}}
		case 2:
			r.Protocol = proto("ICMP")
			r.ICMP = &api.ICMPFields{Type: intp(8)}
		case 3:
			r.Protocol = proto("ICMPv6")
		case 4:
			// Named ports without a protocol: every protocol of the port.
			r.Destination.Ports = []api.Port{{PortName: g.pick("http", "dns")}}
			if g.chance(0.3) {
				r.Source.NotPorts = []api.Port{{PortName: "dns"}}
			}
		}
		if g.chance(0.15) {
			r.IPVersion = intp(g.r.IntN(2)*2 + 4)
		}
		out = append(out, r)
	}
	return out
}

func (g gen) order() *float64 {
	if g.chance(0.3) {
		return nil
	}
	return ord(float64(g.r.IntN(3)))
}

func (g gen) types() []string {
	switch g.r.IntN(5) {
	case 0:
		return []string{"Ingress"}
	case 1:
		return []string{"Egress"}
	case 2:
		return []string{"Ingress", "Egress"}
	}
	return nil
}

func (g gen) wep() api.WorkloadEndpoint {
	name := g.pick("w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7")
	var ips []string
	for range g.r.IntN(3) {
		ips = append(ips, g.pick("192.168.0.2/32", "192.168.0.3/32", "192.168.1.2/32", "192.168.4.7/32",
			"10.9.0.1/32", "fd00::5/128", "fd00::6/128"))
	}
	iface := "cali" + name
	if g.chance(0.1) {
		iface = ""
	}
	var profs []string
	for range g.r.IntN(3) {
		profs = append(profs, g.pick("p0", "p1", "p2", "missing"))
	}
	w := wep(g.pick("na", "nb"), name, g.pick("h1", "h1", "h2", "h3"), iface, ips, g.labels(), profs...)
	if g.chance(0.3) {
		w.Spec.ServiceAccountName = g.pick("sa1", "sa2")
	}
	if g.chance(0.2) {
		w.Spec.MAC = g.pick("02:00:00:00:00:01", "02:00:00:00:00:02")
	}
	for range g.r.IntN(3) {
		// Few host ports, so that endpoints keep colliding on them.
		p := api.WorkloadEndpointPort{Protocol: api.Protocol{Name: g.pick("TCP", "UDP", "6")}, Port: 80,
			HostPort: uint16(8080 + g.r.IntN(2)), HostIP: g.pick("", "", "0.0.0.0", "::", "10.0.0.1", "fd00::9")}
		if g.chance(0.4) {
			p.Name = g.pick("http", "dns")
			if g.chance(0.5) {
				p.HostPort = 0
			}
			if p.Name == "dns" {
				p.Port = 53
			}
		}
		w.Spec.Ports = append(w.Spec.Ports, p)
	}
	return w
}

func (g gen) node(name string) api.Node {
	ip := g.pick("10.0.0.", "10.0.1.") + fmt.Sprint(g.r.IntN(9)+1) + "/24"
	tun := ""
	if g.chance(0.8) {
		tun = "192.168." + fmt.Sprint(g.r.IntN(4)) + ".1"
	}
	return node(name, ip, tun, "")
}

// step applies one random change to both the model and the Calculator and
// describes it.
func (g gen) step(m *model, c *Calculator) string {
	switch g.r.IntN(16) {
	case 0, 1, 2:
		w := g.wep()
		m.weps[wepID(&w)] = w
		c.UpsertWorkloadEndpoint(&w)
		return fmt.Sprintf("upsert wep %s node=%s labels=%v profiles=%v ips=%v", wepID(&w), w.Spec.Node, w.Labels, w.Spec.Profiles, w.Spec.IPNetworks)
	case 3, 4:
		// A label change only (the hot path), or a move to another host.
		ws := shuffled(g.r, m.weps)
		if len(ws) == 0 {
			return "noop"
		}
		w := ws[0]
		if g.chance(0.25) {
			w.Spec.Node = g.pick("h1", "h2", "h3")
			m.weps[wepID(&w)] = w
			c.UpsertWorkloadEndpoint(&w)
			return fmt.Sprintf("move wep %s to %s", wepID(&w), w.Spec.Node)
		}
		w.Labels = g.labels()
		m.weps[wepID(&w)] = w
		c.UpsertWorkloadEndpoint(&w)
		return fmt.Sprintf("relabel wep %s labels=%v", wepID(&w), w.Labels)
	case 5:
		ws := shuffled(g.r, m.weps)
		if len(ws) == 0 {
			return "noop"
		}
		delete(m.weps, wepID(&ws[0]))
		c.DeleteWorkloadEndpoint(ws[0].Namespace, ws[0].Name)
		return "delete wep " + wepID(&ws[0])
	case 6:
		p := profile(g.pick("p0", "p1", "p2"), g.labels(), g.rules(), g.rules())
		m.profiles[p.Name] = p
		c.UpsertProfile(&p)
		return fmt.Sprintf("upsert profile %s labels=%v", p.Name, p.Spec.LabelsToApply)
	case 7:
		name := g.pick("p0", "p1", "p2")
		delete(m.profiles, name)
		c.DeleteProfile(name)
		return "delete profile " + name
	case 8, 9:
		p := gnp(g.pick("g0", "g1", "g2", "g3", "g4"), g.order(), g.selector(), g.types(), g.rules(), g.rules())
		if g.chance(0.15) {
			p.Spec.ServiceAccountSelector = g.pick("projectcalico.org/name == 'sa1'", "!has(projectcalico.org/name)", "all()")
		}
		if g.chance(0.1) {
			p.Spec.NamespaceSelector = g.pick("projectcalico.org/name == 'na'", "global()")
		}
		m.gnps[p.Name] = p
		c.UpsertGlobalNetworkPolicy(&p)
		return fmt.Sprintf("upsert gnp %s sel=%q", p.Name, p.Spec.Selector)
	case 10:
		p := netpol(g.pick("na", "nb"), g.pick("n0", "n1", "n2"), g.order(), g.selector(), g.types(), g.rules(), g.rules())
		m.nps[p.Namespace+"/"+p.Name] = p
		c.UpsertNetworkPolicy(&p)
		return fmt.Sprintf("upsert np %s/%s sel=%q", p.Namespace, p.Name, p.Spec.Selector)
	case 11:
		if g.chance(0.5) {
			name := g.pick("g0", "g1", "g2", "g3", "g4")
			delete(m.gnps, name)
			c.DeleteGlobalNetworkPolicy(name)
			return "delete gnp " + name
		}
		ns, name := g.pick("na", "nb"), g.pick("n0", "n1", "n2")
		delete(m.nps, ns+"/"+name)
		c.DeleteNetworkPolicy(ns, name)
		return "delete np " + ns + "/" + name
	case 12:
		if g.chance(0.2) {
			name := g.pick("v4", "v6")
			delete(m.pools, name)
			c.DeleteIPPool(name)
			return "delete pool " + name
		}
		p := pool("v4", "192.168.0.0/16", g.pick("Never", "Always", "CrossSubnet"), g.chance(0.5), g.chance(0.2))
		if g.chance(0.3) {
			p = pool("v6", "fd00::/48", "Never", g.chance(0.5), false)
		}
		m.pools[p.Name] = p
		c.UpsertIPPool(&p)
		return fmt.Sprintf("upsert pool %s %+v", p.Name, p.Spec)
	case 13:
		cidr := pfx("192.168." + fmt.Sprint(g.r.IntN(5)) + ".0/26")
		if g.chance(0.25) {
			delete(m.blocks, cidr)
			c.DeleteBlock(cidr)
			return "delete block " + cidr.String()
		}
		b := Block{CIDR: cidr, Node: g.pick("h1", "h2", "h3", "")}
		m.blocks[cidr] = b
		c.UpsertBlock(b)
		return fmt.Sprintf("upsert block %v", b)
	case 14:
		name := g.pick("h1", "h2", "h3")
		if g.chance(0.2) {
			delete(m.nodes, name)
			c.DeleteNode(name)
			return "delete node " + name
		}
		n := g.node(name)
		m.nodes[name] = n
		c.UpsertNode(&n)
		return fmt.Sprintf("upsert node %s %+v tunnel=%s", name, *n.Spec.BGP, n.Spec.IPv4VXLANTunnelAddr)
	default:
		if g.chance(0.5) {
			m.hostMTU = g.r.IntN(2) * 1500
			c.SetHostMTU(m.hostMTU)
			return fmt.Sprintf("host MTU %d", m.hostMTU)
		}
		var f *api.FelixConfigurationSpec
		if g.chance(0.7) {
			f = &api.FelixConfigurationSpec{DefaultEndpointToHostAction: g.pick("", "Accept", "RETURN")}
			if g.chance(0.3) {
				on := g.chance(0.5)
				f.VXLANEnabled = &on
			}
		}
		m.felix = f
		c.SetFelix(f)
		return fmt.Sprintf("felix %+v", f)
	}
}

// TestCalculatorMatchesCompute applies random sequences of changes and
// checks after them that the Calculator agrees with Compute on the same
// state, that a Calculator fed the final state in another order agrees too,
// and that a Desired handed out earlier was never modified.
func TestCalculatorMatchesCompute(t *testing.T) {
	seeds := 40
	steps := 300
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		g := gen{r}
		m := newModel()
		c := NewCalculator("h1")
		var log []string
		var prevGot, prevWant *dataplane.Desired
		for i := range steps {
			log = append(log, g.step(m, c))
			if !g.chance(0.6) && i != steps-1 {
				continue // let several changes pile up before looking
			}
			if c.Dirty() != (c.last == nil || c.dirty) {
				t.Fatalf("Dirty() inconsistent")
			}
			got := c.Desired()
			want := Compute(m.snapshot(r, "h1"))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d: Calculator disagrees with Compute:\n%s\nchanges:\n  %s",
					seed, i, diffDesired(got, want), strings.Join(log[max(0, len(log)-15):], "\n  "))
			}
			if c.Dirty() {
				t.Fatalf("Dirty() after Desired()")
			}
			if again := c.Desired(); again != got {
				t.Fatalf("Desired() with no change returned a new value")
			}
			if prevGot != nil && !reflect.DeepEqual(prevGot, prevWant) {
				t.Fatalf("seed %d step %d: a Desired handed out earlier was modified:\n%s", seed, i, diffDesired(prevGot, prevWant))
			}
			prevGot, prevWant = got, want
		}
		fresh := loadCalculator(m.snapshot(r, "h1")).Desired()
		if !reflect.DeepEqual(fresh, c.Desired()) {
			t.Fatalf("seed %d: the same state loaded in another order differs:\n%s", seed, diffDesired(fresh, c.Desired()))
		}
	}
}

// TestCalculatorNoopAndVersion: re-applying what is there changes nothing.
func TestCalculatorNoopAndVersion(t *testing.T) {
	c := NewCalculator("h1")
	w := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"a": "b"})
	p := gnp("g", ord(1), "a == 'b'", nil, []api.Rule{{Action: "Allow", Source: api.EntityRule{Selector: "a == 'b'"}}}, nil)
	c.UpsertWorkloadEndpoint(&w)
	c.UpsertGlobalNetworkPolicy(&p)
	d := c.Desired()
	v := c.Version()
	w2 := w
	c.UpsertWorkloadEndpoint(&w2)
	c.UpsertGlobalNetworkPolicy(&p)
	c.DeleteWorkloadEndpoint("ns", "missing")
	c.DeleteGlobalNetworkPolicy("missing")
	c.DeleteProfile("missing")
	if c.Dirty() || c.Version() != v || c.Desired() != d {
		t.Fatalf("no-op changes made the calculator dirty")
	}
	// Mutating the caller's object afterwards does not reach the calculator.
	w.Labels["a"] = "c"
	if c.Desired() != d {
		t.Fatalf("calculator kept a reference to the caller's labels")
	}
	w3 := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"a": "c"})
	c.UpsertWorkloadEndpoint(&w3)
	if !c.Dirty() || c.Version() == v {
		t.Fatalf("a label change did not make the calculator dirty")
	}
	if got := c.Desired(); got.Endpoints[0].IngressPolicies != nil || got.Sets != nil {
		t.Fatalf("after the label change: %+v", got)
	}
}

// TestCalculatorSharesUnchangedParts checks that the work after a label
// change is local: sets, chains and endpoints the change does not touch are
// handed out again as the very same slices.
func TestCalculatorSharesUnchangedParts(t *testing.T) {
	s := &Snapshot{Node: "h1"}
	for i := range 20 {
		s.WorkloadEndpoints = append(s.WorkloadEndpoints, wep("ns", fmt.Sprintf("w%02d", i), "h1", fmt.Sprintf("cali%02d", i),
			[]string{fmt.Sprintf("10.0.0.%d/32", i+1)}, map[string]string{"app": fmt.Sprintf("a%d", i%5)}))
		s.WorkloadEndpoints = append(s.WorkloadEndpoints, wep("ns", fmt.Sprintf("r%02d", i), "h2", fmt.Sprintf("cali%02d", i),
			[]string{fmt.Sprintf("10.0.1.%d/32", i+1)}, map[string]string{"app": fmt.Sprintf("a%d", i%5)}))
	}
	for i := range 5 {
		s.GlobalNetworkPolicies = append(s.GlobalNetworkPolicies, gnp(fmt.Sprintf("p%d", i), nil, fmt.Sprintf("app == 'a%d'", i), nil,
			[]api.Rule{{Action: "Allow", Source: api.EntityRule{Selector: fmt.Sprintf("app == 'a%d'", i)}}}, nil))
	}
	c := loadCalculator(s)
	d1 := c.Desired()
	w := s.WorkloadEndpoints[0] // ns/w00, app a0, local
	w.Labels = map[string]string{"app": "a1"}
	c.UpsertWorkloadEndpoint(&w)
	d2 := c.Desired()
	s.WorkloadEndpoints[0] = w
	if want := Compute(s); !reflect.DeepEqual(d2, want) {
		t.Fatalf("after the change:\n%s", diffDesired(d2, want))
	}
	same := func(a, b any) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	changedSets := map[string]bool{setID(t, "app == 'a0'"): true, setID(t, "app == 'a1'"): true}
	for i := range d2.Sets {
		if got := same(d1.Sets[i].Members, d2.Sets[i].Members); got == changedSets[d2.Sets[i].ID] {
			t.Errorf("set %s: members shared = %v", d2.Sets[i].Selector, got)
		}
	}
	for i := range d2.Chains {
		if !same(d1.Chains[i].Ingress, d2.Chains[i].Ingress) {
			t.Errorf("chain %s was rebuilt", d2.Chains[i].ID)
		}
	}
	for i := range d2.Endpoints {
		if d2.Endpoints[i].ID == "ns/w00" {
			continue
		}
		if !same(d1.Endpoints[i].IngressPolicies, d2.Endpoints[i].IngressPolicies) {
			t.Errorf("endpoint %s was rebuilt", d2.Endpoints[i].ID)
		}
	}
	if !same(d1.Routes, d2.Routes) {
		t.Errorf("routes were recomputed for a label change")
	}
}

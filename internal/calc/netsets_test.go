package calc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
)

// loadMore feeds the kinds of netsets.go and tiers.go to c (loadCalculator
// calls it).
func loadMore(c *Calculator, s *Snapshot) {
	for i := range s.GlobalNetworkSets {
		c.UpsertGlobalNetworkSet(&s.GlobalNetworkSets[i])
	}
	for i := range s.NetworkSets {
		c.UpsertNetworkSet(&s.NetworkSets[i])
	}
	for i := range s.Tiers {
		c.UpsertTier(&s.Tiers[i])
	}
}

func gnset(name string, labels map[string]string, nets ...string) api.GlobalNetworkSet {
	g := api.GlobalNetworkSet{}
	g.Name, g.Labels, g.Spec.Nets = name, labels, nets
	return g
}

func nset(ns, name string, labels map[string]string, nets ...string) api.NetworkSet {
	n := api.NetworkSet{}
	n.Namespace, n.Name, n.Labels, n.Spec.Nets = ns, name, labels, nets
	return n
}

func from(sel, nsSel string) []api.Rule {
	return []api.Rule{{Action: api.ActionAllow, Source: api.EntityRule{Selector: sel, NamespaceSelector: nsSel}}}
}

// Network sets join the sets of the rule selectors that match them, as
// Calico's: a GlobalNetworkPolicy's selector reaches global and namespaced
// sets, a NetworkPolicy's only those of its namespace, global() only
// global ones, a namespaceSelector only namespaced ones of the namespaces
// it picks.
func TestComputeNetworkSets(t *testing.T) {
	partners := map[string]string{"role": "partners"}
	s := &Snapshot{
		Node: "h1",
		WorkloadEndpoints: []api.WorkloadEndpoint{
			wep("na", "local", "h1", "cali1", []string{"10.65.0.1/32"}, map[string]string{"app": "web"}),
			wep("na", "remote", "h2", "cali2", []string{"10.65.1.1/32"}, partners),
		},
		GlobalNetworkSets: []api.GlobalNetworkSet{
			gnset("ext", partners, "198.51.100.0/28", "2001:db8::/64", "10.1.0.0/16"),
			gnset("other", map[string]string{"role": "other"}, "192.0.2.0/24"),
			// The namespace label is not a GlobalNetworkSet's to set.
			gnset("spoof", map[string]string{"role": "x", "projectcalico.org/namespace": "na"}, "192.0.2.77"),
		},
		NetworkSets: []api.NetworkSet{
			nset("na", "a", partners, "203.0.113.0/24"),
			nset("nb", "b", partners, "203.0.114.0/24"),
			nset("na", "hijack", map[string]string{"role": "partners", "projectcalico.org/namespace": "nb"}, "203.0.115.1"),
		},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{
			gnp("g", nil, "app == 'web'", nil, from("role == 'partners'", ""), nil),
			gnp("g-global", nil, "app == 'web'", nil, from("", "global()"), nil),
			gnp("g-nb", nil, "app == 'web'", nil, from("role == 'partners'", "projectcalico.org/name == 'nb'"), nil),
			gnp("g-nsall", nil, "app == 'web'", nil, from("has(role)", "all()"), nil),
		},
		NetworkPolicies: []api.NetworkPolicy{
			netpol("na", "n", nil, "app == 'web'", nil, from("role == 'partners'", ""), nil),
		},
	}
	d := compute(t, s)
	members := func(chain string) []netip.Prefix {
		t.Helper()
		r := chainByID(t, d, chain).Ingress
		if len(r) != 1 || len(r[0].Src.Sets) != 1 {
			t.Fatalf("%s: rules %+v", chain, r)
		}
		return setByID(t, d, r[0].Src.Sets[0]).Members
	}
	for _, c := range []struct {
		chain string
		want  []netip.Prefix
	}{
		{"gnp:g", pfxs("10.1.0.0/16", "10.65.1.1/32", "198.51.100.0/28", "203.0.113.0/24", "203.0.114.0/24", "203.0.115.1/32", "2001:db8::/64")},
		{"gnp:g-global", pfxs("10.1.0.0/16", "192.0.2.0/24", "192.0.2.77/32", "198.51.100.0/28", "2001:db8::/64")},
		{"gnp:g-nb", pfxs("203.0.114.0/24")},
		{"gnp:g-nsall", pfxs("10.65.1.1/32", "203.0.113.0/24", "203.0.114.0/24", "203.0.115.1/32")},
		// Confined to namespace na: its workload and its own sets (the
		// hijack set's own namespace label does not count).
		{"policy:na/n", pfxs("10.65.1.1/32", "203.0.113.0/24", "203.0.115.1/32")},
	} {
		if got := members(c.chain); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: members %v, want %v", c.chain, got, c.want)
		}
	}
	// Network sets are not endpoints: no chains, routes or endpoints of theirs.
	if len(d.Endpoints) != 1 || len(d.Routes) != 1 {
		t.Errorf("endpoints %+v routes %+v", d.Endpoints, d.Routes)
	}
}

// Incremental changes of network sets: nets, labels, deletion.
func TestCalculatorNetworkSetChanges(t *testing.T) {
	c := NewCalculator("h1")
	w := wep("na", "local", "h1", "cali1", []string{"10.65.0.1/32"}, nil)
	c.UpsertWorkloadEndpoint(&w)
	p := gnp("g", nil, "", nil, from("role == 'partners'", ""), nil)
	c.UpsertGlobalNetworkPolicy(&p)
	id := setID(t, "role == 'partners'")
	check := func(want ...string) {
		t.Helper()
		d := c.Desired()
		if got := setByID(t, d, id).Members; !reflect.DeepEqual(got, pfxs(want...)) {
			t.Fatalf("members %v, want %v", got, want)
		}
	}
	g := gnset("ext", map[string]string{"role": "partners"}, "198.51.100.0/28")
	c.UpsertGlobalNetworkSet(&g)
	check("198.51.100.0/28")
	v := c.Version()
	c.UpsertGlobalNetworkSet(&g)
	if c.Version() != v {
		t.Fatal("an unchanged network set changed the version")
	}
	g.Spec.Nets = []string{"198.51.100.0/28", "192.0.2.1"}
	c.UpsertGlobalNetworkSet(&g)
	check("192.0.2.1/32", "198.51.100.0/28")
	n := nset("na", "a", map[string]string{"role": "partners"}, "192.0.2.1/32", "203.0.113.0/24")
	c.UpsertNetworkSet(&n)
	check("192.0.2.1/32", "198.51.100.0/28", "203.0.113.0/24")
	g.Labels = map[string]string{"role": "retired"}
	c.UpsertGlobalNetworkSet(&g)
	check("192.0.2.1/32", "203.0.113.0/24")
	c.DeleteNetworkSet("na", "a")
	d := c.Desired()
	if got := setByID(t, d, id).Members; got != nil {
		t.Fatalf("members after delete: %v", got)
	}
	c.DeleteGlobalNetworkSet("ext")
	c.DeleteGlobalNetworkSet("ext")
}

// netModel extends model with network sets and tiers for the random test.
type netModel struct {
	*model
	gnsets map[string]api.GlobalNetworkSet
	nsets  map[string]api.NetworkSet
	tiers  map[string]api.Tier
}

func (m *netModel) snapshot(r *rand.Rand, node string) *Snapshot {
	s := m.model.snapshot(r, node)
	s.GlobalNetworkSets = shuffled(r, m.gnsets)
	s.NetworkSets = shuffled(r, m.nsets)
	s.Tiers = shuffled(r, m.tiers)
	return s
}

// stepMore changes a network set or a tier, or a policy's tier.
func (g gen) stepMore(m *netModel, c *Calculator) string {
	switch g.r.IntN(6) {
	case 0, 1:
		s := gnset(g.pick("e0", "e1", "e2"), g.labels(), g.nets()...)
		m.gnsets[s.Name] = s
		c.UpsertGlobalNetworkSet(&s)
		return fmt.Sprintf("upsert gns %s labels=%v nets=%v", s.Name, s.Labels, s.Spec.Nets)
	case 2:
		s := nset(g.pick("na", "nb"), g.pick("s0", "s1"), g.labels(), g.nets()...)
		m.nsets[s.Namespace+"/"+s.Name] = s
		c.UpsertNetworkSet(&s)
		return fmt.Sprintf("upsert ns %s/%s labels=%v nets=%v", s.Namespace, s.Name, s.Labels, s.Spec.Nets)
	case 3:
		if g.chance(0.5) {
			name := g.pick("e0", "e1", "e2")
			delete(m.gnsets, name)
			c.DeleteGlobalNetworkSet(name)
			return "delete gns " + name
		}
		ns, name := g.pick("na", "nb"), g.pick("s0", "s1")
		delete(m.nsets, ns+"/"+name)
		c.DeleteNetworkSet(ns, name)
		return "delete ns " + ns + "/" + name
	case 4:
		name := g.pick("t1", "t2", "default")
		if g.chance(0.25) {
			delete(m.tiers, name)
			c.DeleteTier(name)
			return "delete tier " + name
		}
		t := tier(name, g.order(), g.pick("", "Deny", "Pass"))
		m.tiers[name] = t
		c.UpsertTier(&t)
		return fmt.Sprintf("upsert tier %s %+v", name, t.Spec)
	default:
		// A policy moves to another tier.
		tierName := g.pick("", "default", "t1", "t2", "gone")
		if g.chance(0.5) {
			ps := shuffled(g.r, m.gnps)
			if len(ps) == 0 {
				return "noop"
			}
			p := ps[0]
			p.Spec.Tier = tierName
			m.gnps[p.Name] = p
			c.UpsertGlobalNetworkPolicy(&p)
			return fmt.Sprintf("gnp %s to tier %q", p.Name, tierName)
		}
		ps := shuffled(g.r, m.nps)
		if len(ps) == 0 {
			return "noop"
		}
		p := ps[0]
		p.Spec.Tier = tierName
		m.nps[p.Namespace+"/"+p.Name] = p
		c.UpsertNetworkPolicy(&p)
		return fmt.Sprintf("np %s/%s to tier %q", p.Namespace, p.Name, tierName)
	}
}

// The Calculator agrees with Compute under random changes that include
// network sets and tiers.
func TestCalculatorMatchesComputeNetSetsTiers(t *testing.T) {
	seeds, steps := 8, 200
	if testing.Short() {
		seeds = 5
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 9))
		g := gen{r}
		m := &netModel{model: newModel(), gnsets: map[string]api.GlobalNetworkSet{}, nsets: map[string]api.NetworkSet{}, tiers: map[string]api.Tier{}}
		c := NewCalculator("h1")
		var log []string
		for i := range steps {
			if g.chance(0.4) {
				log = append(log, g.stepMore(m, c))
			} else {
				log = append(log, g.step(m.model, c))
			}
			if !g.chance(0.5) && i != steps-1 {
				continue
			}
			got := c.Desired()
			want := Compute(m.snapshot(r, "h1"))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d: Calculator disagrees with Compute:\n%s\nchanges:\n  %s",
					seed, i, diffDesired(got, want), strings.Join(log[max(0, len(log)-15):], "\n  "))
			}
		}
		fresh := loadCalculator(m.snapshot(r, "h1")).Desired()
		if !reflect.DeepEqual(fresh, c.Desired()) {
			t.Fatalf("seed %d: the same state loaded in another order differs:\n%s", seed, diffDesired(fresh, c.Desired()))
		}
	}
}

func tier(name string, order *float64, action string) api.Tier {
	t := api.Tier{}
	t.Name, t.Spec.Order = name, order
	if action != "" {
		t.Spec.DefaultAction = &action
	}
	return t
}

package nft

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// TestIncrementalMatchesCold: a random sequence of changes applied one by
// one (each Apply sending only its difference) leaves exactly the table
// that a new driver programming the final state into an empty namespace
// leaves. The listings are compared without counter values, with sets'
// elements and the table's top-level objects in a canonical order (the
// kernel lists both in insertion order, which differs by construction).
func TestIncrementalMatchesCold(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "nft")
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 23))
			g := newRandDesired(r)
			ns := testutil.NewNetNS(t, "h23-inc")
			drv, err := New(Options{NetNS: ns.Path()})
			if err != nil {
				t.Fatal(err)
			}
			defer drv.Close()
			const steps, check = 40, 10
			for i := 1; i <= steps; i++ {
				for n := 1 + r.IntN(3); n > 0; n-- {
					g.mutate()
				}
				d := g.desired()
				drv.SetDesired(d)
				if _, err := drv.Apply(context.Background()); err != nil {
					t.Fatalf("step %d: incremental apply: %v", i, err)
				}
				if i == steps/2 {
					// The periodic resync must not disturb what follows.
					if err := drv.Resync(context.Background()); err != nil {
						t.Fatalf("resync: %v", err)
					}
				}
				if i%check != 0 {
					continue
				}
				got := canonicalList(nftList(t, ns))
				want := canonicalList(coldList(t, d))
				if got != want {
					if dir := os.Getenv("H23_DUMP"); dir != "" {
						_ = os.WriteFile(dir+"/want", []byte(want), 0o644)
						_ = os.WriteFile(dir+"/got", []byte(got), 0o644)
					}
					t.Fatalf("step %d: incremental table differs from a cold apply of the same state\n%s", i, lineDiff(want, got))
				}
			}
		})
	}
}

// coldList programs d with a new driver into a new namespace and lists it.
func coldList(t *testing.T, d *dataplane.Desired) string {
	t.Helper()
	ns := testutil.NewNetNS(t, "h23-cold")
	drv, err := New(Options{NetNS: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	drv.SetDesired(d)
	if _, err := drv.Apply(context.Background()); err != nil {
		t.Fatalf("cold apply: %v", err)
	}
	return nftList(t, ns)
}

var elementsBlock = regexp.MustCompile(`(?s)elements = \{([^}]*)\}`)

// canonicalList sorts each set's elements and the table's top-level
// blocks (sets, maps, chains); rule order inside a chain is kept.
func canonicalList(s string) string {
	s = elementsBlock.ReplaceAllStringFunc(s, func(m string) string {
		inner := elementsBlock.FindStringSubmatch(m)[1]
		var items []string
		for _, x := range strings.Split(inner, ",") {
			if x = strings.Join(strings.Fields(x), " "); x != "" {
				items = append(items, x)
			}
		}
		slices.Sort(items)
		return "elements = { " + strings.Join(items, ", ") + " }"
	})
	var blocks, cur []string
	for _, line := range strings.Split(s, "\n") {
		switch {
		case objectComment.MatchString(line), line == "", line == "\t}", !strings.HasPrefix(line, "\t"):
			// The table's own lines, block ends, and comments: the
			// comment of a chain or set is informational and set when the
			// object is created; an Apply does not rewrite it on an
			// object that stays (a policy that was missing and came
			// back keeps "(missing)"). Objects and rules must match.
			continue
		case !strings.HasPrefix(line, "\t\t") && cur != nil:
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur = nil
		}
		cur = append(cur, line)
	}
	blocks = append(blocks, strings.Join(cur, "\n"))
	slices.Sort(blocks)
	return strings.Join(blocks, "\n")
}

// objectComment is a chain's or set's comment line (a rule's comment, its
// hash, is on the rule's line and is compared).
var objectComment = regexp.MustCompile(`^\t\tcomment ".*"$`)

// lineDiff shows the lines only one side has.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

// randDesired is a small host whose endpoints, policies, sets and settings
// change at random, drawing from pools small enough that names and
// addresses come back after they went (the cases a cache can get wrong).
type randDesired struct {
	r         *rand.Rand
	eps       map[int]dataplane.Endpoint
	chains    map[string]dataplane.PolicyChain
	sets      map[string][]netip.Prefix
	hostPorts map[int]dataplane.HostPort
	nat       bool
	flowLogs  bool
	toHost    string
	cpPorts   []dataplane.ProtoPort
}

func newRandDesired(r *rand.Rand) *randDesired {
	g := &randDesired{r: r, eps: map[int]dataplane.Endpoint{}, chains: map[string]dataplane.PolicyChain{},
		sets: map[string][]netip.Prefix{}, hostPorts: map[int]dataplane.HostPort{}}
	for i := 0; i < 6; i++ {
		g.newEndpoint(r.IntN(12))
	}
	for i := 0; i < 4; i++ {
		g.newChain(g.chainID())
		g.newSet(fmt.Sprintf("s-%d", i))
	}
	return g
}

func (g *randDesired) chainID() string {
	if g.r.IntN(3) == 0 {
		return fmt.Sprintf("profile:net%d", g.r.IntN(3))
	}
	return fmt.Sprintf("policy:ns/p%d", g.r.IntN(6))
}

func (g *randDesired) pick(n int, f func() string) []string {
	var out []string
	for i := g.r.IntN(n + 1); i > 0; i-- {
		if id := f(); !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (g *randDesired) newEndpoint(n int) {
	ep := dataplane.Endpoint{
		ID:    fmt.Sprintf("ns/ep%d-%d", n, g.r.IntN(2)),
		Iface: fmt.Sprintf("calir%02d", n),
		Addrs: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.66.0.%d/32", n+1))},
	}
	if g.r.IntN(2) == 0 {
		ep.Addrs = append(ep.Addrs, netip.MustParsePrefix(fmt.Sprintf("fd00:66::%x/128", n+1)))
	}
	if g.r.IntN(4) == 0 {
		ep.Addrs = append(ep.Addrs, netip.MustParsePrefix(fmt.Sprintf("10.67.%d.0/28", n)))
	}
	ep.IngressPolicies = g.pick(3, func() string { return fmt.Sprintf("policy:ns/p%d", g.r.IntN(6)) })
	ep.EgressPolicies = g.pick(2, func() string { return fmt.Sprintf("policy:ns/p%d", g.r.IntN(6)) })
	ep.Profiles = g.pick(2, func() string { return fmt.Sprintf("profile:net%d", g.r.IntN(3)) })
	if len(ep.IngressPolicies) > 1 && g.r.IntN(2) == 0 {
		ep.IngressTiers = []dataplane.EndpointTier{{Name: "security", Policies: 1, DefaultPass: true},
			{Name: "default", Policies: len(ep.IngressPolicies) - 1}}
	}
	g.eps[n] = ep
}

func (g *randDesired) randNet() netip.Prefix {
	switch g.r.IntN(4) {
	case 0:
		return netip.MustParsePrefix(fmt.Sprintf("10.66.0.%d/32", 1+g.r.IntN(12)))
	case 1:
		return netip.MustParsePrefix(fmt.Sprintf("fd00:66::%x/128", 1+g.r.IntN(12)))
	case 2:
		return netip.MustParsePrefix(fmt.Sprintf("192.0.%d.0/24", g.r.IntN(4)))
	}
	return netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", g.r.IntN(4)))
}

func (g *randDesired) newSet(id string) {
	var ms []netip.Prefix
	for i := g.r.IntN(6); i > 0; i-- {
		if p := g.randNet(); !slices.Contains(ms, p) && !slices.ContainsFunc(ms, p.Overlaps) {
			ms = append(ms, p)
		}
	}
	slices.SortFunc(ms, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	g.sets[id] = ms
}

func (g *randDesired) randRule() dataplane.Rule {
	acts := []dataplane.Action{dataplane.Allow, dataplane.Deny, dataplane.Pass, dataplane.Log}
	r := dataplane.Rule{Action: acts[g.r.IntN(len(acts))]}
	switch g.r.IntN(5) {
	case 0:
		r.Protocol = u8(6)
		p := uint16(1000 + g.r.IntN(5))
		r.Dst.Ports = []dataplane.PortRange{{First: p, Last: p + uint16(g.r.IntN(3))}}
	case 1:
		r.Src.Sets = []string{fmt.Sprintf("s-%d", g.r.IntN(5))}
	case 2:
		r.Dst.NotSets = []string{fmt.Sprintf("s-%d", g.r.IntN(5))}
		r.Protocol = u8(17)
	case 3:
		r.Src.Nets = []netip.Prefix{g.randNet()}
	}
	return r
}

func (g *randDesired) newChain(id string) {
	pc := dataplane.PolicyChain{ID: id}
	for i := g.r.IntN(3); i > 0; i-- {
		pc.Ingress = append(pc.Ingress, g.randRule())
	}
	for i := g.r.IntN(2); i > 0; i-- {
		pc.Egress = append(pc.Egress, g.randRule())
	}
	g.chains[id] = pc
}

// mutate makes one random change.
func (g *randDesired) mutate() {
	r := g.r
	switch r.IntN(10) {
	case 0, 1: // add or replace an endpoint
		g.newEndpoint(r.IntN(12))
	case 2: // remove one
		for n := range g.eps {
			delete(g.eps, n)
			break
		}
	case 3: // change one endpoint's policies only
		for n, ep := range g.eps {
			ep.IngressPolicies = g.pick(3, func() string { return fmt.Sprintf("policy:ns/p%d", r.IntN(6)) })
			ep.IngressTiers = nil
			g.eps[n] = ep
			break
		}
	case 4: // a policy's rules change, appear or go (still referenced: empty)
		id := g.chainID()
		if _, ok := g.chains[id]; ok && r.IntN(3) == 0 {
			delete(g.chains, id)
		} else {
			g.newChain(id)
		}
	case 5: // a set's members change, or it goes
		id := fmt.Sprintf("s-%d", r.IntN(5))
		if _, ok := g.sets[id]; ok && r.IntN(4) == 0 {
			delete(g.sets, id)
		} else {
			g.newSet(id)
		}
	case 6: // published ports
		n := r.IntN(4)
		if _, ok := g.hostPorts[n]; ok {
			delete(g.hostPorts, n)
			break
		}
		e := 1 + r.IntN(12)
		g.hostPorts[n] = dataplane.HostPort{Protocol: []uint8{6, 17}[r.IntN(2)], HostPort: uint16(8080 + n),
			Target: netip.MustParseAddr(fmt.Sprintf("10.66.0.%d", e)), Port: 80, Endpoint: fmt.Sprintf("ns/ep%d", e)}
	case 7:
		g.nat = !g.nat
	case 8:
		g.toHost = []string{"", "Accept", "Drop", "Return"}[r.IntN(4)]
		g.cpPorts = nil
		for i := r.IntN(3); i > 0; i-- {
			pp := dataplane.ProtoPort{Protocol: 6, Port: uint16(170 + r.IntN(20))}
			if !slices.Contains(g.cpPorts, pp) {
				g.cpPorts = append(g.cpPorts, pp)
			}
		}
	case 9:
		g.flowLogs = !g.flowLogs
	}
}

// desired builds a fresh Desired (sorted as the agent sorts it).
func (g *randDesired) desired() *dataplane.Desired {
	d := &dataplane.Desired{FlowLogs: g.flowLogs, Host: dataplane.HostConfig{EndpointToHostAction: g.toHost}}
	for _, ep := range g.eps {
		ep.IngressPolicies = slices.Clone(ep.IngressPolicies)
		d.Endpoints = append(d.Endpoints, ep)
	}
	slices.SortFunc(d.Endpoints, func(a, b dataplane.Endpoint) int { return strings.Compare(a.Iface, b.Iface) })
	// Now and then, input the agent does not send but the driver must
	// survive the same way cold and warm: two endpoints out of order, and
	// an interface claimed twice (the first endpoint keeps it).
	if n := len(d.Endpoints); n > 2 && g.r.IntN(5) == 0 {
		i, k := g.r.IntN(n), g.r.IntN(n)
		d.Endpoints[i], d.Endpoints[k] = d.Endpoints[k], d.Endpoints[i]
	}
	if n := len(d.Endpoints); n > 1 && g.r.IntN(8) == 0 {
		dup := d.Endpoints[g.r.IntN(n)]
		dup.ID += "-dup"
		dup.Profiles = nil
		d.Endpoints = slices.Insert(d.Endpoints, g.r.IntN(n+1), dup)
	}
	for _, pc := range g.chains {
		d.Chains = append(d.Chains, pc)
	}
	slices.SortFunc(d.Chains, func(a, b dataplane.PolicyChain) int { return strings.Compare(a.ID, b.ID) })
	for id, ms := range g.sets {
		d.Sets = append(d.Sets, dataplane.IPSet{ID: id, Selector: "app == '" + id + "'", Members: slices.Clone(ms)})
	}
	slices.SortFunc(d.Sets, func(a, b dataplane.IPSet) int { return strings.Compare(a.ID, b.ID) })
	for _, hp := range g.hostPorts {
		d.HostPorts = append(d.HostPorts, hp)
	}
	slices.SortFunc(d.HostPorts, dataplane.CompareHostPort)
	if g.nat {
		d.NAT = dataplane.NATConfig{MasqueradePools: pfx("10.66.0.0/16"), AllPools: pfx("10.66.0.0/16", "fd00:66::/64")}
	}
	d.ControlPlane = dataplane.ControlPlane{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Ports: slices.Clone(g.cpPorts)}
	return d
}

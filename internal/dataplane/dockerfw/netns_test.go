package dockerfw

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/nft"
	"github.com/calico-docker/calico/internal/testutil"
)

// topo is a host namespace with two workloads behind cali interfaces, two
// plain peers behind non-workload interfaces (like containers on Docker's
// bridge), our nftables table programmed by the real nft driver, and a
// Docker-like iptables firewall written with the real iptables of one back end.
type topo struct {
	be       Backend
	host     testutil.NetNS
	w1, w2   peer
	o1, o2   peer
	nft      *nft.Driver
	fw       *Driver
	withIPv6 bool
}

type peer struct {
	ns     testutil.NetNS
	iface  string
	v4, v6 netip.Addr
}

func (tp *topo) ipt(t *testing.T, v6 bool, args ...string) string {
	t.Helper()
	return tp.host.MustExec(t, append([]string{Target{tp.be, v6}.Bin(), "-w"}, args...)...)
}

func (tp *topo) save(t *testing.T, v6 bool) string {
	t.Helper()
	s := tp.host.MustExec(t, Target{tp.be, v6}.Bin()+"-save", "-t", "filter")
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") { // timestamps
			continue
		}
		// Counters change with traffic.
		if strings.HasPrefix(l, ":") {
			if i := strings.Index(l, " ["); i > 0 {
				l = l[:i]
			}
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func newTopo(t *testing.T, be Backend, withIPv6 bool) *topo {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "ip", "busybox", "sysctl", Target{be, false}.Bin(), Target{be, true}.Bin(), "nsenter")
	tp := &topo{be: be, host: testutil.NewNetNS(t, "dfw-h"), withIPv6: withIPv6}
	h := tp.host
	h.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	// A default route, so proxy ARP answers for 169.254.1.1.
	h.MustExec(t, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	h.MustExec(t, "ip", "link", "set", "up0", "up")
	h.MustExec(t, "ip", "link", "set", "up1", "up")
	h.MustExec(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
	h.MustExec(t, "ip", "route", "add", "default", "via", "192.0.2.2")
	tp.w1 = tp.addPeer(t, "cali1", 1, true)
	tp.w2 = tp.addPeer(t, "cali2", 2, true)
	tp.o1 = tp.addPeer(t, "br1", 3, false)
	tp.o2 = tp.addPeer(t, "br2", 4, false)
	d, err := nft.New(nft.Options{NetNS: h.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	tp.nft = d
	tp.fw = New(Options{NetNS: h.Path()})
	return tp
}

// addPeer creates a namespace behind host interface iface, routed like a
// workload (10.66.0.n/32, fd00:66::n/128, gateway 169.254.1.1).
func (tp *topo) addPeer(t *testing.T, iface string, n int, cali bool) peer {
	t.Helper()
	p := peer{ns: testutil.NewNetNS(t, "dfw-w"), iface: iface,
		v4: netip.MustParseAddr(fmt.Sprintf("10.66.0.%d", n)), v6: netip.MustParseAddr(fmt.Sprintf("fd00:66::%x", n))}
	testutil.PlumbWorkload(t, tp.host, p.ns, iface, p.v4, p.v6)
	return p
}

// dockerFirewall writes what dockerd with its defaults writes into the
// filter table that matters here (Docker 20.10's layout), for one family.
func (tp *topo) dockerFirewall(t *testing.T, v6 bool) {
	t.Helper()
	for _, args := range [][]string{
		{"-N", "DOCKER"},
		{"-N", "DOCKER-ISOLATION-STAGE-1"},
		{"-N", "DOCKER-ISOLATION-STAGE-2"},
		{"-N", "DOCKER-USER"},
		{"-P", "FORWARD", "DROP"},
		{"-A", "FORWARD", "-j", "DOCKER-USER"},
		{"-A", "FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1"},
		{"-A", "FORWARD", "-o", "docker0", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-o", "docker0", "-j", "DOCKER"},
		{"-A", "FORWARD", "-i", "docker0", "!", "-o", "docker0", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "docker0", "-o", "docker0", "-j", "ACCEPT"},
		{"-A", "DOCKER-ISOLATION-STAGE-1", "-i", "docker0", "!", "-o", "docker0", "-j", "DOCKER-ISOLATION-STAGE-2"},
		{"-A", "DOCKER-ISOLATION-STAGE-1", "-j", "RETURN"},
		{"-A", "DOCKER-ISOLATION-STAGE-2", "-o", "docker0", "-j", "DROP"},
		{"-A", "DOCKER-ISOLATION-STAGE-2", "-j", "RETURN"},
		{"-A", "DOCKER-USER", "-j", "RETURN"},
	} {
		tp.ipt(t, v6, args...)
	}
}

// profiles programs our table: w1 and w2 in the given profiles (a Docker
// network each: ingress from members, egress anywhere), o1/o2 unknown to us.
func (tp *topo) profiles(t *testing.T, p1, p2 string) {
	t.Helper()
	prof := func(id string) dataplane.PolicyChain {
		return dataplane.PolicyChain{ID: "profile:" + id,
			Ingress: []dataplane.Rule{{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{"s-" + id}}}},
			Egress:  []dataplane.Rule{{Action: dataplane.Allow}}}
	}
	addrs := func(p peer) []netip.Prefix {
		return []netip.Prefix{netip.PrefixFrom(p.v4, 32), netip.PrefixFrom(p.v6, 128)}
	}
	members := map[string][]netip.Prefix{}
	members[p1] = append(members[p1], addrs(tp.w1)...)
	members[p2] = append(members[p2], addrs(tp.w2)...)
	d := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{
			{ID: "t/w1", Iface: tp.w1.iface, Addrs: addrs(tp.w1), Profiles: []string{"profile:" + p1}},
			{ID: "t/w2", Iface: tp.w2.iface, Addrs: addrs(tp.w2), Profiles: []string{"profile:" + p2}},
		},
	}
	ids := []string{p1}
	if p2 != p1 {
		ids = append(ids, p2)
	}
	if ids[0] > ids[len(ids)-1] {
		ids[0], ids[len(ids)-1] = ids[len(ids)-1], ids[0]
	}
	for _, id := range ids {
		d.Chains = append(d.Chains, prof(id))
		d.Sets = append(d.Sets, dataplane.IPSet{ID: "s-" + id, Selector: "has(" + id + ")", Members: members[id]})
	}
	tp.nft.SetDesired(d)
	if _, err := tp.nft.Apply(context.Background()); err != nil {
		t.Fatalf("nft apply: %v", err)
	}
}

func pingOK(p peer, dst netip.Addr) bool {
	_, err := p.ns.Exec("busybox", "ping", "-c", "1", "-W", "1", dst.String())
	return err == nil
}

func (tp *topo) mustPing(t *testing.T, from, to peer, want bool) {
	t.Helper()
	dsts := []netip.Addr{to.v4}
	if tp.withIPv6 {
		dsts = append(dsts, to.v6)
	}
	for _, dst := range dsts {
		// A reachable peer answers the first ping (neighbour resolution
		// can cost one); an unreachable one must fail every time.
		ok := pingOK(from, dst) || (want && pingOK(from, dst))
		if ok != want {
			t.Fatalf("ping %s (%s) -> %s: got through=%v, want %v\n%s", from.iface, from.v4, dst, ok, want, tp.host.MustExec(t, "nft", "list", "ruleset"))
		}
	}
}

func (tp *topo) apply(t *testing.T) Status {
	t.Helper()
	tp.fw.SetDesired(Desired{Mark: nft.MarkForwardAllowed})
	st, err := tp.fw.Apply(context.Background())
	if err != nil {
		t.Fatalf("dockerfw apply: %v", err)
	}
	return st
}

func (tp *topo) target(st Status, v6 bool) TargetStatus {
	for _, ts := range st.Targets {
		if ts.Target == (Target{tp.be, v6}) {
			return ts
		}
	}
	return TargetStatus{}
}

func TestDockerFirewall(t *testing.T) {
	for _, be := range []Backend{NFT, Legacy} {
		t.Run(string(be), func(t *testing.T) { testBackend(t, be) })
	}
}

func testBackend(t *testing.T, be Backend) {
	tp := newTopo(t, be, true)
	tp.profiles(t, "a", "a")

	// Without Docker's firewall, our table alone decides, and the driver
	// writes nothing: no chain, no legacy table instantiated.
	tp.mustPing(t, tp.w1, tp.w2, true)
	st := tp.apply(t)
	if st.Changes() != 0 || st.Summary() != "no Docker firewall found" {
		t.Fatalf("no Docker firewall: want no changes, got %+v", st)
	}
	if names := tp.host.MustExec(t, "cat", "/proc/net/ip_tables_names", "/proc/net/ip6_tables_names"); strings.TrimSpace(names) != "" {
		t.Fatalf("the driver instantiated legacy tables: %q", names)
	}

	tp.dockerFirewall(t, false)
	tp.dockerFirewall(t, true)
	before4, before6 := tp.save(t, false), tp.save(t, true)
	// Docker's DROP policy kills workload traffic, and traffic between
	// Docker's own peers that no Docker rule allows.
	tp.mustPing(t, tp.w1, tp.w2, false)
	tp.mustPing(t, tp.o1, tp.o2, false)

	t.Run("rule lets judged workload traffic through", func(t *testing.T) {
		st := tp.apply(t)
		for _, v6 := range []bool{false, true} {
			ts := tp.target(st, v6)
			if !ts.Docker || !ts.RulePresent || ts.Inserted != 1 {
				t.Fatalf("%s: want Docker found and our rule inserted, got %+v", ts.Name, ts)
			}
		}
		tp.mustPing(t, tp.w1, tp.w2, true)
		tp.mustPing(t, tp.w2, tp.w1, true)
		// Workload to a peer on another interface: egress judged by our
		// chain (marked, accepted in DOCKER-USER); the reply comes back
		// to cali1 as established and is marked too.
		tp.mustPing(t, tp.w1, tp.o1, true)
		// Nothing of ours touches traffic between non-workload interfaces.
		tp.mustPing(t, tp.o1, tp.o2, false)
	})

	t.Run("our policy still judges", func(t *testing.T) {
		tp.profiles(t, "a", "b")
		tp.mustPing(t, tp.w1, tp.w2, false)
		// The peer on a plain interface is not a workload: packets to w1 are
		// judged by w1's ingress profile, which admits only its members.
		tp.mustPing(t, tp.o1, tp.w1, false)
		tp.profiles(t, "a", "a")
		tp.mustPing(t, tp.w1, tp.w2, true)
	})

	t.Run("only our rule was added", func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			after, before := tp.save(t, v6), before4
			if v6 {
				before = before6
			}
			want := strings.Replace(before, "-A DOCKER-USER -j RETURN",
				"-A DOCKER-USER -m mark --mark 0x40000/0x40000 -m comment --comment \""+Comment+"\" -j ACCEPT\n-A DOCKER-USER -j RETURN", 1)
			if after != want {
				t.Fatalf("iptables-save (v6=%v) after Apply:\n%s\nwant:\n%s", v6, after, want)
			}
		}
		if st := tp.apply(t); st.Changes() != 0 {
			t.Fatalf("second Apply changed %d rules", st.Changes())
		}
	})

	t.Run("repairs a flushed DOCKER-USER", func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			tp.ipt(t, v6, "-F", "DOCKER-USER")
		}
		tp.mustPing(t, tp.w1, tp.w2, false)
		st := tp.apply(t)
		for _, v6 := range []bool{false, true} {
			if ts := tp.target(st, v6); ts.Inserted != 1 || ts.Deleted != 0 {
				t.Fatalf("repair: %+v", ts)
			}
			tp.ipt(t, v6, "-A", "DOCKER-USER", "-j", "RETURN") // as Docker had it
		}
		tp.mustPing(t, tp.w1, tp.w2, true)
	})

	t.Run("replaces a stale rule and drops copies", func(t *testing.T) {
		tp.ipt(t, false, "-A", "DOCKER-USER", "-m", "mark", "--mark", "0x80000/0x80000", "-m", "comment", "--comment", Marker+" old", "-j", "ACCEPT")
		tp.ipt(t, false, append([]string{"-A", "DOCKER-USER"}, WantedRule(nft.MarkForwardAllowed)...)...)
		// A user's rule that merely mentions our marker elsewhere is not ours.
		tp.ipt(t, false, "-A", "DOCKER-USER", "-s", "198.51.100.7", "-m", "comment", "--comment", "see "+Marker, "-j", "DROP")
		st := tp.apply(t)
		if ts := tp.target(st, false); ts.Deleted != 2 || ts.Inserted != 0 {
			t.Fatalf("cleanup: %+v", ts)
		}
		tp.ipt(t, false, "-D", "DOCKER-USER", "-s", "198.51.100.7", "-m", "comment", "--comment", "see "+Marker, "-j", "DROP")
		if got := tp.save(t, false); got != tp.wantWithRule(before4) {
			t.Fatalf("after cleanup:\n%s", got)
		}
	})

	t.Run("creates DOCKER-USER when Docker's other chains exist", func(t *testing.T) {
		tp.ipt(t, true, "-D", "FORWARD", "-j", "DOCKER-USER")
		tp.ipt(t, true, "-F", "DOCKER-USER")
		tp.ipt(t, true, "-X", "DOCKER-USER")
		st := tp.apply(t)
		if ts := tp.target(st, true); !ts.RulePresent || ts.Inserted != 1 {
			t.Fatalf("%+v", ts)
		}
		// Docker re-adds its jump when it (re)starts; we never do.
		if out := tp.ipt(t, true, "-S", "FORWARD"); strings.Contains(out, "DOCKER-USER") {
			t.Fatalf("the driver added a jump to DOCKER-USER:\n%s", out)
		}
		tp.ipt(t, true, "-I", "FORWARD", "1", "-j", "DOCKER-USER")
		tp.ipt(t, true, "-A", "DOCKER-USER", "-j", "RETURN")
		if got := tp.save(t, true); got != tp.wantWithRule(before6) {
			t.Fatalf("after re-creating DOCKER-USER:\n%s\nwant\n%s", got, tp.wantWithRule(before6))
		}
		tp.mustPing(t, tp.w1, tp.w2, true)
	})

	t.Run("fails closed without our table", func(t *testing.T) {
		tp.host.MustExec(t, "nft", "delete", "table", "inet", "calico")
		tp.mustPing(t, tp.w1, tp.w2, false)
		if err := tp.nft.Resync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := tp.nft.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
		tp.mustPing(t, tp.w1, tp.w2, true)
	})

	t.Run("remove leaves Docker's rules as they were", func(t *testing.T) {
		n, err := tp.fw.Remove(context.Background())
		if err != nil || n != 2 {
			t.Fatalf("Remove: %d rules, %v", n, err)
		}
		if got := tp.save(t, false); got != before4 {
			t.Fatalf("after Remove:\n%s\nwant\n%s", got, before4)
		}
		if got := tp.save(t, true); got != before6 {
			t.Fatalf("after Remove (v6):\n%s\nwant\n%s", got, before6)
		}
		tp.mustPing(t, tp.w1, tp.w2, false)
		if n, err := tp.fw.Remove(context.Background()); err != nil || n != 0 {
			t.Fatalf("second Remove: %d, %v", n, err)
		}
	})

	t.Run("zero mark removes", func(t *testing.T) {
		tp.apply(t)
		tp.fw.SetDesired(Desired{})
		st, err := tp.fw.Apply(context.Background())
		if err != nil || st.Changes() != 2 {
			t.Fatalf("apply with no mark: %+v %v", st, err)
		}
		if got := tp.save(t, false); got != before4 {
			t.Fatalf("after apply with no mark:\n%s", got)
		}
	})
}

func (tp *topo) wantWithRule(before string) string {
	return strings.Replace(before, "-A DOCKER-USER -j RETURN",
		"-A DOCKER-USER -m mark --mark 0x40000/0x40000 -m comment --comment \""+Comment+"\" -j ACCEPT\n-A DOCKER-USER -j RETURN", 1)
}

func TestSplitWords(t *testing.T) {
	got, err := splitWords(`-A DOCKER-USER -m comment --comment "a \"b\" c\\d" -j ACCEPT`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-A", "DOCKER-USER", "-m", "comment", "--comment", `a "b" c\d`, "-j", "ACCEPT"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q want %q", got, want)
	}
	if _, err := splitWords(`-A X "open`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

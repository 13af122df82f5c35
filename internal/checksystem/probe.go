package checksystem

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/nft"
	"github.com/calico-docker/calico/internal/nsexec"
)

// scratchNS is a network namespace that exists only as long as its handle is
// open: no name, no bind mount, nothing left on the host when it closes.
type scratchNS struct {
	h netns.NsHandle
}

// newScratchNS creates an anonymous network namespace on a short-lived
// locked thread that is moved back (and checked) before it is released.
func newScratchNS() (*scratchNS, error) {
	var h netns.NsHandle
	err := nsexec.Guard(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		h, err = netns.New() // unshare(CLONE_NEWNET) on this thread
		if err != nil {
			return err
		}
		return netns.Set(orig)
	})
	if err != nil {
		if h.IsOpen() {
			h.Close()
		}
		return nil, fmt.Errorf("create a throwaway network namespace: %w", err)
	}
	return &scratchNS{h: h}, nil
}

// path names the namespace for APIs that take a path; it stays valid while
// the handle is open.
func (s *scratchNS) path() string { return "/proc/self/fd/" + strconv.Itoa(int(s.h)) }

func (s *scratchNS) close() { s.h.Close() }

// The kernel features the node uses, each probed by using it for real.
var featureProbes = []struct {
	name    string
	modules string
	need    Need
	what    string
	probe   func(s *scratchNS) error
}{
	{"nftables", "nf_tables", NeedRequired, "an inet table with a filter base chain on the forward hook", probeNFTBase},
	{"nft verdict map", "nf_tables", NeedRequired, "an ifname : verdict map dispatching to chains", probeNFTVmap},
	{"nft interval sets", "nf_tables", NeedRequired, "ipv4_addr and ipv6_addr sets with flags interval", probeNFTInterval},
	{"nft concatenations", "nf_tables (set_pipapo)", NeedRequired, "ifname . ipv4_addr sets, hashed and interval", probeNFTConcat},
	{"nft conntrack", "nft_ct, nf_conntrack", NeedRequired, "ct state established,related accept", probeNFTCt},
	{"nft masquerade", "nft_masq, nf_nat", NeedRequired, "a nat postrouting chain with masquerade (natOutgoing)", probeNFTMasq},
	{"nft log", "nft_log", NeedOptional, "log prefix (policy rules with action Log)", probeNFTLog},
	{"nft dnat", "nft_nat, nf_nat", NeedOptional, "dnat in a nat prerouting chain (published ports)", probeNFTDnat},
	{"nft fib", "nft_fib_inet", NeedOptional, "fib daddr type local (published ports)", probeNFTFib},
	{"node ruleset", "nf_tables and the above", NeedRequired, "the node's own nftables driver programs a sample ruleset", probeDriver},
	{"veth", "veth", NeedRequired, "a veth pair (every container's interface)", probeVeth},
	{"route protocol", "netlink", NeedRequired, "routes tagged with protocol 80 are kept and read back", probeRouteProto},
	{"vxlan", "vxlan", NeedOptional, "a vxlan device (IPPools with vxlanMode)", probeVXLAN},
}

// probeFeatures runs every feature probe in one throwaway namespace.
func probeFeatures(ctx context.Context) ([]Feature, error) {
	s, err := newScratchNS()
	if err != nil {
		return nil, err
	}
	defer s.close()
	out := make([]Feature, 0, len(featureProbes))
	for _, p := range featureProbes {
		f := Feature{Name: p.name, Modules: p.modules, Need: p.need, What: p.what}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := p.probe(s); err != nil {
			f.Err = err.Error()
		}
		out = append(out, f)
	}
	return out, nil
}

// nftConn opens a netlink connection into the scratch namespace.
func (s *scratchNS) nftConn() (*nftables.Conn, error) {
	return nftables.New(nftables.WithNetNSFd(int(s.h)))
}

// nftProbe builds a table named after the probe with build, commits it, and
// deletes it again. Each probe has its own table so one missing feature
// does not hide the others.
func nftProbe(s *scratchNS, family nftables.TableFamily, build func(c *nftables.Conn, t *nftables.Table) error) error {
	c, err := s.nftConn()
	if err != nil {
		return fmt.Errorf("nftables netlink: %w", err)
	}
	defer c.CloseLasting()
	t := c.AddTable(&nftables.Table{Name: "calico-probe", Family: family})
	if err := build(c, t); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete probe table: %w", err)
	}
	return nil
}

// hook is the base chain a probe's rule sits in.
type hook struct {
	name string
	num  *nftables.ChainHook
	typ  nftables.ChainType
	prio *nftables.ChainPriority
}

var (
	forwardFilter    = hook{"forward", nftables.ChainHookForward, nftables.ChainTypeFilter, nftables.ChainPriorityFilter}
	preroutingRaw    = hook{"prerouting", nftables.ChainHookPrerouting, nftables.ChainTypeFilter, nftables.ChainPriorityRaw}
	preroutingNAT    = hook{"prerouting", nftables.ChainHookPrerouting, nftables.ChainTypeNAT, nftables.ChainPriorityNATDest}
	preroutingFilter = hook{"prerouting", nftables.ChainHookPrerouting, nftables.ChainTypeFilter, nftables.ChainPriorityFilter}
	postroutingNAT   = hook{"postrouting", nftables.ChainHookPostrouting, nftables.ChainTypeNAT, nftables.ChainPriorityNATSource}
)

// ruleProbe commits an inet table with one base chain on h and one rule:
// build adds what the rule needs (sets, chains) and returns its expressions.
func ruleProbe(s *scratchNS, h hook, build func(c *nftables.Conn, t *nftables.Table) ([]expr.Any, error)) error {
	return nftProbe(s, nftables.TableFamilyINet, func(c *nftables.Conn, t *nftables.Table) error {
		ch := c.AddChain(&nftables.Chain{Name: h.name, Table: t, Hooknum: h.num, Priority: h.prio, Type: h.typ})
		exprs, err := build(c, t)
		if err != nil {
			return err
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
		return nil
	})
}

// rule is a ruleProbe build for a rule that needs nothing else.
func rule(exprs ...expr.Any) func(*nftables.Conn, *nftables.Table) ([]expr.Any, error) {
	return func(*nftables.Conn, *nftables.Table) ([]expr.Any, error) { return exprs, nil }
}

// ipv4Only is "meta nfproto ipv4" in an inet table.
func ipv4Only(then ...expr.Any) []expr.Any {
	return append([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}, then...)
}

var accept = &expr.Verdict{Kind: expr.VerdictAccept}

func ifname(s string) []byte {
	b := make([]byte, 16)
	copy(b, s)
	return b
}

func probeNFTBase(s *scratchNS) error {
	// iifname "cali*" meta l4proto tcp th dport 80-90 meta mark & 0x10000 == 0 accept
	return ruleProbe(s, forwardFilter, rule(
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("cali")[:4]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{0, 80}, ToData: []byte{0, 90}},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{0, 1, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}},
		accept,
	))
}

func probeNFTVmap(s *scratchNS) error {
	return ruleProbe(s, forwardFilter, func(c *nftables.Conn, t *nftables.Table) ([]expr.Any, error) {
		c.AddChain(&nftables.Chain{Name: "fw-probe", Table: t})
		m := &nftables.Set{Table: t, Name: "fw-map", KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict, IsMap: true}
		if err := c.AddSet(m, []nftables.SetElement{{Key: ifname("caliprobe0"), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: "fw-probe"}}}); err != nil {
			return nil, err
		}
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		}, nil
	})
}

func probeNFTInterval(s *scratchNS) error {
	return ruleProbe(s, forwardFilter, func(c *nftables.Conn, t *nftables.Table) ([]expr.Any, error) {
		s4 := &nftables.Set{Table: t, Name: "s4", KeyType: nftables.TypeIPAddr, Interval: true}
		if err := c.AddSet(s4, []nftables.SetElement{
			{Key: []byte{10, 65, 0, 0}}, {Key: []byte{10, 65, 1, 0}, IntervalEnd: true},
		}); err != nil {
			return nil, err
		}
		s6 := &nftables.Set{Table: t, Name: "s6", KeyType: nftables.TypeIP6Addr, Interval: true}
		a := netip.MustParseAddr("fd00:65::").As16()
		b := netip.MustParseAddr("fd00:66::").As16()
		if err := c.AddSet(s6, []nftables.SetElement{{Key: a[:]}, {Key: b[:], IntervalEnd: true}}); err != nil {
			return nil, err
		}
		return ipv4Only(
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: s4.Name, SetID: s4.ID},
			accept,
		), nil
	})
}

func probeNFTConcat(s *scratchNS) error {
	return ruleProbe(s, preroutingRaw, func(c *nftables.Conn, t *nftables.Table) ([]expr.Any, error) {
		key := nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr)
		hash := &nftables.Set{Table: t, Name: "spoof4", KeyType: key, Concatenation: true}
		k := append(ifname("caliprobe0"), 10, 65, 0, 1)
		if err := c.AddSet(hash, []nftables.SetElement{{Key: k}}); err != nil {
			return nil, err
		}
		ivl := &nftables.Set{Table: t, Name: "spoof4net", KeyType: key, Concatenation: true, Interval: true}
		end := append(ifname("caliprobe0"), 10, 65, 0, 255)
		if err := c.AddSet(ivl, []nftables.SetElement{{Key: k, KeyEnd: end}}); err != nil {
			return nil, err
		}
		return ipv4Only(
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Payload{DestRegister: 2 /* the 16-byte register after the ifname's */, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: ivl.Name, SetID: ivl.ID},
			accept,
		), nil
	})
}

func probeNFTCt(s *scratchNS) error {
	return ruleProbe(s, forwardFilter, rule(
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryLE(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		accept,
	))
}

func binaryLE(v uint32) []byte {
	return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

func probeNFTMasq(s *scratchNS) error {
	return ruleProbe(s, postroutingNAT, rule(&expr.Masq{}))
}

func probeNFTLog(s *scratchNS) error {
	return ruleProbe(s, forwardFilter, rule(&expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte("calico-probe ")}))
}

func probeNFTDnat(s *scratchNS) error {
	return ruleProbe(s, preroutingNAT, rule(ipv4Only(
		&expr.Immediate{Register: 1, Data: []byte{10, 65, 0, 1}},
		&expr.Immediate{Register: 2, Data: []byte{0, 80}},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
	)...))
}

func probeNFTFib(s *scratchNS) error {
	return ruleProbe(s, preroutingFilter, rule(
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryLE(unix.RTN_LOCAL)},
		accept,
	))
}

// probeDriver runs the node's own nftables driver against a sample desired
// state that uses every construct the driver emits: endpoint dispatch,
// profile and policy chains, selector sets of both families, ports,
// anti-spoofing and natOutgoing.
func probeDriver(s *scratchNS) error {
	d, err := nft.New(nft.Options{NetNS: s.path(), Logger: discardLogger()})
	if err != nil {
		return err
	}
	defer d.Close()
	d.SetDesired(sampleDesired())
	if _, err := d.Apply(context.Background()); err != nil {
		return err
	}
	return nil
}

func sampleDesired() *dataplane.Desired {
	tcp := uint8(6)
	p := netip.MustParsePrefix
	return &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{{
			ID: "probe/ep", Iface: "caliprobe0",
			Addrs:           []netip.Prefix{p("10.65.0.1/32"), p("fd00:65::1/128")},
			IngressPolicies: []string{"gnp:probe"}, Profiles: []string{"profile:probe"},
		}},
		Chains: []dataplane.PolicyChain{
			{ID: "gnp:probe", Ingress: []dataplane.Rule{
				{Action: dataplane.Allow, Protocol: &tcp, Src: dataplane.Match{Sets: []string{"set:probe"}}, Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 80, Last: 80}, {First: 8000, Last: 8080}}}},
				{Action: dataplane.Pass},
			}},
			{ID: "profile:probe", Ingress: []dataplane.Rule{{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{"set:probe"}}}},
				Egress: []dataplane.Rule{{Action: dataplane.Allow}}},
		},
		Sets: []dataplane.IPSet{{ID: "set:probe", Selector: "probe == 'yes'",
			Members: []netip.Prefix{p("10.65.0.1/32"), p("10.66.0.0/24"), p("fd00:65::1/128")}}},
		NAT:  dataplane.NATConfig{MasqueradePools: []netip.Prefix{p("10.65.0.0/16")}, AllPools: []netip.Prefix{p("10.65.0.0/16")}},
		Host: dataplane.HostConfig{EndpointToHostAction: "Drop", InterfacePrefix: "cali"},
	}
}

func probeVeth(s *scratchNS) error {
	h, err := netlink.NewHandleAt(s.h)
	if err != nil {
		return err
	}
	defer h.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}, PeerName: "probe1"}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth pair: %w", err)
	}
	return h.LinkDel(v)
}

func probeRouteProto(s *scratchNS) error {
	h, err := netlink.NewHandleAt(s.h)
	if err != nil {
		return err
	}
	defer h.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}, PeerName: "probe1"}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth pair: %w", err)
	}
	defer func() { _ = h.LinkDel(v) }()
	link, err := h.LinkByName("probe0")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(link); err != nil {
		return err
	}
	const proto = 80
	want := []*netlink.Route{
		{Dst: &net.IPNet{IP: net.IPv4(10, 65, 0, 1).To4(), Mask: net.CIDRMask(32, 32)}, LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK, Protocol: proto},
		{Dst: &net.IPNet{IP: net.IPv4(10, 65, 1, 0).To4(), Mask: net.CIDRMask(26, 32)}, Type: unix.RTN_BLACKHOLE, Protocol: proto},
	}
	for _, r := range want {
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("add route %s proto %d: %w", r.Dst, proto, err)
		}
	}
	got, err := nsexec.RetryValue(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: proto}, netlink.RT_FILTER_PROTOCOL)
	})
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	if len(got) != len(want) {
		return fmt.Errorf("read back %d routes with protocol %d, want %d", len(got), proto, len(want))
	}
	return nil
}

func probeVXLAN(s *scratchNS) error {
	h, err := netlink.NewHandleAt(s.h)
	if err != nil {
		return err
	}
	defer h.Close()
	v := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "probe-vx"}, VxlanId: 4096, Port: 4789, Learning: false}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("add vxlan device: %w", err)
	}
	return h.LinkDel(v)
}

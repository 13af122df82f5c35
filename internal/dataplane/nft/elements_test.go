package nft

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"

	"github.com/calico-docker/calico/internal/dataplane"
)

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		fam  int
		want []string
	}{
		{[]string{"10.0.0.1/32", "10.0.0.2/32"}, 4, []string{"10.0.0.1", "10.0.0.2"}}, // adjacent stay apart
		{[]string{"10.0.0.0/24", "10.0.0.7/32", "10.0.1.0/24"}, 4, []string{"10.0.0.0/24", "10.0.1.0/24"}},
		{[]string{"10.0.0.7/32", "10.0.0.0/24"}, 4, []string{"10.0.0.0/24"}},
		{[]string{"0.0.0.0/0", "10.0.0.1/32"}, 4, []string{"0.0.0.0/0"}},
		{[]string{"255.255.255.255/32", "fd00::1/128"}, 4, []string{"255.255.255.255"}},
		{[]string{"fd00::/64", "fd00::1/128", "10.0.0.1/32"}, 6, []string{"fd00::/64"}},
		{[]string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"}, 6, []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"}},
	} {
		var got []string
		for _, r := range ranges(pfx(tc.in...), tc.fam) {
			got = append(got, rangeText(r))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ranges(%v, %d) = %v, want %v", tc.in, tc.fam, got, tc.want)
		}
	}
	// A range that is not one prefix renders as first-last.
	r := addrRange{start: []byte{10, 0, 0, 1}, end: []byte{10, 0, 0, 4}}
	if got := rangeText(r); got != "10.0.0.1-10.0.0.3" {
		t.Errorf("rangeText = %s", got)
	}
}

func TestPortRanges(t *testing.T) {
	got := portRanges([]dataplane.PortRange{{First: 90, Last: 80}, {First: 81, Last: 81}, {First: 91, Last: 95}, {First: 443, Last: 443}})
	want := []dataplane.PortRange{{First: 80, Last: 95}, {First: 443, Last: 443}}
	if !slices.Equal(got, want) {
		t.Errorf("portRanges = %v, want %v", got, want)
	}
}

// The kernel lists an rbtree interval set as start elements and separate
// interval-end elements, in no promised order; they must pair back up.
func TestElemsFromKernelPairsIntervals(t *testing.T) {
	a := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	kernel := []nftables.SetElement{
		{Key: a("10.0.0.3"), IntervalEnd: true},
		{Key: a("10.0.0.2")},
		{Key: a("10.0.0.2"), IntervalEnd: true},
		{Key: a("10.0.0.1")},
		{Key: a("255.255.255.0")}, // open range to the top
	}
	got := typeIP4.sortedElemTexts(elemsFromKernel(typeIP4, kernel))
	want := []string{"10.0.0.1", "10.0.0.2", "255.255.255.0/24"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if !slices.Equal(typeIP4.sortedElemTexts(ipElems(pfx("10.0.0.1/32", "10.0.0.2/32", "255.255.255.0/24"), 4)), want) {
		t.Error("our own elements of the same prefixes differ")
	}
}

func TestRuleFamilies(t *testing.T) {
	tcp, icmp6 := u8(6), u8(58)
	for _, tc := range []struct {
		r    dataplane.Rule
		want []int
	}{
		{dataplane.Rule{Action: dataplane.Allow}, []int{0}},
		{dataplane.Rule{Action: dataplane.Allow, Protocol: tcp}, []int{0}},
		{dataplane.Rule{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{"s"}}}, []int{4, 6}},
		{dataplane.Rule{Action: dataplane.Allow, IPVersion: 6, Src: dataplane.Match{Nets: pfx("10.0.0.0/8")}}, []int{6}},
		{dataplane.Rule{Action: dataplane.Allow, Protocol: icmp6, Dst: dataplane.Match{NotNets: pfx("fd00::/8")}}, []int{6}},
	} {
		if got := ruleFamilies(&tc.r); !slices.Equal(got, tc.want) {
			t.Errorf("ruleFamilies(%+v) = %v, want %v", tc.r, got, tc.want)
		}
	}
	// An IPv6 rule whose nets are all IPv4 can never match: no rule at all.
	rs, problems := compileRules([]dataplane.Rule{{Action: dataplane.Allow, IPVersion: 6, Src: dataplane.Match{Nets: pfx("10.0.0.0/8")}}}, "pi-x")
	if len(rs) != 0 || len(problems) != 0 {
		t.Errorf("got %d rules, problems %v", len(rs), problems)
	}
	// Ports without a port protocol are a contract violation, reported.
	_, problems = compileRules([]dataplane.Rule{{Action: dataplane.Allow, Protocol: u8(1), Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 1, Last: 1}}}}}, "pi-x")
	if len(problems) != 1 {
		t.Errorf("problems = %v", problems)
	}
}

// Endpoints with the same lists share chains; a missing policy or set is
// reported and replaced by an empty one so the batch still applies.
func TestCompileSharingAndProblems(t *testing.T) {
	d := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{
			{ID: "a", Iface: "cali1", Profiles: []string{"profile:p"}},
			{ID: "b", Iface: "cali2", Profiles: []string{"profile:p"}},
			{ID: "c", Iface: "cali2", Profiles: []string{"profile:p"}},
			{ID: "d", Iface: "cali3", IngressPolicies: []string{"policy:gone"}},
		},
		Chains: []dataplane.PolicyChain{{ID: "profile:p", Ingress: []dataplane.Rule{{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{"s-gone"}}}}}},
	}
	m := compile(d, nil)
	if m.endpoints != 3 {
		t.Errorf("endpoints = %d", m.endpoints)
	}
	fw := endpointChainName(nil, []string{"profile:p"}, false)
	if m.chains[fw] == nil || len(m.sets[fwMap].content.elems) != 3 {
		t.Errorf("expected one shared chain %s and three dispatch elements", fw)
	}
	if len(m.problems) != 3 {
		t.Errorf("problems = %q", m.problems)
	}
	if m.chains[policyChainName("policy:gone", true)] == nil || m.sets[ipSetName("s-gone", 4)] == nil {
		t.Error("missing policy chain or set not stood in for")
	}
}

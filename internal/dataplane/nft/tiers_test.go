package nft

import (
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

// The rule text of a tiered endpoint chain: each tier ends with an accept
// test and, unless it passes by default, a drop of what no policy passed;
// the pass bit is cleared between tiers.
func TestTieredEndpointChainText(t *testing.T) {
	pols := []string{"gnp:sec.a", "gnp:sec.b", "gnp:allow"}
	tiers := []dataplane.EndpointTier{{Name: "sec", Policies: 2, DefaultPass: true}, {Name: "default", Policies: 1}}
	var lines []string
	for _, r := range endpointChain(pols, tiers, []string{"profile:p"}, true) {
		lines = append(lines, r.text)
	}
	want := []string{
		"meta mark set meta mark & 0xfffcffff",
		"jump " + policyChainName("gnp:sec.a", true),
		"meta mark & 0x00030000 == 0x00000000 jump " + policyChainName("gnp:sec.b", true),
		"meta mark & 0x00010000 == 0x00010000 accept",
		"meta mark set meta mark & 0xfffdffff",
		"jump " + policyChainName("gnp:allow", true),
		"meta mark & 0x00010000 == 0x00010000 accept",
		"meta mark & 0x00020000 == 0x00000000 drop",
		"jump " + policyChainName("profile:p", true),
		"meta mark & 0x00010000 == 0x00010000 accept",
		"drop",
	}
	if got := strings.Join(lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	// Without tiers it is the plain chain; tiers change the chain's name.
	if tieredChainName(pols, nil, nil, true) != endpointChainName(pols, nil, true) ||
		tieredChainName(pols, tiers, nil, true) == endpointChainName(pols, nil, true) {
		t.Error("chain names")
	}
	// Tiers that do not account for every policy: the rest deny by default.
	spans, pass := tierSpans(pols, tiers[:1])
	if len(spans) != 2 || len(spans[1]) != 1 || pass[1] {
		t.Errorf("spans %v %v", spans, pass)
	}
}

package nft

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Flow logs (Desired.FlowLogs): when on, the first packet of a connection
// that a policy or profile rule allows or denies, and every packet dropped
// at the end of an endpoint chain, is also sent to NFLOG group
// FlowLogGroup with a prefix that names the rule, at most FlowLogRate
// packets a second per rule (a separate rule "match... limit ... log"
// before the deciding one, so the limit never changes a verdict).
//
// Prefixes (see ParseFlowPrefix):
//
//	"cflow A <chain> <i>"   Allow rule i of policy chain <chain> (pi-/pe-)
//	"cflow D <chain> <i>"   Deny rule i
//	"cflow E <fw|tw> pol"   dropped at the end of an endpoint's policies
//	"cflow E <fw|tw> end"   dropped at the end of its profiles (or with
//	                        neither policy nor profile)
const (
	FlowLogGroup = 20
	FlowLogRate  = 100 // packets a second, per rule; burst twice that
	flowPrefix   = "cflow"
)

// actionFlowLog is compileRule's internal action for the log twin of a
// rule: the same match, then limit and log, no verdict.
const actionFlowLog dataplane.Action = "flow-log"

// PolicyChainName is the kernel name of a policy chain (pi-<hash> for its
// ingress rules, pe-<hash> for egress), as flow log prefixes carry it.
func PolicyChainName(id string, ingress bool) string { return policyChainName(id, ingress) }

// FlowPrefix is one parsed flow log prefix.
type FlowPrefix struct {
	// Action is "Allow", "Deny" (a rule), or "EndOfPolicies" / "EndOfProfiles".
	Action string
	// Chain is the kernel policy chain name (pi-/pe-) for a rule.
	Chain string
	Rule  int
	// Ingress is set for the to-workload side (tw- chains, pi- chains).
	Ingress bool
}

// ParseFlowPrefix reads a prefix written by this package.
func ParseFlowPrefix(s string) (FlowPrefix, bool) {
	f := strings.Fields(strings.TrimRight(s, "\x00 "))
	if len(f) != 4 || f[0] != flowPrefix {
		return FlowPrefix{}, false
	}
	switch f[1] {
	case "A", "D":
		i, err := strconv.Atoi(f[3])
		if err != nil {
			return FlowPrefix{}, false
		}
		p := FlowPrefix{Action: "Allow", Chain: f[2], Rule: i, Ingress: strings.HasPrefix(f[2], "pi-")}
		if f[1] == "D" {
			p.Action = "Deny"
		}
		return p, true
	case "E":
		p := FlowPrefix{Action: "EndOfProfiles", Rule: -1, Ingress: f[2] == "tw"}
		if f[3] == "pol" {
			p.Action = "EndOfPolicies"
		}
		return p, true
	}
	return FlowPrefix{}, false
}

// flowLog adds "limit rate ... log group ... prefix ...".
func (b *builder) flowLog(prefix string) {
	b.wf("limit rate %d/second burst %d packets log prefix %q group %d", FlowLogRate, 2*FlowLogRate, prefix, FlowLogGroup)
	b.e(&expr.Limit{Type: expr.LimitTypePkts, Rate: FlowLogRate, Unit: expr.LimitTimeSecond, Burst: 2 * FlowLogRate},
		&expr.Log{Key: 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_GROUP, Group: FlowLogGroup, Data: []byte(prefix)})
}

// setFlowLogs records whether flow logs are on; a change drops the cached
// policy and endpoint chains so they are compiled again.
func (c *cache) setFlowLogs(on bool) {
	if c.flowLogs == on {
		return
	}
	c.flowLogs = on
	c.pols = map[string]*polEntry{}
	c.epChains = map[string]*epChainEntry{}
}

// compileRules is compileRules with the flow log twins when flow logs are on.
func (c *cache) compileRules(rs []dataplane.Rule, chain string) ([]rule, []string) {
	if !c.flowLogs {
		return compileRules(rs, chain)
	}
	return compileRulesFlow(rs, chain)
}

func compileRulesFlow(rs []dataplane.Rule, chain string) (out []rule, problems []string) {
	for i := range rs {
		r := &rs[i]
		if r.Action == dataplane.Allow || r.Action == dataplane.Deny {
			twin := *r
			twin.Action = actionFlowLog
			letter := "A"
			if r.Action == dataplane.Deny {
				letter = "D"
			}
			prefix := fmt.Sprintf("%s %s %s %d", flowPrefix, letter, chain, i)
			for _, fam := range ruleFamilies(&twin) {
				if rl, ok, _ := compileRule(&twin, fam, prefix); ok {
					rl.src = i
					out = append(out, rl)
				}
			}
		}
		rl, p := compileRules(rs[i:i+1], chain)
		for j := range rl {
			rl[j].src = i
		}
		for _, x := range p {
			problems = append(problems, strings.Replace(x, " rule 0:", fmt.Sprintf(" rule %d:", i), 1))
		}
		out = append(out, rl...)
	}
	return out, problems
}

// endpointChain is endpointChain with a flow log rule before each of its
// policy-end and chain-end drops when flow logs are on.
func (c *cache) endpointChain(pols []string, tiers []dataplane.EndpointTier, profiles []string, ingress bool) func() []rule {
	if !c.flowLogs {
		return func() []rule { return endpointChain(pols, tiers, profiles, ingress) }
	}
	return func() []rule { return endpointChainFlow(pols, tiers, profiles, ingress) }
}

// endpointChainFlow logs before each end-of-tier drop ("pol") and the
// chain's final drop ("end").
func endpointChainFlow(pols []string, tiers []dataplane.EndpointTier, profiles []string, ingress bool) []rule {
	dir := "fw"
	if ingress {
		dir = "tw"
	}
	polEnd := rules(func(b *builder) { b.markTest(markPass, 0); b.verdict(expr.VerdictDrop, "") })[0].text
	end := rules(func(b *builder) { b.verdict(expr.VerdictDrop, "") })[0].text
	var out []rule
	for _, r := range endpointChain(pols, tiers, profiles, ingress) {
		switch r.text {
		case polEnd:
			out = append(out, rules(func(b *builder) {
				b.markTest(markPass, 0)
				b.flowLog(fmt.Sprintf("%s E %s pol", flowPrefix, dir))
			})...)
		case end:
			out = append(out, rules(func(b *builder) { b.flowLog(fmt.Sprintf("%s E %s end", flowPrefix, dir)) })...)
		}
		out = append(out, r)
	}
	return out
}

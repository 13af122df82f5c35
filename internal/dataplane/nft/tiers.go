package nft

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables/expr"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Tiered endpoint chains (dataplane.Endpoint.IngressTiers/EgressTiers).
// An endpoint chain with tiers evaluates each tier's policies as
// endpointChain evaluates its one list: the first policy to set the accept
// or pass mark ends the tier; accept ends the evaluation allowed; at the end
// of a tier the pass bit is cleared and the next tier begins, unless no
// policy passed and the tier denies by default, which drops. Past the last
// tier, the control-plane rules and the profiles follow as in endpointChain.

func tierSignature(tiers []dataplane.EndpointTier) string {
	var sb strings.Builder
	sb.WriteByte(2)
	for _, t := range tiers {
		fmt.Fprintf(&sb, "%s/%d/%t;", t.Name, t.Policies, t.DefaultPass)
	}
	return sb.String()
}

// tieredChainName is endpointChainName for lists split into tiers.
func tieredChainName(pols []string, tiers []dataplane.EndpointTier, profiles []string, ingress bool) string {
	if tiers == nil {
		return endpointChainName(pols, profiles, ingress)
	}
	return endpointChainName(append(slices.Clone(pols), tierSignature(tiers)), profiles, ingress)
}

func tieredChainComment(pols []string, tiers []dataplane.EndpointTier, profiles []string, ingress bool) string {
	if tiers == nil {
		return endpointChainComment(pols, profiles, ingress)
	}
	var parts []string
	i := 0
	for _, t := range tiers {
		end := min(i+t.Policies, len(pols))
		action := "deny"
		if t.DefaultPass {
			action = "pass"
		}
		parts = append(parts, fmt.Sprintf("tier %s (%s) [%s]", t.Name, action, strings.Join(pols[i:end], " ")))
		i = end
	}
	dir := "from workload: egress"
	if ingress {
		dir = "to workload: ingress"
	}
	return fmt.Sprintf("%s %s, profiles [%s]", dir, strings.Join(parts, ", "), strings.Join(profiles, " "))
}

// tierSpans splits pols by tiers; policies the tiers do not account for
// (a broken contract) form a last tier that denies by default.
func tierSpans(pols []string, tiers []dataplane.EndpointTier) (spans [][]string, pass []bool) {
	i := 0
	for _, t := range tiers {
		n := max(t.Policies, 0)
		end := min(i+n, len(pols))
		if end > i {
			spans = append(spans, pols[i:end])
			pass = append(pass, t.DefaultPass)
		}
		i = end
	}
	if i < len(pols) {
		spans = append(spans, pols[i:])
		pass = append(pass, false)
	}
	return spans, pass
}

// endpointChain compiles a fw- chain (ingress false: traffic from a
// workload, judged by its egress policies) or a tw- chain (ingress true).
//
// Policies are evaluated in order until one sets the accept or pass mark;
// accept ends the evaluation allowed (fw returns to the forward chain so the
// destination's ingress is judged next; tw accepts), no verdict at the end of
// the list drops, pass moves on to the profiles. Profiles likewise; their end
// drops. fw chains rely on the base chain having cleared the mark bits (it
// needs them cleared to spot unknown interfaces); tw chains clear them
// because the fw chain of the sender set them.
//
// With tiers, the policies are split into them (tierSpans): the end of a
// tier drops unless its default action is Pass, and a new tier forgets the
// previous tier's pass. Without tiers, all policies form one tier that
// denies by default.
func endpointChain(pols []string, tiers []dataplane.EndpointTier, profiles []string, ingress bool) []rule {
	allow := expr.VerdictReturn
	if ingress {
		allow = expr.VerdictAccept
	}
	var out []rule
	add := func(f func(b *builder)) {
		b := &builder{}
		f(b)
		out = append(out, b.rule())
	}
	if ingress && len(pols)+len(profiles) > 0 {
		add(func(b *builder) { b.markClear() })
	}
	for _, f := range tierEvalRules(pols, tiers, ingress, func(b *builder) { b.verdict(allow, "") }, true) {
		add(f)
	}
	if !ingress && len(profiles) > 0 {
		// Past the policies, before the profiles: only a policy's
		// explicit Allow opens the control plane.
		out = append(out, controlPlaneRules()...)
	}
	for i, id := range profiles {
		add(func(b *builder) {
			if i > 0 {
				b.markTest(markAccept, 0)
			}
			b.verdict(expr.VerdictJump, policyChainName(id, ingress))
		})
	}
	if len(profiles) > 0 {
		add(func(b *builder) { b.markTest(markAccept, markAccept); b.verdict(allow, "") })
	}
	add(func(b *builder) { b.verdict(expr.VerdictDrop, "") })
	return out
}

// tierEvalRules evaluate pols split into tiers (tierSpans), for endpoint
// and host endpoint chains alike: in a tier, policies are jumped to in
// order until one sets the accept or pass mark; accept ends the evaluation
// with allowed; a new tier forgets the previous tier's pass. When
// tierEndDrops is set, the end of a tier with no pass and no default Pass
// drops; otherwise (untracked and pre-DNAT host chains) the packet goes on
// to the next tier, and past the last one to what follows these rules.
func tierEvalRules(pols []string, tiers []dataplane.EndpointTier, ingress bool, allowed func(b *builder), tierEndDrops bool) []func(b *builder) {
	var fs []func(b *builder)
	spans, pass := tierSpans(pols, tiers)
	for ti, span := range spans {
		if ti > 0 {
			// A new tier: forget the previous tier's pass.
			fs = append(fs, func(b *builder) { b.markSet(^uint32(markPass), 0, fmt.Sprintf("& 0x%08x", ^uint32(markPass))) })
		}
		for i, id := range span {
			fs = append(fs, func(b *builder) {
				if i > 0 {
					b.markTest(markAccept|markPass, 0)
				}
				b.verdict(expr.VerdictJump, policyChainName(id, ingress))
			})
		}
		fs = append(fs, func(b *builder) { b.markTest(markAccept, markAccept); allowed(b) })
		if tierEndDrops && !pass[ti] {
			fs = append(fs, func(b *builder) { b.markTest(markPass, 0); b.verdict(expr.VerdictDrop, "") })
		}
	}
	return fs
}

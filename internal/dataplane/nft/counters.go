package nft

import (
	"context"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// counter counts the packets and bytes that matched the rule up to here
// (every policy and profile rule has one, just before its verdict; see
// RuleCounters).
func (b *builder) counter() {
	b.w("counter")
	b.e(&expr.Counter{})
}

// RuleCounter is how many packets and bytes one rule of a policy or
// profile chain has matched since it was last written (a rewritten chain
// starts again from zero).
type RuleCounter struct {
	// Chain is the dataplane.PolicyChain ID ("gnp:x", "policy:ns/x", "profile:x").
	Chain string
	// Ingress: the chain's ingress rules; else its egress rules.
	Ingress bool
	// Rule is the index in PolicyChain.Ingress or .Egress (a rule emitted
	// for both IP families counts both).
	Rule    int
	Action  string
	Packets uint64
	Bytes   uint64
}

// RuleCounters reads the counters of every policy and profile rule that
// the last Apply programmed. It reads each policy chain from the kernel
// (one dump per chain) and maps its rules back through their comments;
// rules that do not carry the expected comment (drift not yet repaired)
// are skipped.
func (d *Driver) RuleCounters(ctx context.Context) ([]RuleCounter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lib == nil {
		return nil, fmt.Errorf("nft driver closed")
	}
	var out []RuleCounter
	for id, e := range d.cache.pols {
		for _, side := range []struct {
			c       *chainModel
			ingress bool
			n       int
		}{{e.pi, true, len(e.pc.Ingress)}, {e.pe, false, len(e.pc.Egress)}} {
			if side.n == 0 || side.c == nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			krs, err := d.lib.GetRules(ourTable, &nftables.Chain{Name: side.c.name, Table: ourTable})
			if err != nil {
				return nil, fmt.Errorf("read rules of chain %s: %w", side.c.name, err)
			}
			model := side.c.compiled()
			per := make([]RuleCounter, side.n)
			for j, kr := range krs {
				if j >= len(model) || commentOf(kr.UserData) != side.c.hashes[j] {
					continue
				}
				src := model[j].src
				if src < 0 || src >= side.n {
					continue
				}
				for _, x := range kr.Exprs {
					if c, ok := x.(*expr.Counter); ok {
						per[src].Packets += c.Packets
						per[src].Bytes += c.Bytes
					}
				}
			}
			rules := e.pc.Egress
			if side.ingress {
				rules = e.pc.Ingress
			}
			for i := range per {
				per[i].Chain, per[i].Ingress, per[i].Rule, per[i].Action = id, side.ingress, i, string(rules[i].Action)
			}
			out = append(out, per...)
		}
	}
	return out, nil
}

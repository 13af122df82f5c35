package nft

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Host endpoints (dataplane.HostProtection): the host's own interfaces.
// Nothing here exists while no host endpoint is local, so the table is the
// same as without this feature until the first HostEndpoint.
//
//   - Base chains, each skipping workload interfaces (prefix "cali"), "lo"
//     and vxlan.calico, and each dispatching through a verdict map keyed by
//     interface name (every named host endpoint is in every map, so a named
//     endpoint always wins over "*"), then sending any other interface to
//     the "*" endpoint's chain when there is one:
//     "host-raw-pre" (filter, prerouting, -305: before conntrack) and
//     "host-raw-out" (filter, output, -305): untracked policy, maps
//     "hep-raw-in"/"hep-raw-out"; both first clear mark bit 0x80000.
//     "host-prednat" (filter, prerouting, -110: before every DNAT, ours at
//     dstnat and Docker's nat PREROUTING, iptables-nft or legacy, both at
//     -100), map "hep-prednat": pre-DNAT policy of new connections.
//     "host-in" (filter, input, 5) and "host-out" (filter, output, 5),
//     maps "hep-in"/"hep-out": traffic to and from the host itself.
//     "host-fwd-in" (filter, forward, -6) and "host-fwd-out" (filter,
//     forward, -5), maps "hep-fwd-in"/"hep-fwd-out": applyOnForward
//     policies of the interface a forwarded packet arrives on / leaves by.
//     All run after or apart from "forward" (-10, workload policy) and
//     before iptables' filter table (0).
//   - Host endpoints found by address (Iface "") are resolved to named
//     ones before compiling (hostaddrs.go).
//   - Per endpoint chains, shared by endpoints with the same lists:
//     "hu-<h>"/"hU-<h>" untracked in/out, "hd-<h>" pre-DNAT, "hi-<h>"/"ho-<h>"
//     host in/out, "hf-<h>"/"hF-<h>" forward in/out; h = 16 hex digits of
//     sha256 of the kind, lists and tiers. They jump to the same
//     "pi-"/"pe-" policy and profile chains as workload endpoints, tier by
//     tier (tierEvalRules).
//   - "host-fs-in"/"host-fs-out": the failsafe ports, one rule each, jumped
//     to first from the untracked, pre-DNAT and host chains.
//   - Mark bit 0x80000 (markHostAllowed): set when an untracked or pre-DNAT
//     policy allowed a packet; later host chains accept it unjudged (Calico:
//     an explicit untracked allow skips pre-DNAT and normal policy, a
//     pre-DNAT allow skips normal policy). Untracked allows also `notrack`.
//
// The host chains also always accept: established and related
// connections; ICMPv6 neighbour discovery; the cluster's control plane,
// i.e. a control-plane port (set cp-ports) of a node address (cp-addr4/6)
// as the remote end, so a wrong policy with failsafes switched off still
// does not cut BGP, etcd or VXLAN between nodes.
const (
	markHostAllowed uint32 = 0x80000

	chainHostRawPre = "host-raw-pre"
	chainHostRawOut = "host-raw-out"
	chainHostPreNAT = "host-prednat"
	chainHostIn     = "host-in"
	chainHostOut    = "host-out"
	chainHostFwdIn  = "host-fwd-in"
	chainHostFwdOut = "host-fwd-out"
	chainHostFSIn   = "host-fs-in"
	chainHostFSOut  = "host-fs-out"

	vxlanIface   = dataplane.VXLANDevice
	vxlanIfaceV6 = dataplane.VXLANDeviceV6
)

var (
	baseHostRawPre = &baseChain{hook: unix.NF_INET_PRE_ROUTING, prio: -305, typ: "filter", hookName: "prerouting"}
	baseHostRawOut = &baseChain{hook: unix.NF_INET_LOCAL_OUT, prio: -305, typ: "filter", hookName: "output"}
	baseHostPreNAT = &baseChain{hook: unix.NF_INET_PRE_ROUTING, prio: -110, typ: "filter", hookName: "prerouting"}
	baseHostIn     = &baseChain{hook: unix.NF_INET_LOCAL_IN, prio: 5, typ: "filter", hookName: "input"}
	baseHostOut    = &baseChain{hook: unix.NF_INET_LOCAL_OUT, prio: 5, typ: "filter", hookName: "output"}
	baseHostFwdIn  = &baseChain{hook: unix.NF_INET_FORWARD, prio: -6, typ: "filter", hookName: "forward"}
	baseHostFwdOut = &baseChain{hook: unix.NF_INET_FORWARD, prio: -5, typ: "filter", hookName: "forward"}
)

// hostKind is one of the seven places a host endpoint is judged.
type hostKind struct {
	base      string     // base chain
	bc        *baseChain // its hook
	vmap      string     // dispatch map
	prefix    string     // per endpoint chain name prefix
	out       bool       // matches the output interface
	ingress   bool       // policy direction (pi- or pe- chains)
	untracked bool
	prednat   bool
	host      bool // traffic to/from the host: profiles, default drop
	star      bool // the "*" endpoint takes part
	lists     func(e *dataplane.HostEndpoint) ([]string, []dataplane.EndpointTier)
	comment   string
}

var hostKinds = []hostKind{
	{base: chainHostRawPre, bc: baseHostRawPre, vmap: "hep-raw-in", prefix: "hu-", ingress: true, untracked: true,
		lists: func(e *dataplane.HostEndpoint) ([]string, []dataplane.EndpointTier) {
			return e.UntrackedIngress, e.UntrackedIngressTiers
		}, comment: "host endpoints: untracked ingress"},
	{base: chainHostRawOut, bc: baseHostRawOut, vmap: "hep-raw-out", prefix: "hU-", out: true, untracked: true,
		lists: func(e *dataplane.HostEndpoint) ([]string, []dataplane.EndpointTier) {
			return e.UntrackedEgress, e.UntrackedEgressTiers
		}, comment: "host endpoints: untracked egress"},
	{base: chainHostPreNAT, bc: baseHostPreNAT, vmap: "hep-prednat", prefix: "hd-", ingress: true, prednat: true, star: true,
		lists: func(e *dataplane.HostEndpoint) ([]string, []dataplane.EndpointTier) { return e.PreDNAT, e.PreDNATTiers }, comment: "host endpoints: pre-DNAT"},
	{base: chainHostIn, bc: baseHostIn, vmap: "hep-in", prefix: "hi-", ingress: true, host: true, star: true,
		lists: func(e *dataplane.HostEndpoint) ([]string, []dataplane.EndpointTier) { return e.Ingress, e.IngressTiers }, comment: "host endpoints: to the host"},
	{base: chainHostOut, bc: baseHostOut, vmap: "hep-out", prefix: "ho-", out: true, host: true, star: true,
		lists: func(e *dataplane.HostEndpoint) ([]string, []dataplane.EndpointTier) { return e.Egress, e.EgressTiers }, comment: "host endpoints: from the host"},
	{base: chainHostFwdIn, bc: baseHostFwdIn, vmap: "hep-fwd-in", prefix: "hf-", ingress: true, star: true,
		lists: func(e *dataplane.HostEndpoint) ([]string, []dataplane.EndpointTier) {
			return e.ForwardIngress, e.ForwardIngressTiers
		}, comment: "host endpoints: forwarded, arriving"},
	{base: chainHostFwdOut, bc: baseHostFwdOut, vmap: "hep-fwd-out", prefix: "hF-", out: true, star: true,
		lists: func(e *dataplane.HostEndpoint) ([]string, []dataplane.EndpointTier) {
			return e.ForwardEgress, e.ForwardEgressTiers
		}, comment: "host endpoints: forwarded, leaving"},
}

// hostChainName names the per endpoint chain of kind k for the lists.
func (k *hostKind) chainName(pols []string, tiers []dataplane.EndpointTier, profiles []string) string {
	var sb strings.Builder
	sb.WriteString(k.prefix)
	for _, p := range pols {
		sb.WriteString(p)
		sb.WriteByte(0)
	}
	if tiers != nil {
		sb.WriteString(tierSignature(tiers))
	}
	sb.WriteByte(1)
	for _, p := range profiles {
		sb.WriteString(p)
		sb.WriteByte(0)
	}
	return k.prefix + hashText(sb.String())
}

// compileHosts adds the host endpoint objects of d to m. referenced gets
// every policy chain ID the host chains jump to.
func compileHosts(d *dataplane.Desired, h hostSettings, addChain func(*chainModel), addSet func(*setModel), referenced func(id string)) {
	hp := &d.Hosts
	if len(hp.Endpoints) == 0 {
		return
	}
	var star *dataplane.HostEndpoint
	for i := range hp.Endpoints {
		if hp.Endpoints[i].Iface == "*" {
			star = &hp.Endpoints[i]
		}
	}
	fsIn, fsOut := hp.FailsafeIn, hp.FailsafeOut
	addChain(newChain(chainHostFSIn, "failsafe inbound ports", nil, func() []rule { return failsafeRules(fsIn, false) }))
	addChain(newChain(chainHostFSOut, "failsafe outbound ports", nil, func() []rule { return failsafeRules(fsOut, true) }))
	for i := range hostKinds {
		k := &hostKinds[i]
		made := map[string]bool{}
		// per endpoint chain of e, or "" when e needs none (the verdict
		// is then accept: nothing of this kind judges the interface).
		chainOf := func(e *dataplane.HostEndpoint) string {
			pols, tiers := k.lists(e)
			var profiles []string
			if k.host {
				profiles = e.Profiles
			}
			if !k.host && len(pols) == 0 {
				return ""
			}
			name := k.chainName(pols, tiers, profiles)
			if !made[name] {
				made[name] = true
				for _, id := range pols {
					referenced(id)
				}
				for _, id := range profiles {
					referenced(id)
				}
				kk := k
				comment := fmt.Sprintf("%s: policies [%s], profiles [%s]", k.comment, strings.Join(pols, " "), strings.Join(profiles, " "))
				if tiers != nil {
					comment += ", tiers " + tierSignature(tiers)[1:]
				}
				addChain(newChain(name, comment, nil,
					func() []rule { return hostEndpointChain(kk, pols, tiers, profiles) }))
			}
			return name
		}
		elems := elemSet{}
		for j := range hp.Endpoints {
			e := &hp.Endpoints[j]
			if e.Iface == "*" || e.Iface == "" || len(e.Iface) > 15 {
				continue // "": found by address, not resolved (Render)
			}
			v := "accept"
			if name := chainOf(e); name != "" {
				v = "goto " + name
			}
			elems.add(elem{key: ifnameKey(e.Iface), verdict: v})
		}
		starChain := ""
		if star != nil && k.star {
			starChain = chainOf(star)
		}
		addSet(&setModel{name: k.vmap, typ: typeDispatch, comment: k.comment, content: &setContent{elems: elems}})
		kk := k
		addChain(newChain(k.base, k.comment, k.bc, func() []rule { return hostBaseRules(kk, h, starChain) }))
	}
}

// hostBaseRules are the rules of kind k's base chain.
func hostBaseRules(k *hostKind, h hostSettings, starChain string) []rule {
	var fs []func(b *builder)
	if k.untracked {
		fs = append(fs, func(b *builder) {
			b.markSet(^markHostAllowed, 0, fmt.Sprintf("& 0x%08x", ^markHostAllowed))
		})
	}
	for _, skip := range []struct {
		name     string
		wildcard bool
	}{{h.prefix, true}, {"lo", false}, {vxlanIface, false}, {vxlanIfaceV6, false}} {
		fs = append(fs, func(b *builder) { b.ifname(k.out, skip.name, skip.wildcard, false); b.verdict(expr.VerdictAccept, "") })
	}
	if !k.untracked {
		fs = append(fs,
			func(b *builder) {
				b.ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, "established,related")
				b.verdict(expr.VerdictAccept, "")
			},
			func(b *builder) { b.markTest(markHostAllowed, markHostAllowed); b.verdict(expr.VerdictAccept, "") },
		)
	}
	fs = append(fs, func(b *builder) { b.ifnameVmap(k.out, k.vmap) })
	if starChain != "" {
		fs = append(fs, func(b *builder) { b.verdict(expr.VerdictGoto, starChain) })
	}
	return rules(fs...)
}

// hostEndpointChain is the per endpoint chain of kind k.
func hostEndpointChain(k *hostKind, pols []string, tiers []dataplane.EndpointTier, profiles []string) []rule {
	var fs []func(b *builder)
	if k.host {
		fs = append(fs, func(b *builder) { b.l4proto(58, false); b.icmp6Types(ndTypes); b.verdict(expr.VerdictAccept, "") })
		fs = append(fs, func(b *builder) { b.ctState(expr.CtStateBitINVALID, "invalid"); b.verdict(expr.VerdictDrop, "") })
		for _, fam := range []int{4, 6} {
			set := cpAddr4
			if fam == 6 {
				set = cpAddr6
			}
			fs = append(fs, func(b *builder) {
				b.nfproto(fam)
				b.setLookup(fam, k.out, false, set)
				b.protoPortLookup(cpPorts)
				b.verdict(expr.VerdictAccept, "")
			})
		}
	}
	// Failsafe ports first: policy cannot close them.
	if k.untracked || k.prednat || k.host {
		fs = append(fs, func(b *builder) {
			if k.ingress {
				b.verdict(expr.VerdictJump, chainHostFSIn)
			} else {
				b.verdict(expr.VerdictJump, chainHostFSOut)
			}
		})
	}
	fs = append(fs, func(b *builder) { b.markClear() })
	allowed := func(b *builder) {
		switch {
		case k.untracked:
			b.w("notrack")
			b.e(&expr.Notrack{})
			b.markOr(markHostAllowed)
		case k.prednat:
			b.markOr(markHostAllowed)
		}
		b.verdict(expr.VerdictAccept, "")
	}
	// Policies in tiers (tiers.go). Untracked and pre-DNAT: the end of a
	// tier does not drop, no verdict continues (return to the base chain,
	// whose policy accepts). Host and forward: the end of a tier that
	// neither passed nor passes by default drops.
	fs = append(fs, tierEvalRules(pols, tiers, k.ingress, allowed, !k.untracked && !k.prednat)...)
	if !k.host {
		// Forward: policies that apply but do not allow drop (a pass out
		// of the last tier too: forwarded traffic has no profiles).
		if !k.untracked && !k.prednat {
			fs = append(fs, func(b *builder) { b.verdict(expr.VerdictDrop, "") })
		}
		return rules(fs...)
	}
	for i, id := range profiles {
		fs = append(fs, func(b *builder) {
			if i > 0 {
				b.markTest(markAccept, 0)
			}
			b.verdict(expr.VerdictJump, policyChainName(id, k.ingress))
		})
	}
	if len(profiles) > 0 {
		fs = append(fs, func(b *builder) { b.markTest(markAccept, markAccept); b.verdict(expr.VerdictAccept, "") })
	}
	fs = append(fs, func(b *builder) { b.verdict(expr.VerdictDrop, "") })
	return rules(fs...)
}

// failsafeRules accept the failsafe ports: inbound (out false) by
// destination port of traffic to the host, Net matching the source;
// outbound by destination port, Net matching the destination.
func failsafeRules(ps []dataplane.FailsafePort, out bool) []rule {
	var fs []func(b *builder)
	for _, p := range ps {
		if p.Port == 0 || p.Protocol != 6 && p.Protocol != 17 && p.Protocol != 132 {
			continue
		}
		fs = append(fs, func(b *builder) {
			if p.Net.IsValid() {
				fam := 4
				if p.Net.Addr().Is6() {
					fam = 6
				}
				b.nfproto(fam)
				if p.Net.Bits() > 0 {
					b.addr(fam, out, false, []netip.Prefix{p.Net.Masked()})
				}
			}
			b.l4proto(p.Protocol, false)
			b.ports(true, false, []dataplane.PortRange{{First: p.Port, Last: p.Port}})
			b.verdict(expr.VerdictAccept, "")
		})
	}
	return rules(fs...)
}

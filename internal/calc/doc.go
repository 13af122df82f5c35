// Package calc turns datastore state into dataplane.Desired for one host: the
// reference function Compute (stateless, from a whole Snapshot) and Calculator
// (stateful, fed one change at a time, same answer, cheap per change).
//
// Semantics follow Calico's (projectcalico.org/v3 as Felix applies it):
//
//   - Endpoint labels: the labelsToApply of its existing profiles (when two
//     profiles set a key, the earlier profile in spec.profiles wins), then its
//     own metadata.labels, then projectcalico.org/namespace,
//     projectcalico.org/orchestrator and (if set) projectcalico.org/serviceaccount,
//     which always win.
//   - Policies of a local endpoint: GlobalNetworkPolicies and the
//     NetworkPolicies of its namespace whose selector matches (empty = all()),
//     sorted by order (missing = +Inf) then by name, where a NetworkPolicy's
//     name for this purpose is "<namespace>/<name>" (what Felix compares).
//     A policy applies in the directions listed in types; with no
//     recognised types, Calico's defaulting applies (Ingress, or Egress if it
//     has only egress rules, or both if it has both).
//   - Rule selectors in a NetworkPolicy are confined to its namespace as
//     soon as the side uses selector, notSelector or namespaceSelector:
//     selector S becomes (projectcalico.org/namespace == 'N') && (S); a side
//     with only notSelector gets the positive set
//     projectcalico.org/namespace == 'N'; notSelector itself is not confined.
//     A namespaceSelector replaces the namespace confinement; it is evaluated
//     against the namespace's labels, which here are only
//     projectcalico.org/name = <namespace> (there are no Namespace
//     resources); namespaceSelector global() selects no workload endpoint.
//     A serviceAccountSelector is evaluated against
//     projectcalico.org/name = <serviceAccountName> (Calico's pcsa. labels;
//     there are no ServiceAccount resources); a policy's
//     serviceAccountSelector all() selects only endpoints that have a
//     service account, as Calico rewrites it to
//     has(projectcalico.org/serviceaccount); like Calico, this also
//     rewrites an all() written in the policy's own selector (a
//     GlobalNetworkPolicy's namespaceSelector rewrites it to
//     has(projectcalico.org/namespace) instead). A rule side's serviceAccounts
//     is part of its selector (so it confines to the namespace too): names
//     become projectcalico.org/serviceaccount in {names}, ANDed with the
//     selector and with serviceAccounts.selector evaluated like a policy's
//     serviceAccountSelector (but all() matches everything). Endpoints
//     without spec.serviceAccountName match no names and no selector that
//     needs a label.
//   - Every selector used by a rule becomes one IPSet of the addresses of all
//     matching endpoints on every host, and of the nets of every matching
//     GlobalNetworkSet and NetworkSet (see netsets.go for how their labels
//     and namespaces are seen).
//   - Policies are grouped into tiers (spec.tier, default "default") and
//     tiers ordered and closed as Felix does (see tiers.go); staged
//     policies never reach calc. The set ID is "s-" plus the first 16
//     hex digits of the SHA-256 of the canonical selector text, so equal
//     selectors share a set.
//
// Rule invariants a driver may rely on:
//   - A rule whose Src/Dst Nets or NotNets is non-empty, or that has ICMP or
//     NotICMP, has IPVersion 4 or 6, and all its prefixes are of that family.
//     A Calico rule whose nets mix families is emitted as a v4 rule followed
//     by a v6 rule; a rule that cannot match any family (ipVersion 4 with only
//     IPv6 nets, protocol ICMP with ipVersion 6) is left out.
//   - Protocol ICMP implies IPVersion 4, ICMPv6 implies 6.
//   - Named ports (ports: ["http"]) resolve as Calico's rule scanner does:
//     one named-port set (IPSet.NamedPort) per distinct (selector of that
//     side, or all(); port name; rule protocol, or any), whose members are
//     the (address, protocol, port) of the ports of that name on every
//     workload endpoint the selector picks, on any host (single addresses
//     only). Named entries of notPorts become Match.NotPortSets. A ports
//     list mixing numbers and names is an OR, which a rule cannot express:
//     the rule is emitted once per alternative (the numbers first, then
//     each name, each excluding the ones before it, so that at most one
//     matches a packet and a Log rule logs once); with both sides mixed,
//     the product. Rule indexes count these rules, as with the IP family
//     split.
//   - Rules using services are left out: there are no Kubernetes
//     Services here, so they match nothing (as in Calico for a Service
//     that does not exist).
//   - Rules using http fail closed: with no application layer proxy the
//     request is never seen, so the rule is read to admit no more than
//     written. Allow and Log rules with http are left out (they match no
//     traffic); a Deny rule with http denies its whole L3/L4 match; a Pass
//     rule with http becomes a Deny of its L3/L4 match, because passing
//     every such request to the next tier, or none, could each admit
//     traffic the written policy denies.
//
// Routes: a scope-link route per local endpoint address, a blackhole per IPAM
// block affine to this host, and when VXLAN is on, routes over vxlan.calico
// to blocks affine to other hosts (and to their borrowed addresses, found
// from their workload endpoints) for pools with vxlanMode Always, or
// CrossSubnet when the other host's IPv4 address is outside this host's
// subnet. BGP-learned routes are merged in by the agent.
//
// Control plane: Desired.ControlPlane lists every Node's addresses (BGP
// IPv4/IPv6, VXLAN tunnel addresses, spec.addresses; unparsable, loopback
// and unspecified ones skipped) and the control-plane ports:
// DefaultControlPlanePorts (the one list), FelixConfiguration's healthPort,
// prometheusMetricsPort and vxlanPort, and the ports the agent adds
// (SetControlPlanePorts / Snapshot.ControlPlanePorts). Drivers drop
// workload traffic to them unless an egress policy allows it.
//
// Host endpoints: Desired.Hosts lists this host's HostEndpoints with the
// GlobalNetworkPolicies that select them, by kind (normal, applyOnForward,
// preDNAT, doNotTrack), and the failsafe ports; their chains and sets are
// merged into Chains and Sets. Pre-DNAT and untracked policies never
// select workloads. See hostendpoints.go.
//
// Invariants: the package is pure (no I/O, no clock, no goroutines, no
// globals that change); every output slice is sorted; empty slices are nil;
// Compute(snapshot) equals Calculator.Desired() for the same state. A Desired
// returned by either is shared, read-only data: callers must not modify it.
package calc

// Package trace answers "would this packet get through, and which rule
// decided?" from the same calculation that programs the kernel: it runs
// calc.Compute for the source endpoint's host and for the destination
// endpoint's host and walks the resulting dataplane.Desired the way the
// nft driver's chains do (package nft, endpointChain and compileRule):
//
//   - Egress side (traffic from a local workload, its fw- chain): the
//     endpoint's egress policies in order; in a policy the first matching
//     Allow accepts, Deny drops, Pass skips to the profiles, Log logs and
//     goes on; a policy whose rules give no verdict hands over to the next
//     one; when there are policies and none gives a verdict the packet is
//     dropped. Then, only when the endpoint has profiles, the control-plane
//     ports of every node address are dropped; then the profiles in order
//     (Pass in a profile goes on to the next profile); no verdict: drop. No
//     policy and no profile: drop (fail closed).
//   - Ingress side (tw- chain of the destination): the same without the
//     control-plane step.
//   - Traffic to the source's own host: FelixConfiguration
//     defaultEndpointToHostAction (Drop unless set to Accept/Return, in which
//     case the egress side decides).
//   - Addresses that are no workload's (outside the cluster) have no side.
//
// Staged policies (StagedGlobalNetworkPolicy, StagedNetworkPolicy) are
// never programmed; when there are any, every trace is also evaluated on a
// copy of the snapshot with them applied as Calico previews them (see
// stagedSnapshot) and the result carries that verdict next to the enforced
// one. The enforced verdict and each host's Desired do not depend on them.
//
// The trace describes a new connection (conntrack state new): replies of
// an allowed connection are accepted by conntrack before any policy.
//
// Package trace is pure except Load, which reads the datastore through the
// narrow Lister interface.
package trace

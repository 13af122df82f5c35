package dataplane

import "net/netip"

// HostProtection is the policy on this host's own interfaces (Calico's host
// endpoints). With no Endpoints, nothing about the host's own traffic is
// judged and the failsafe lists have no effect.
//
// Semantics, per packet on an interface that has a HostEndpoint (a named
// one wins over one found by address, which wins over the "*" one;
// workload interfaces, "lo" and vxlan.calico are never host endpoints
// here):
//
//   - Untracked (doNotTrack) policies, named interfaces only, before
//     conntrack: Allow leaves the packet untracked and accepted (it skips
//     pre-DNAT and normal policy), Deny drops, no verdict continues.
//   - Pre-DNAT policies (ingress only, before any DNAT, ours or Docker's):
//     Allow skips normal and forward policy of the host endpoint, Deny
//     drops, no verdict continues.
//   - Traffic to or from the host itself (input, output): established and
//     related connections pass, the failsafe ports pass, then the normal
//     policies in order; with none in that direction the profiles; with
//     neither, drop.
//   - Forwarded traffic: judged by the ApplyOnForward policies of the
//     interface it arrives on (ingress) and leaves by (egress); with none
//     in a direction it passes that direction (workload policy still
//     applies to workload interfaces).
//
// Failsafe ports pass in the untracked, pre-DNAT and host chains whatever
// the policies say: inbound ones are destination ports of traffic to the
// host, outbound ones destination ports of traffic from it; Net restricts
// the remote address (source inbound, destination outbound).
type HostProtection struct {
	// Endpoints are the local host endpoints, sorted by Iface, then ID
	// (those found by address, Iface "", first; then "*").
	Endpoints []HostEndpoint
	// FailsafeIn and FailsafeOut are sorted by protocol, port, then net.
	FailsafeIn  []FailsafePort
	FailsafeOut []FailsafePort
}

// HostEndpoint is one protected interface of this host and the policy
// chains (PolicyChain IDs, in evaluation order) that judge it.
type HostEndpoint struct {
	// ID is the HostEndpoint's name.
	ID string
	// Iface is the interface name, "*" for every host interface, or ""
	// for the interfaces that carry one of ExpectedIPs (Calico's
	// HostEndpoint with expectedIPs and no interfaceName): the driver
	// finds them in its namespace when it applies, and an interface
	// already named by another endpoint keeps that one; between two
	// endpoints found by address the smaller ID wins.
	Iface string
	// ExpectedIPs, sorted, locate the interfaces of an endpoint with
	// Iface "".
	ExpectedIPs []netip.Addr
	// Ingress and Egress: normal policies (traffic to or from the host).
	Ingress, Egress []string
	// ForwardIngress and ForwardEgress: policies with applyOnForward.
	ForwardIngress, ForwardEgress []string
	// PreDNAT: pre-DNAT policies (ingress only).
	PreDNAT []string
	// UntrackedIngress and UntrackedEgress: doNotTrack policies.
	UntrackedIngress, UntrackedEgress []string
	// Profiles apply to host traffic when no normal policy does.
	Profiles []string
	// The ...Tiers fields split the list of the same name into tiers as
	// Endpoint.IngressTiers does (nil: one tier that denies by default).
	// A Pass, or the end of a tier whose default action is Pass, goes on
	// to the next tier. The end of any other tier drops traffic to or from
	// the host and forwarded traffic; in untracked and pre-DNAT lists it
	// goes on to the next tier, and past the last one to the later stages
	// (as in Felix, whose raw and mangle chains never drop at a tier's
	// end).
	IngressTiers, EgressTiers                   []EndpointTier
	ForwardIngressTiers, ForwardEgressTiers     []EndpointTier
	PreDNATTiers                                []EndpointTier
	UntrackedIngressTiers, UntrackedEgressTiers []EndpointTier
}

// FailsafePort is a port that stays open on every host endpoint.
type FailsafePort struct {
	Protocol uint8 // 6 TCP, 17 UDP, 132 SCTP
	Port     uint16
	// Net, when valid, restricts the remote address.
	Net netip.Prefix
}

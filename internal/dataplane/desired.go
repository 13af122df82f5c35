package dataplane

import (
	"net/netip"
	"strconv"
	"strings"
)

// Action is what a rule does with a packet it matches.
type Action string

const (
	Allow Action = "Allow"
	Deny  Action = "Deny"
	Log   Action = "Log"
	// Pass skips the remaining policies and hands the packet to the endpoint's profiles.
	Pass Action = "Pass"
)

// Desired is everything this host's dataplane should contain.
type Desired struct {
	// Endpoints are the workload endpoints local to this host, sorted by Iface.
	Endpoints []Endpoint
	// Chains are the policies and profiles referenced by local endpoints, sorted by ID.
	Chains []PolicyChain
	// Sets are the address sets referenced by rules in Chains, sorted by ID.
	Sets []IPSet
	// Routes this host should have, sorted by Dst (netip.Prefix order: address, then bits).
	Routes []Route
	// NAT is the natOutgoing configuration.
	NAT NATConfig
	// Host holds host-wide settings.
	Host HostConfig
	// VXLAN, when non-nil, asks for the IPv4 VXLAN device (VXLANDevice) and
	// its neighbours; VXLANV6 likewise for IPv6 (VXLANDeviceV6), as Felix
	// runs one device per family.
	VXLAN   *VXLANConfig
	VXLANV6 *VXLANConfig
	// HostPorts are the published ports of local workloads, sorted (see
	// CompareHostPort); no two have the same Key.
	HostPorts []HostPort
	// ControlPlane is what a workload may not reach unless one of its
	// egress policies allows it explicitly.
	ControlPlane ControlPlane
	// Hosts protects this host's own interfaces (HostEndpoints, failsafe
	// ports; see hostendpoint.go). Empty when no HostEndpoint is local.
	Hosts HostProtection
	// FlowLogs asks the dataplane to report allowed and denied first
	// packets with the rule that decided (nft: NFLOG, see nft.FlowLogGroup).
	FlowLogs bool
}

// HostPort is one published port of a local workload (`docker run -p`):
// new connections to HostPort on this host's addresses (only HostIP when it
// is set) are forwarded to Target:Port, with the client's source address
// kept. Target's family is the family of the host addresses it serves.
type HostPort struct {
	// Protocol is 6 (TCP) or 17 (UDP).
	Protocol uint8
	// HostIP restricts the port to one local address (of Target's family);
	// the zero Addr means every local address of that family.
	HostIP   netip.Addr
	HostPort uint16
	// Target is the workload's address, Port its port.
	Target netip.Addr
	Port   uint16
	// Endpoint is the ID of the workload endpoint that publishes it.
	Endpoint string
}

// HostPortKey identifies what a HostPort claims on the host.
type HostPortKey struct {
	Protocol uint8
	Family   int // 4 or 6
	HostIP   netip.Addr
	HostPort uint16
}

// Key is what the port claims: two HostPorts with one Key cannot both be.
func (h HostPort) Key() HostPortKey {
	fam := 4
	if h.Target.Is6() {
		fam = 6
	}
	return HostPortKey{Protocol: h.Protocol, Family: fam, HostIP: h.HostIP, HostPort: h.HostPort}
}

// CompareHostPort orders HostPorts by protocol, host port, family, host IP,
// then target.
func CompareHostPort(a, b HostPort) int {
	ka, kb := a.Key(), b.Key()
	switch {
	case ka.Protocol != kb.Protocol:
		return int(ka.Protocol) - int(kb.Protocol)
	case ka.HostPort != kb.HostPort:
		return int(ka.HostPort) - int(kb.HostPort)
	case ka.Family != kb.Family:
		return ka.Family - kb.Family
	}
	if c := ka.HostIP.Compare(kb.HostIP); c != 0 {
		return c
	}
	if c := a.Target.Compare(b.Target); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	return strings.Compare(a.Endpoint, b.Endpoint)
}

// ControlPlane describes the control plane of the cluster's hosts: the
// ports (etcd, BGP, health, metrics, VXLAN) on every node's addresses and
// on every local address of this host. Traffic from a workload to one of
// them is dropped after the workload's egress policies and before its
// profiles: an explicit policy Allow opens it, a profile (such as a Docker
// network's "egress allowed") does not.
type ControlPlane struct {
	// Addrs are the addresses of every node in the cluster, this one
	// included, sorted (IPv4 before IPv6).
	Addrs []netip.Addr
	// Ports are the control-plane ports, sorted by protocol then port.
	Ports []ProtoPort
}

// ProtoPort is a transport protocol (6 TCP, 17 UDP, 132 SCTP) and a port.
type ProtoPort struct {
	Protocol uint8
	Port     uint16
}

// Endpoint is one local workload interface and the policy that applies to it.
//
// Semantics per direction (ingress = traffic to the workload, egress = from it):
// if the direction's policy list is non-empty, the policies are evaluated in
// order; the first Allow accepts, the first Deny drops, Pass jumps to the
// profiles, and a packet that reaches the end of the list without a verdict is
// dropped. If the list is empty, the profiles are evaluated in order: the first
// Allow accepts, the first Deny drops, the end drops. With no profile either,
// everything is dropped (fail closed).
type Endpoint struct {
	// ID is "<namespace>/<name>" of the WorkloadEndpoint.
	ID string
	// Iface is the host side of the veth, e.g. "cali1a2b3c4d5e6".
	Iface string
	// MAC is the workload side MAC, if known (informational).
	MAC string
	// Addrs are the workload's own networks (usually /32 and /128), sorted.
	// Packets from the workload with a source outside Addrs are dropped.
	Addrs []netip.Prefix
	// IngressPolicies and EgressPolicies are PolicyChain IDs in evaluation order.
	IngressPolicies []string
	EgressPolicies  []string
	// Profiles are PolicyChain IDs in evaluation order.
	Profiles []string
	// IngressTiers and EgressTiers split IngressPolicies and
	// EgressPolicies into consecutive tiers (Calico's Tier), in order. Nil
	// means one tier holding every policy whose default action is Deny,
	// which is the semantics described above. With tiers, a rule's Pass
	// and the end of a tier whose DefaultPass is set go on to the next
	// tier, the end of any other tier drops, and past the last tier come
	// the profiles.
	IngressTiers []EndpointTier
	EgressTiers  []EndpointTier
}

// EndpointTier is one tier of an endpoint's policies in one direction.
type EndpointTier struct {
	// Name is the tier's name (for humans).
	Name string
	// Policies is how many policy IDs, following the previous tier's, the
	// tier holds (at least one).
	Policies int
	// DefaultPass: a packet that no policy of the tier accepts or denies
	// goes to the next tier (defaultAction Pass) instead of being dropped.
	DefaultPass bool
}

// PolicyChain is one policy or profile: its rules per direction.
type PolicyChain struct {
	// ID is stable across restarts: "policy:<ns>/<name>", "gnp:<name>" or "profile:<name>".
	ID string
	// Ingress rules apply to traffic arriving at an endpoint, Egress to traffic leaving it.
	Ingress []Rule
	Egress  []Rule
}

// Rule is one match-and-action. All present criteria must match (AND); within
// a list (Nets, Ports) any element may match (OR); a Not* list matches when no
// element matches.
type Rule struct {
	Action Action
	// IPVersion restricts the rule to 4 or 6; 0 means both.
	IPVersion int
	// Protocol and NotProtocol are IP protocol numbers (6 TCP, 17 UDP, 1 ICMP,
	// 58 ICMPv6, 132 SCTP); nil means any.
	Protocol    *uint8
	NotProtocol *uint8
	// ICMP and NotICMP match ICMP type/code (ICMPv6 when IPVersion is 6).
	ICMP    *ICMPMatch
	NotICMP *ICMPMatch
	Src     Match
	Dst     Match
}

// ICMPMatch matches an ICMP type and, if Code is non-nil, its code.
type ICMPMatch struct {
	Type uint8
	Code *uint8
}

// Match is the source or destination part of a rule.
type Match struct {
	Nets    []netip.Prefix
	NotNets []netip.Prefix
	// Sets are IPSet IDs: the address must be a member of every one (a rule's
	// selector). NotSets: the address must be a member of none (notSelector).
	Sets    []string
	NotSets []string
	// Ports and NotPorts need Protocol TCP, UDP or SCTP.
	Ports    []PortRange
	NotPorts []PortRange
	// PortSets are IDs of named-port sets (IPSet.NamedPort set): the
	// (address, transport protocol, port) of this side must be a member of
	// every one; NotPortSets: of none. A rule with either matches TCP, UDP
	// and SCTP only. (Calico's "ports: [http, 80]" is an OR; calc splits
	// such a rule into one rule per alternative.)
	PortSets    []string
	NotPortSets []string
}

// PortRange is an inclusive port range; a single port has First == Last.
type PortRange struct {
	First, Last uint16
}

// IPSet is the set of addresses of the endpoints a selector picks, across all hosts.
type IPSet struct {
	// ID is derived from the canonical selector string, so equal selectors share a set.
	ID string
	// Selector is the canonical selector, for humans and comments.
	Selector string
	// Members are sorted; IPv4 and IPv6 mixed (drivers split them by family).
	Members []netip.Prefix
	// NamedPort, when not "", makes this a named-port set: its members are
	// PortMembers, the (address, protocol, port) of every endpoint port of
	// that name (and protocol, when Protocol is not 0) on the endpoints the
	// selector picks; Members is then empty.
	NamedPort   string
	Protocol    uint8
	PortMembers []AddrProtoPort
}

// AddrProtoPort is one member of a named-port set.
type AddrProtoPort struct {
	Addr     netip.Addr
	Protocol uint8
	Port     uint16
}

// CompareAddrProtoPort orders named-port set members.
func CompareAddrProtoPort(a, b AddrProtoPort) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if a.Protocol != b.Protocol {
		return int(a.Protocol) - int(b.Protocol)
	}
	return int(a.Port) - int(b.Port)
}

// RouteType says how a route reaches its destination.
type RouteType int

const (
	// RouteLocal: "Dst dev Iface scope link", a local workload.
	RouteLocal RouteType = iota
	// RouteBlackhole: a local IPAM block, so unassigned addresses are not forwarded.
	RouteBlackhole
	// RouteVia: "Dst via Gateway", learned from BGP (the gateway is on-link on some interface).
	RouteVia
	// RouteVXLAN: "Dst via Gateway dev Iface onlink", a remote block over
	// VXLAN (Iface is VXLANDevice or VXLANDeviceV6, by Dst's family).
	RouteVXLAN
)

// Route is one route this host should have, installed with our protocol number.
type Route struct {
	Dst     netip.Prefix
	Type    RouteType
	Iface   string     // RouteLocal, RouteVXLAN
	Gateway netip.Addr // RouteVia, RouteVXLAN
}

// NATConfig drives natOutgoing: traffic from a workload address inside one of
// MasqueradePools to a destination outside every pool in AllPools is masqueraded.
type NATConfig struct {
	MasqueradePools []netip.Prefix // sorted
	AllPools        []netip.Prefix // sorted
}

// HostConfig holds host-wide dataplane settings (FelixConfiguration).
type HostConfig struct {
	// EndpointToHostAction is what happens to traffic from a workload to this
	// host itself: "Drop" (default), "Accept" or "Return" (continue with the
	// host's own input rules).
	EndpointToHostAction string
	// InterfacePrefix is the workload interface prefix, "cali".
	InterfacePrefix string
}

// The VXLAN tunnel devices, Felix's names: one per IP family, both with the
// same VNI and port (the underlay family tells their packets apart).
const (
	VXLANDevice   = "vxlan.calico"
	VXLANDeviceV6 = "vxlan-v6.calico"
)

// VXLANDeviceFor is the device carrying overlay addresses of a's family.
func VXLANDeviceFor(a netip.Addr) string {
	if a.Is4() {
		return VXLANDevice
	}
	return VXLANDeviceV6
}

// VXLANConfig describes one of this host's VXLAN tunnel devices and its
// peers. Every address in it (underlay and tunnel) has the same family: IPv4
// for VXLANDevice, IPv6 for VXLANDeviceV6.
type VXLANConfig struct {
	VNI      int
	Port     int
	MTU      int
	LocalIP  netip.Addr // this host's underlay address
	TunnelIP netip.Addr // this host's address on the device
	MAC      string     // this host's MAC on the device
	Peers    []VTEP     // sorted by NodeIP
}

// VTEP is a remote VXLAN endpoint.
type VTEP struct {
	NodeIP   netip.Addr
	TunnelIP netip.Addr
	MAC      string
}

// ProtoName is the usual name of an IP protocol number ("tcp", "icmpv6"),
// or the number itself, for output.
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

package calc

import (
	"net/netip"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// Snapshot is the whole datastore state Compute needs, as seen from one host.
// Inputs are assumed validated and defaulted by package api; where two items
// share a key (namespace/name, name, block CIDR) the later one wins.
type Snapshot struct {
	// Node is this host's name: endpoints with spec.node == Node are local.
	Node string
	// WorkloadEndpoints of every host: remote ones fill selector sets.
	WorkloadEndpoints []api.WorkloadEndpoint
	Profiles          []api.Profile
	// GlobalNetworkSets and NetworkSets add their nets to the sets of the
	// rule selectors that match them (see netsets.go).
	GlobalNetworkSets []api.GlobalNetworkSet
	NetworkSets       []api.NetworkSet
	// Tiers order and close groups of policies (see tiers.go); the
	// default tier exists even when it is not listed.
	Tiers                 []api.Tier
	NetworkPolicies       []api.NetworkPolicy
	GlobalNetworkPolicies []api.GlobalNetworkPolicy
	IPPools               []api.IPPool
	// Blocks are the IPAM blocks and the host each is affine to.
	Blocks []Block
	Nodes  []api.Node
	// Felix is the merged FelixConfiguration (global, then this node's); nil
	// means all defaults.
	Felix *api.FelixConfigurationSpec
	// HostMTU is the MTU of this host's uplink, if known (0 = unknown); the
	// VXLAN device gets HostMTU-50 unless FelixConfiguration sets vxlanMTU.
	HostMTU int
	// ControlPlanePorts are control-plane ports this host is configured
	// with beyond DefaultControlPlanePorts and FelixConfiguration's (its
	// etcd, BGP, health and metrics listen ports).
	ControlPlanePorts []dataplane.ProtoPort
}

// Block is one IPAM block and the host it is affine to ("" when none).
type Block struct {
	CIDR netip.Prefix
	Node string
}

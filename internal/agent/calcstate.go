package agent

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/syncer"
)

// calcState feeds syncer updates into the incremental calculator and keeps
// the few inputs the agent itself needs (BGP configuration, pools, felix).
// It is used from the syncer goroutine and the apply loop, hence the mutex.
type calcState struct {
	mu    sync.Mutex
	node  string
	c     *calc.Calculator
	felix map[string]*api.FelixConfigurationSpec // "default" and "node.<name>"

	// Inputs of BGP: copies, keyed by name.
	nodes     map[string]*api.Node
	bgpPeers  map[string]*api.BGPPeer
	bgpConfig map[string]*api.BGPConfiguration
	bgpFilter map[string]*api.BGPFilter
	pools     map[string]*api.IPPool
	blocks    map[netip.Prefix]string

	// cpPorts are the control-plane ports of this node's own configuration.
	cpPorts []dataplane.ProtoPort
	// holders: per block, the addresses held by another node than its
	// affine one (borrowed), for the BGP route guard.
	holders map[netip.Prefix]map[netip.Addr]string
	// eps names every workload endpoint's addresses for flow records.
	eps *flows.Directory
}

type changes struct {
	bgp   bool
	felix bool
	// maint: something the maintenance loop acts on changed (the automatic
	// host endpoint's switch or a HostEndpoint).
	maint bool
}

func newCalcState(node string) *calcState {
	return &calcState{
		node:      node,
		c:         calc.NewCalculator(node),
		felix:     map[string]*api.FelixConfigurationSpec{},
		nodes:     map[string]*api.Node{},
		bgpPeers:  map[string]*api.BGPPeer{},
		bgpConfig: map[string]*api.BGPConfiguration{},
		bgpFilter: map[string]*api.BGPFilter{},
		pools:     map[string]*api.IPPool{},
		blocks:    map[netip.Prefix]string{},
		holders:   map[netip.Prefix]map[netip.Addr]string{},
		eps:       flows.NewDirectory(),
	}
}

func (s *calcState) apply(us []syncer.Update) changes {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ch changes
	for _, u := range us {
		del := u.Object == nil
		switch u.Kind {
		case api.KindWorkloadEndpoint:
			if del {
				s.c.DeleteWorkloadEndpoint(u.Namespace, u.Name)
				s.eps.Delete(u.Namespace, u.Name)
			} else {
				s.c.UpsertWorkloadEndpoint(u.Object.(*api.WorkloadEndpoint))
				s.eps.Upsert(u.Object.(*api.WorkloadEndpoint))
			}
		case api.KindProfile:
			if del {
				s.c.DeleteProfile(u.Name)
			} else {
				s.c.UpsertProfile(u.Object.(*api.Profile))
			}
		case api.KindNetworkPolicy:
			if del {
				s.c.DeleteNetworkPolicy(u.Namespace, u.Name)
			} else {
				s.c.UpsertNetworkPolicy(u.Object.(*api.NetworkPolicy))
			}
		case api.KindGlobalNetworkPolicy:
			if del {
				s.c.DeleteGlobalNetworkPolicy(u.Name)
			} else {
				s.c.UpsertGlobalNetworkPolicy(u.Object.(*api.GlobalNetworkPolicy))
			}
		case api.KindHostEndpoint:
			if u.Name == s.node+autoHEPSuffix {
				ch.maint = true // ours: recreated or put back if someone changes it
			}
			if del {
				s.c.DeleteHostEndpoint(u.Name)
			} else {
				s.c.UpsertHostEndpoint(u.Object.(*api.HostEndpoint))
			}
		case api.KindGlobalNetworkSet, api.KindNetworkSet, api.KindTier:
			s.applyMore(u)
		case api.KindIPPool:
			ch.bgp = true
			if del {
				delete(s.pools, u.Name)
				s.c.DeleteIPPool(u.Name)
			} else {
				p := u.Object.(*api.IPPool)
				s.pools[u.Name] = p
				s.c.UpsertIPPool(p)
			}
		case api.KindNode:
			ch.bgp = true
			if del {
				delete(s.nodes, u.Name)
				s.c.DeleteNode(u.Name)
			} else {
				n := u.Object.(*api.Node)
				s.nodes[u.Name] = n
				s.c.UpsertNode(n)
			}
		case api.KindBGPPeer:
			ch.bgp = true
			if del {
				delete(s.bgpPeers, u.Name)
			} else {
				s.bgpPeers[u.Name] = u.Object.(*api.BGPPeer)
			}
		case api.KindBGPConfiguration:
			ch.bgp = true
			if del {
				delete(s.bgpConfig, u.Name)
			} else {
				s.bgpConfig[u.Name] = u.Object.(*api.BGPConfiguration)
			}
			s.updateControlPlanePorts()
		case api.KindBGPFilter:
			ch.bgp = true
			if del {
				delete(s.bgpFilter, u.Name)
			} else {
				s.bgpFilter[u.Name] = u.Object.(*api.BGPFilter)
			}
		case api.KindKubeControllersConfiguration:
			ch.maint = true
		case api.KindFelixConfiguration:
			if u.Name != "default" && u.Name != "node."+s.node {
				continue
			}
			ch.felix = true
			if del {
				delete(s.felix, u.Name)
			} else {
				spec := u.Object.(*api.FelixConfiguration).Spec
				s.felix[u.Name] = &spec
			}
			s.c.SetFelix(s.mergedFelix())
		case syncer.KindBlock:
			ch.bgp = true
			if del {
				cidr, err := netip.ParsePrefix(u.Name)
				if err == nil {
					delete(s.blocks, cidr)
					delete(s.holders, cidr)
					s.c.DeleteBlock(cidr)
				}
			} else {
				b := u.Object.(*syncer.Block)
				s.blocks[b.CIDR] = b.Node
				if len(b.Holders) > 0 {
					s.holders[b.CIDR] = b.Holders
				} else {
					delete(s.holders, b.CIDR)
				}
				s.c.UpsertBlock(calc.Block{CIDR: b.CIDR, Node: b.Node})
			}
		}
	}
	return ch
}

// setControlPlanePorts records this node's own control-plane ports.
func (s *calcState) setControlPlanePorts(ports []dataplane.ProtoPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cpPorts = ports
	s.updateControlPlanePorts()
}

// updateControlPlanePorts hands the calculator this node's ports and the
// BGP listen ports of every BGPConfiguration, sorted so that an unchanged
// list is recognised. s.mu is held.
func (s *calcState) updateControlPlanePorts() {
	ports := slices.Concat(s.cpPorts, bgpListenPorts(s.bgpConfig))
	slices.SortFunc(ports, func(a, b dataplane.ProtoPort) int {
		return int(a.Protocol)<<16 + int(a.Port) - (int(b.Protocol)<<16 + int(b.Port))
	})
	s.c.SetControlPlanePorts(slices.Compact(ports))
}

// mergedFelix overlays the per-node FelixConfiguration on the global one.
// Only the fields that are set in the per-node resource override.
func (s *calcState) mergedFelix() *api.FelixConfigurationSpec {
	g, n := s.felix["default"], s.felix["node."+s.node]
	if g == nil && n == nil {
		return nil
	}
	out := api.FelixConfigurationSpec{}
	for _, src := range []*api.FelixConfigurationSpec{g, n} {
		if src == nil {
			continue
		}
		mergeFelix(&out, src)
	}
	return &out
}

func mergeFelix(dst, src *api.FelixConfigurationSpec) {
	if src.LogSeverityScreen != "" {
		dst.LogSeverityScreen = src.LogSeverityScreen
	}
	if src.RouteRefreshInterval != nil {
		dst.RouteRefreshInterval = src.RouteRefreshInterval
	}
	if src.NftablesRefreshInterval != nil {
		dst.NftablesRefreshInterval = src.NftablesRefreshInterval
	}
	if src.IptablesRefreshInterval != nil {
		dst.IptablesRefreshInterval = src.IptablesRefreshInterval
	}
	if src.DefaultEndpointToHostAction != "" {
		dst.DefaultEndpointToHostAction = src.DefaultEndpointToHostAction
	}
	if src.InterfacePrefix != "" {
		dst.InterfacePrefix = src.InterfacePrefix
	}
	if src.FailsafeInboundHostPorts != nil {
		dst.FailsafeInboundHostPorts = src.FailsafeInboundHostPorts
	}
	if src.FailsafeOutboundHostPorts != nil {
		dst.FailsafeOutboundHostPorts = src.FailsafeOutboundHostPorts
	}
	if src.VXLANEnabled != nil {
		dst.VXLANEnabled = src.VXLANEnabled
	}
	if src.VXLANPort != nil {
		dst.VXLANPort = src.VXLANPort
	}
	if src.VXLANVNI != nil {
		dst.VXLANVNI = src.VXLANVNI
	}
	if src.VXLANMTU != nil {
		dst.VXLANMTU = src.VXLANMTU
	}
	if src.VXLANMTUV6 != nil {
		dst.VXLANMTUV6 = src.VXLANMTUV6
	}
	if src.HealthPort != nil {
		dst.HealthPort = src.HealthPort
	}
	if src.PrometheusMetricsEnabled != nil {
		dst.PrometheusMetricsEnabled = src.PrometheusMetricsEnabled
	}
	if src.PrometheusMetricsPort != nil {
		dst.PrometheusMetricsPort = src.PrometheusMetricsPort
	}
	if src.FlowLogsFileEnabled != nil {
		dst.FlowLogsFileEnabled = src.FlowLogsFileEnabled
	}
}

// resyncInterval is the dataplane refresh interval: an explicit override,
// else FelixConfiguration's nftablesRefreshInterval (or iptablesRefreshInterval,
// Calico's older name), else 90 s; never below 5 s.
func (s *calcState) resyncInterval(override time.Duration) time.Duration {
	if override > 0 {
		return max(override, MinResyncInterval)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.mergedFelix()
	d := DefaultResyncInterval
	if f != nil {
		switch {
		case f.NftablesRefreshInterval != nil:
			d = f.NftablesRefreshInterval.Duration
		case f.IptablesRefreshInterval != nil:
			d = f.IptablesRefreshInterval.Duration
		}
	}
	if d <= 0 {
		d = DefaultResyncInterval
	}
	return max(d, MinResyncInterval)
}

func (s *calcState) desired() *dataplane.Desired {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.Desired()
}

func (s *calcState) setHostMTU(mtu int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.SetHostMTU(mtu)
}

// applyMore feeds network sets and tiers to the calculator. s.mu is held.
func (s *calcState) applyMore(u syncer.Update) {
	del := u.Object == nil
	switch u.Kind {
	case api.KindGlobalNetworkSet:
		if del {
			s.c.DeleteGlobalNetworkSet(u.Name)
		} else {
			s.c.UpsertGlobalNetworkSet(u.Object.(*api.GlobalNetworkSet))
		}
	case api.KindNetworkSet:
		if del {
			s.c.DeleteNetworkSet(u.Namespace, u.Name)
		} else {
			s.c.UpsertNetworkSet(u.Object.(*api.NetworkSet))
		}
	case api.KindTier:
		if del {
			s.c.DeleteTier(u.Name)
		} else {
			s.c.UpsertTier(u.Object.(*api.Tier))
		}
	}
}

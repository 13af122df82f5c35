package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fieldCase is one manifest built from a kind's base spec with fields
// merged in (null removes a base field). want is "" (accepted, no warning), "warn:<substring>"
// (accepted with a warning containing it) or an error substring.
type fieldCase struct {
	kind string
	spec string // JSON object merged into the kind's base spec
	want string
}

// baseSpecs are minimal valid specs, and the name and namespace to use.
var baseSpecs = map[string]struct{ name, ns, spec string }{
	KindIPPool:              {"pool", "", `{"cidr":"10.10.0.0/16"}`},
	KindFelixConfiguration:  {"default", "", `{}`},
	KindBGPConfiguration:    {"default", "", `{}`},
	KindBGPPeer:             {"peer", "", `{"peerIP":"10.0.0.9","asNumber":64512}`},
	KindNode:                {"node1", "", `{}`},
	KindHostEndpoint:        {"hep", "", `{"node":"node1","interfaceName":"eth0"}`},
	KindProfile:             {"prof", "", `{}`},
	KindGlobalNetworkPolicy: {"gnp", "", `{"selector":"all()"}`},
	KindNetworkPolicy:       {"np", "default", `{"selector":"all()"}`},
	KindBGPFilter:           {"filter", "", `{}`},
	KindWorkloadEndpoint: {"node1-libnetwork-libnetwork-eth0", "default", `{"node":"node1","orchestrator":"libnetwork","workload":"web1",
		"endpoint":"eth0","interfaceName":"cali0ef24ba","ipNetworks":["192.168.0.7/32"]}`},
}

// fieldCases: at least every field the issue names, and Calico's rules
// for them value for value.
var fieldCases = []fieldCase{
	// FelixConfiguration: stored, no effect.
	{KindFelixConfiguration, `{"interfacePrefix":"tap"}`, "warn:spec.interfacePrefix: stored, but has no effect here: workload interfaces here are always named cali*"},
	{KindFelixConfiguration, `{"interfacePrefix":"cali,tap"}`, "warn:spec.interfacePrefix: stored, but has no effect here"},
	{KindFelixConfiguration, `{"interfacePrefix":"cali"}`, ""},
	{KindFelixConfiguration, `{"iptablesBackend":"NFT"}`, "warn:spec.iptablesBackend: stored, but has no effect here: this dataplane is nftables"},
	{KindFelixConfiguration, `{"iptablesBackend":"Auto"}`, "warn:spec.iptablesBackend"},
	{KindFelixConfiguration, `{"iptablesBackend":"nft"}`, `spec.iptablesBackend: invalid value "nft" (did you mean "NFT"?)`},
	{KindFelixConfiguration, `{"routeTableRanges":[{"min":1,"max":250},{"min":1000,"max":1100}]}`, "warn:spec.routeTableRanges"},
	{KindFelixConfiguration, `{"routeTableRanges":[{"min":10,"max":5}]}`, "spec.routeTableRanges[0]: min value cannot be greater than max value"},
	{KindFelixConfiguration, `{"routeTableRanges":[{"min":0,"max":5}]}`, "spec.routeTableRanges[0]: cannot target indices < 1"},
	{KindFelixConfiguration, `{"routeTableRanges":[{"min":1,"max":70000}]}`, "spec.routeTableRanges: targets too many tables"},
	{KindFelixConfiguration, `{"routeTableRange":{"min":1,"max":250}}`, "warn:spec.routeTableRange"},
	{KindFelixConfiguration, `{"routeTableRange":{"min":1,"max":251}}`, "spec.routeTableRange: must be a range of route table indices within 1..250"},
	{KindFelixConfiguration, `{"routeTableRange":{"min":1,"max":2},"routeTableRanges":[{"min":3,"max":4}]}`, "spec.routeTableRange: cannot be set when routeTableRanges is also set"},
	{KindFelixConfiguration, `{"bpfEnabled":true}`, "warn:spec.bpfEnabled: stored, but has no effect here: the eBPF dataplane"},
	{KindFelixConfiguration, `{"bpfEnabled":false}`, ""},
	{KindFelixConfiguration, `{"bpfEnabled":"yes"}`, "spec.bpfEnabled: expected true or false"},
	{KindFelixConfiguration, `{"bpfLogLevel":""}`, ""},
	{KindFelixConfiguration, `{"bpfLogLevel":"Debug"}`, "warn:spec.bpfLogLevel"},
	{KindFelixConfiguration, `{"bpfLogLevel":"Verbose"}`, `spec.bpfLogLevel: invalid value "Verbose"`},
	{KindFelixConfiguration, `{"bpfConnectTimeLoadBalancing":"TCP","bpfHostNetworkedNATWithoutCTLB":"Enabled"}`, "warn:spec.bpfHostNetworkedNATWithoutCTLB"},
	{KindFelixConfiguration, `{"bpfConnectTimeLoadBalancing":"UDP"}`, "spec.bpfConnectTimeLoadBalancing"},
	{KindFelixConfiguration, `{"bpfExternalServiceMode":"DSR"}`, "warn:spec.bpfExternalServiceMode"},
	{KindFelixConfiguration, `{"bpfExternalServiceMode":"dsr"}`, "spec.bpfExternalServiceMode"},
	{KindFelixConfiguration, `{"bpfKubeProxyHealthzPort":0}`, "spec.bpfKubeProxyHealthzPort: must be 1-65535"},
	{KindFelixConfiguration, `{"bpfDSROptoutCIDRs":["10.0.0.0/8","fd00::/8"]}`, "warn:spec.bpfDSROptoutCIDRs"},
	{KindFelixConfiguration, `{"bpfDSROptoutCIDRs":["10.0.0.0/33"]}`, "spec.bpfDSROptoutCIDRs[0]"},
	{KindFelixConfiguration, `{"bpfLogFilters":{"all":"tcp","eth0":"udp"}}`, "warn:spec.bpfLogFilters"},
	{KindFelixConfiguration, `{"bpfLogFilters":{"a very long interface name":"tcp"}}`, "spec.bpfLogFilters.a very long interface name"},
	{KindFelixConfiguration, `{"bpfConntrackTimeouts":{"tcpEstablished":"1h","udpTimeout":"Auto"}}`, "warn:spec.bpfConntrackTimeouts"},
	{KindFelixConfiguration, `{"bpfConntrackTimeouts":{"tcpEstablishd":"1h"}}`, `spec.bpfConntrackTimeouts.tcpEstablishd: unknown field`},
	{KindFelixConfiguration, `{"bpfConntrackMode":"BPFProgram"}`, "warn:spec.bpfConntrackMode"},
	{KindFelixConfiguration, `{"floatingIPs":"Enabled"}`, "warn:spec.floatingIPs"},
	{KindFelixConfiguration, `{"wireguardEnabled":true,"wireguardEnabledV6":true}`, "warn:spec.wireguardEnabled: stored, but has no effect here: WireGuard"},
	{KindFelixConfiguration, `{"wireguardListeningPort":51820}`, "warn:spec.wireguardListeningPort"},
	{KindFelixConfiguration, `{"wireguardListeningPort":0}`, "spec.wireguardListeningPort: must be 1-65535"},
	{KindFelixConfiguration, `{"wireguardRoutingRulePriority":32766}`, "spec.wireguardRoutingRulePriority: must be 1-32765"},
	{KindFelixConfiguration, `{"wireguardInterfaceName":"wireguard.cali"}`, "warn:spec.wireguardInterfaceName"},
	{KindFelixConfiguration, `{"wireguardInterfaceName":"wg/0"}`, "spec.wireguardInterfaceName"},
	{KindFelixConfiguration, `{"wireguardKeepAlive":"25s"}`, "warn:spec.wireguardKeepAlive"},
	{KindFelixConfiguration, `{"wireguardKeepAlive":"25"}`, "spec.wireguardKeepAlive: invalid duration"},
	{KindFelixConfiguration, `{"natOutgoingAddress":"192.0.2.1"}`, "warn:spec.natOutgoingAddress"},
	{KindFelixConfiguration, `{"natOutgoingAddress":"2001:db8::1"}`, "spec.natOutgoingAddress: invalid IPv4 address"},
	{KindFelixConfiguration, `{"natOutgoingExclusions":"IPPoolsAndHostIPs"}`, "warn:spec.natOutgoingExclusions"},
	{KindFelixConfiguration, `{"natOutgoingExclusions":"All"}`, "spec.natOutgoingExclusions"},
	{KindFelixConfiguration, `{"natPortRange":"32768:65535"}`, "warn:spec.natPortRange"},
	{KindFelixConfiguration, `{"healthTimeoutOverrides":[{"name":"InternalDataplaneMainLoop","timeout":"30s"}]}`, "warn:spec.healthTimeoutOverrides"},
	{KindFelixConfiguration, `{"healthTimeoutOverrides":[{"name":"bad/name","timeout":"30s"}]}`, "spec.healthTimeoutOverrides[0].name"},
	{KindFelixConfiguration, `{"healthTimeoutOverrides":[{"name":"x","timeout":"-5s"}]}`, "spec.healthTimeoutOverrides[0].timeout: timeout should not be negative"},
	{KindFelixConfiguration, `{"chainInsertMode":"Append"}`, "warn:spec.chainInsertMode: stored, but has no effect here: this dataplane is nftables"},
	{KindFelixConfiguration, `{"ipipEnabled":true,"ipipMTU":1440}`, "warn:spec.ipipEnabled"},
	{KindFelixConfiguration, `{"ipipEnabled":false}`, ""},
	{KindFelixConfiguration, `{"logSeverityFile":"Warning","logSeveritySys":"none"}`, `spec.logSeveritySys: invalid value "none"`},
	{KindFelixConfiguration, `{"logSeverityFile":"Info"}`, "warn:spec.logSeverityFile"},
	{KindFelixConfiguration, `{"logDebugFilenameRegex":"(["}`, "spec.logDebugFilenameRegex: invalid regular expression"},
	{KindFelixConfiguration, `{"featureDetectOverride":"SNATFullyRandom=true,MASQFullyRandom=false"}`, "warn:spec.featureDetectOverride"},
	{KindFelixConfiguration, `{"featureGates":"a=b,c"}`, `spec.featureGates: invalid item "c"`},
	{KindFelixConfiguration, `{"iptablesFilterAllowAction":"Return","iptablesFilterDenyAction":"Reject"}`, "warn:spec.iptablesFilterAllowAction"},
	{KindFelixConfiguration, `{"iptablesFilterDenyAction":"Accept"}`, "spec.iptablesFilterDenyAction"},
	{KindFelixConfiguration, `{"iptablesNATOutgoingInterfaceFilter":"eth+"}`, "warn:spec.iptablesNATOutgoingInterfaceFilter"},
	{KindFelixConfiguration, `{"iptablesMarkMask":4294967295}`, "warn:spec.iptablesMarkMask"},
	{KindFelixConfiguration, `{"iptablesMarkMask":4294967296}`, "spec.iptablesMarkMask: must be 0-4294967295"},
	{KindFelixConfiguration, `{"kubeNodePortRanges":["30000:32767"]}`, "warn:spec.kubeNodePortRanges"},
	{KindFelixConfiguration, `{"kubeNodePortRanges":["http"]}`, "spec.kubeNodePortRanges[0]: node port ranges should not contain named ports"},
	{KindFelixConfiguration, `{"kubeNodePortRanges":[1,2,3,4,5,6,7,8]}`, "node port ranges list is too long (max 7)"},
	{KindFelixConfiguration, `{"externalNodesList":["192.0.2.0/24","192.0.2.9"]}`, "warn:spec.externalNodesList"},
	{KindFelixConfiguration, `{"externalNodesList":["fd00::/64"]}`, "spec.externalNodesList[0]: has invalid IPv6 CIDR"},
	{KindFelixConfiguration, `{"openstackRegion":"Region-One"}`, "spec.openstackRegion: must be a valid DNS label"},
	{KindFelixConfiguration, `{"openstackRegion":"region-one"}`, "warn:spec.openstackRegion"},
	{KindFelixConfiguration, `{"prometheusMetricsHost":"0.0.0.0"}`, "warn:spec.prometheusMetricsHost"},
	{KindFelixConfiguration, `{"prometheusMetricsHost":"a b"}`, "spec.prometheusMetricsHost"},
	{KindFelixConfiguration, `{"routeSource":"WorkloadIPs"}`, "warn:spec.routeSource"},
	{KindFelixConfiguration, `{"routeSource":"BGP"}`, "spec.routeSource"},
	{KindFelixConfiguration, `{"debugPort":70000}`, "spec.debugPort: must be 0-65535"},
	{KindFelixConfiguration, `{"goGCThreshold":-2}`, "spec.goGCThreshold: must be at least -1"},
	{KindFelixConfiguration, `{"goMaxProcs":-1,"goMemoryLimitMB":-1}`, "warn:spec.goMaxProcs"},
	{KindFelixConfiguration, `{"awsSrcDstCheck":"Disable"}`, "warn:spec.awsSrcDstCheck"},
	{KindFelixConfiguration, `{"serviceLoopPrevention":"Drop","workloadSourceSpoofing":"Any"}`, "warn:spec.serviceLoopPrevention"},
	{KindFelixConfiguration, `{"workloadSourceSpoofing":"All"}`, "spec.workloadSourceSpoofing"},
	{KindFelixConfiguration, `{"deviceRouteSourceAddressIPv6":"192.0.2.1"}`, "spec.deviceRouteSourceAddressIPv6: invalid IPv6 address"},
	{KindFelixConfiguration, `{"xdpEnabled":true,"genericXDPEnabled":true}`, "warn:spec.xdpEnabled"},
	{KindFelixConfiguration, `{"flowLogsFlushInterval":"15s","flowLogsGoldmaneServer":"goldmane:7443"}`, "warn:spec.flowLogsFlushInterval"},
	{KindFelixConfiguration, `{"windowsManageFirewallRules":"Enabled"}`, "warn:spec.windowsManageFirewallRules"},
	{KindFelixConfiguration, `{"nftablesMode":"Enabled"}`, "warn:spec.nftablesMode"},
	{KindFelixConfiguration, `{"iptablesRefreshInterval":"1m0s"}`, "warn:spec.iptablesRefreshInterval: stored, but has no effect here"},
	{KindFelixConfiguration, `{"ipv6Support":false,"usageReportingEnabled":false}`, ""},
	{KindFelixConfiguration, `{"bpfEnabld":true}`, `spec.bpfEnabld: unknown field "bpfEnabld"`},
	{KindFelixConfiguration, `{"BPFEnabled":true}`, `unknown field "BPFEnabled"`},

	// BGPConfiguration.
	{KindBGPConfiguration, `{"communities":[{"name":"bgp-large-community","value":"63400:300:100"}],"prefixAdvertisements":[{"cidr":"172.218.4.0/26","communities":["bgp-large-community","63400:120"]}]}`, "warn:spec.communities"},
	{KindBGPConfiguration, `{"communities":[{"name":"c","value":"63400:300"}]}`, "spec.communities: communities are defined but not used"},
	{KindBGPConfiguration, `{"communities":[{"name":"c","value":"70000:1"}],"prefixAdvertisements":[{"cidr":"10.0.0.0/8","communities":["c"]}]}`, "spec.communities[0].value: invalid community value, expected 16 bit value"},
	{KindBGPConfiguration, `{"communities":[{"name":"c","value":"abc"}],"prefixAdvertisements":[{"cidr":"10.0.0.0/8","communities":["c"]}]}`, "spec.communities[0].value: invalid community value or format"},
	{KindBGPConfiguration, `{"prefixAdvertisements":[{"cidr":"10.0.0.0/8","communities":["undefined"]}]}`, `spec.prefixAdvertisements[0].communities[0]: community "undefined" is invalid or not defined`},
	{KindBGPConfiguration, `{"prefixAdvertisements":[{"cidr":"10.0.0.0/8"}]}`, "spec.prefixAdvertisements[0].communities: communities is required"},
	{KindBGPConfiguration, `{"prefixAdvertisements":[{"cidr":"10.0.0.0/40","communities":["1:2"]}]}`, "spec.prefixAdvertisements[0].cidr"},
	{KindBGPConfiguration, `{"serviceClusterIPs":[{"cidr":"10.96.0.0/12"}],"serviceExternalIPs":[{"cidr":"104.244.42.129/32"}],"serviceLoadBalancerIPs":[{"cidr":"192.0.2.0/24"}]}`, "warn:spec.serviceClusterIPs: stored, but has no effect here: there are no Kubernetes services"},
	{KindBGPConfiguration, `{"serviceClusterIPs":[{"cidr":"10.96.0.0/99"}]}`, "spec.serviceClusterIPs[0].cidr"},
	{KindBGPConfiguration, `{"nodeMeshPassword":{"secretKeyRef":{"name":"bgp-secrets","key":"mesh"}}}`, "warn:spec.nodeMeshPassword"},
	{KindBGPConfiguration, `{"nodeToNodeMeshEnabled":false,"nodeMeshPassword":{"secretKeyRef":{"name":"s","key":"k"}}}`, "spec.nodeMeshPassword: cannot be set when nodeToNodeMeshEnabled is false"},
	{KindBGPConfiguration, `{"localWorkloadPeeringIPV4":"169.254.0.179","localWorkloadPeeringIPV6":"fe80::179"}`, "warn:spec.localWorkloadPeeringIPV4"},
	{KindBGPConfiguration, `{"localWorkloadPeeringIPV4":"fe80::1"}`, "spec.localWorkloadPeeringIPV4: invalid IPv4 address"},
	{KindBGPConfiguration, `{"serviceLoadBalancerAggregation":"Disabled"}`, "warn:spec.serviceLoadBalancerAggregation"},

	// BGPPeer.
	{KindBGPPeer, `{"reachableBy":"10.0.0.1"}`, "warn:spec.reachableBy"},
	{KindBGPPeer, `{"reachableBy":"fd00::1"}`, "spec.reachableBy: reachableBy and peerIP address family mismatched"},
	{KindBGPPeer, `{"reachableBy":"not-an-ip"}`, "spec.reachableBy: invalid IP address"},
	{KindBGPPeer, `{"peerIP":null,"asNumber":null,"peerSelector":"all()","reachableBy":"10.0.0.1"}`, "spec.reachableBy: reachableBy must be empty when peerIP is empty"},
	{KindBGPPeer, `{"localASNumber":"1.10","numAllowedLocalASNumbers":2}`, "warn:spec.localASNumber"},
	{KindBGPPeer, `{"nextHopMode":"Keep"}`, "warn:spec.nextHopMode"},
	{KindBGPPeer, `{"nextHopMode":"Keep","keepOriginalNextHop":true}`, "spec.keepOriginalNextHop: keepOriginalNextHop is deprecated"},
	{KindBGPPeer, `{"keepOriginalNextHop":true}`, "warn:spec.keepOriginalNextHop: stored, but has no effect here"},
	{KindBGPPeer, `{"peerIP":null,"localWorkloadSelector":"app == 'bgp'"}`, "warn:spec.localWorkloadSelector"},
	{KindBGPPeer, `{"localWorkloadSelector":"app == 'bgp'"}`, "spec.peerIP: peerIP must be empty when localWorkloadSelector is specified"},
	{KindBGPPeer, `{"peerIP":null,"asNumber":null,"localWorkloadSelector":"all()"}`, "spec.asNumber: asNumber must not be empty when localWorkloadSelector is specified"},
	{KindBGPPeer, `{"reversePeering":"Manual"}`, "warn:spec.reversePeering"},

	// IPPool.
	{KindIPPool, `{"allowedUses":["LoadBalancer"]}`, "warn:spec.allowedUses: stored, but has no effect here: no load balancer addresses are allocated here, and the pool is never used for workloads or tunnels"},
	{KindIPPool, `{"allowedUses":["LoadBalancer"],"nodeSelector":"all()","namespaceSelector":"all()"}`, "warn:spec.allowedUses: stored, but has no effect here: no load balancer"},
	{KindIPPool, `{"allowedUses":["LoadBalancer","Workload"]}`, "spec.allowedUses: LoadBalancer cannot be combined with Workload or Tunnel allowed uses"},
	{KindIPPool, `{"allowedUses":["Tunnel","LoadBalancer"]}`, "spec.allowedUses: LoadBalancer cannot be combined with Workload or Tunnel allowed uses"},
	{KindIPPool, `{"allowedUses":["LoadBalancer"],"vxlanMode":"Always"}`, "spec.allowedUses: LoadBalancer IP pool cannot have IPIP or VXLAN enabled"},
	{KindIPPool, `{"allowedUses":["LoadBalancer"],"ipipMode":"CrossSubnet"}`, "spec.allowedUses: LoadBalancer IP pool cannot have IPIP or VXLAN enabled"},
	{KindIPPool, `{"allowedUses":["LoadBalancer"],"disableBGPExport":true}`, "spec.disableBGPExport: LoadBalancer IP pools cannot disable BGP export"},
	{KindIPPool, `{"allowedUses":["LoadBalancer"],"nodeSelector":"rack == 'a'"}`, "spec.nodeSelector: IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()"},
	{KindIPPool, `{"allowedUses":["loadbalancer"]}`, `spec.allowedUses[0]: unknown use "loadbalancer"`},
	{KindIPPool, `{"namespaceSelector":"all()","allowedUses":["Workload"]}`, "warn:spec.namespaceSelector: stored, but has no effect here: Kubernetes-only"},
	{KindIPPool, `{"namespaceSelector":"all()"}`, "spec.namespaceSelector: an IP pool with allowedUses Tunnel (the default) cannot have a namespaceSelector"},
	{KindIPPool, `{"namespaceSelector":"global()","allowedUses":["Workload"]}`, "spec.namespaceSelector: global() selector is not valid for IPPool namespaceSelector"},
	{KindIPPool, `{"nodeSelector":"global()"}`, "spec.nodeSelector: global() selector is not valid"},
	{KindIPPool, `{"namespaceSelector":"a ==="}`, "spec.namespaceSelector: invalid selector"},
	{KindIPPool, `{"ipipMode":"Always"}`, "warn:spec.ipipMode: stored, but has no effect here: IPIP"},
	{KindIPPool, `{"ipipMode":"always"}`, `spec.ipipMode: invalid ipipMode "always"`},
	{KindIPPool, `{"ipip":{"enabled":true}}`, "spec.ipip: field must not be set"},
	{KindIPPool, `{"nat-outgoing":true}`, "spec.nat-outgoing: field must be false"},
	{KindIPPool, `{"nat-outgoing":false}`, ""},

	// Node.
	{KindNode, `{"wireguard":{"interfaceIPv4Address":"10.0.0.1"}}`, "warn:spec.wireguard: stored, but has no effect here: WireGuard"},
	{KindNode, `{"wireguard":{"interfaceIPv4Address":"fd00::1"}}`, "spec.wireguard.interfaceIPv4Address: invalid IPv4 address"},
	{KindNode, `{"wireguard":{"interfaceIPv4Adress":"10.0.0.1"}}`, `spec.wireguard.interfaceIPv4Adress: unknown field`},
	{KindNode, `{"interfaces":[{"name":"eth0","addresses":["10.0.0.1"]}]}`, "warn:spec.interfaces"},
	{KindNode, `{"bgp":{"ipv4Address":"10.0.0.1/24","ipv4IPIPTunnelAddr":"10.9.0.1"}}`, "warn:spec.bgp.ipv4IPIPTunnelAddr"},

	// WorkloadEndpoint.
	{KindWorkloadEndpoint, `{"qosControls":{"ingressBandwidth":1000000,"egressBurst":20000,"dscp":"AF11"}}`, "warn:spec.qosControls"},
	{KindWorkloadEndpoint, `{"qosControls":{"ingressBandwith":1}}`, "spec.qosControls.ingressBandwith: unknown field"},
	{KindWorkloadEndpoint, `{"ipNATs":[{"internalIP":"192.168.0.7","externalIP":"203.0.113.7"}]}`, "warn:spec.ipNATs"},
	{KindWorkloadEndpoint, `{"ipNATs":[{"internalIP":"192.168.9.9","externalIP":"203.0.113.7"}]}`, "spec.ipNATs[0].internalIP: NAT is not in the endpoint networks"},
	{KindWorkloadEndpoint, `{"allowSpoofedSourcePrefixes":["10.0.0.0/8"]}`, "warn:spec.allowSpoofedSourcePrefixes"},

	// Policies and profiles: Kubernetes-only selectors are accepted,
	// stored and evaluated as Calico does; apply says what they match here.
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"serviceAccounts":{"names":["a"]}}}]}`, "warn:spec.ingress[0].source.serviceAccounts: containers here have no service account (unless their WorkloadEndpoint sets spec.serviceAccountName), so the names match none of them"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"serviceAccounts":{"selector":"all()"}}}]}`, ""},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"serviceAccounts":{"selector":"team == 'a'"}}}]}`, "warn:spec.ingress[0].source.serviceAccounts.selector: label team is never set here: service accounts have only the label projectcalico.org/name"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"serviceAccounts":{"selector":"team =="}}}]}`, "spec.ingress[0].source.serviceAccounts.selector: invalid selector"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"serviceAccounts":{"names":[""]}}}]}`, "spec.ingress[0].source.serviceAccounts.names[0]: must not be empty"},
	{KindGlobalNetworkPolicy, `{"serviceAccountSelector":"projectcalico.org/name == 'api'"}`, "warn:spec.serviceAccountSelector: containers here have no service account"},
	{KindGlobalNetworkPolicy, `{"serviceAccountSelector":"a ="}`, "spec.serviceAccountSelector: invalid selector"},
	{KindGlobalNetworkPolicy, `{"serviceAccountSelector":"global()"}`, "spec.serviceAccountSelector: global() can only be used in an EntityRule namespaceSelector"},
	{KindNetworkPolicy, `{"serviceAccountSelector":"all()"}`, "warn:spec.serviceAccountSelector: containers here have no service account (unless their WorkloadEndpoint sets spec.serviceAccountName), so all() selects none of them"},
	{KindNetworkPolicy, `{"serviceAccountSelector":"!has(projectcalico.org/name)"}`, "warn:spec.serviceAccountSelector: containers here have no service account (unless their WorkloadEndpoint sets spec.serviceAccountName): they match this selector"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","destination":{"serviceAccounts":{"selector":"projectcalico.org/name == 'a'"}}}]}`, "warn:spec.egress[0].destination.serviceAccounts: containers here have no service account (unless their WorkloadEndpoint sets spec.serviceAccountName), so this selector matches none of them"},
	{KindGlobalNetworkPolicy, `{"namespaceSelector":"projectcalico.org/name == 'prod'"}`, ""},
	{KindGlobalNetworkPolicy, `{"namespaceSelector":"env == 'prod'"}`, "warn:spec.namespaceSelector: label env is never set here: namespaces have only the label projectcalico.org/name"},
	{KindGlobalNetworkPolicy, `{"namespaceSelector":"env in {"}`, "spec.namespaceSelector: invalid selector"},
	{KindGlobalNetworkPolicy, `{"namespaceSelector":"global()"}`, "spec.namespaceSelector: global() can only be used in an EntityRule namespaceSelector"},
	{KindNetworkPolicy, `{"namespaceSelector":"all()"}`, "spec.namespaceSelector: not a field of NetworkPolicy (GlobalNetworkPolicy only)"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","destination":{"namespaceSelector":"global()"}}]}`, ""},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","destination":{"namespaceSelector":"global() || a == 'b'"}}]}`, "spec.egress[0].destination.namespaceSelector: global() must be the whole namespaceSelector"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","destination":{"namespaceSelector":"a ="}}]}`, "spec.egress[0].destination.namespaceSelector: invalid selector"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","destination":{"services":{"name":"web"}}}]}`, "warn:spec.egress[0].destination.services: there are no Kubernetes Services here, so this rule matches no traffic"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","destination":{"services":{"namespace":"x"}}}]}`, "spec.egress[0].destination.services.name: must specify a service name"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","destination":{"services":{"name":"web"},"selector":"a == 'b'"}}]}`, "spec.egress[0].destination.services: cannot specify selector and services on the same side of a rule"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","destination":{"services":{"name":"web"},"nets":["10.0.0.0/8"]}}]}`, "spec.egress[0].destination.services: cannot specify nets and services"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","protocol":"TCP","destination":{"services":{"name":"web"},"ports":[80]}}]}`, "spec.egress[0].destination.ports: cannot specify ports with a service selector"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","source":{"services":{"name":"web"}}}]}`, "spec.egress[0].source.services: not allowed in egress rule source"},
	{KindNetworkPolicy, `{"ingress":[{"action":"Allow","destination":{"services":{"name":"web"}}}]}`, "spec.ingress[0].destination.services: not allowed in ingress rule destination"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"services":{"name":"web"}}}]}`, "spec.ingress[0].source.services.namespace: must specify a namespace"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","http":{"methods":["GET"]}}]}`, "warn:spec.ingress[0].http: stored; without an application layer proxy the HTTP request cannot be checked here, so this Allow rule matches no traffic"},
	{KindNetworkPolicy, `{"ingress":[{"action":"Deny","http":{"methods":["GET","PUT"],"paths":[{"exact":"/a"},{"prefix":"/b/"}]}}]}`, "warn:spec.ingress[0].http: stored; without an application layer proxy the HTTP request cannot be checked here, so this Deny rule denies all its L3/L4 traffic"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Pass","http":{"paths":[{"prefix":"/"}]}}]}`, "warn:spec.ingress[0].http: stored; without an application layer proxy the HTTP request cannot be checked here, so this Pass rule denies all its L3/L4 traffic"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Log","http":{"methods":["GET"]}}]}`, "warn:spec.ingress[0].http: stored; without an application layer proxy the HTTP request cannot be checked here, so this Log rule matches no traffic"},
	{KindNetworkPolicy, `{"egress":[{"action":"Allow","http":{"methods":["GET"]}}]}`, "spec.egress[0].http: not allowed in egress rules"},
	{KindGlobalNetworkPolicy, `{"egress":[{"action":"Deny","http":{"methods":["GET"]}}]}`, "spec.egress[0].http: not allowed in egress rules"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","http":{"methods":["GET","GET"]}}]}`, "spec.ingress[0].http.methods[1]: method \"GET\" is listed more than once"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","http":{"paths":[{"exact":"/a","prefix":"/b"}]}}]}`, "spec.ingress[0].http.paths[0]: invalid path match: both exact and prefix are set"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","http":{"paths":[{}]}}]}`, "spec.ingress[0].http.paths[0]: invalid path match: either exact or prefix must be set"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","http":{"paths":[{"exact":"a"}]}}]}`, "spec.ingress[0].http.paths[0]: invalid path \"a\": must start with /"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","http":{"paths":[{"prefix":"/a?b"}]}}]}`, "spec.ingress[0].http.paths[0]: invalid path \"/a?b\""},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","http":{"paths":[{"exact":"/a b"}]}}]}`, "spec.ingress[0].http.paths[0]: invalid path \"/a b\""},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","http":{"paths":[{"regex":"/a"}]}}]}`, "spec.ingress[0].http.paths[0].regex"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","metadata":{"annotations":{"owner":"me"}}}]}`, ""},
	{KindGlobalNetworkPolicy, `{"performanceHints":["AssumeNeededOnEveryNode"]}`, ""},
	{KindNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"notNets":["10.0.0.0/8"]}}]}`, ""},
	{KindNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"notNets":["0.0.0.0/0"]}}]}`, "spec.ingress[0].source.notNets[0]: catch-all CIDR 0.0.0.0/0 in notNets matches no traffic"},
	{KindGlobalNetworkPolicy, `{"egress":[{"action":"Deny","destination":{"notNets":["::/0"]}}]}`, "spec.egress[0].destination.notNets[0]: catch-all CIDR ::/0"},
	{KindGlobalNetworkPolicy, `{"selector":"global()"}`, "spec.selector: global() can only be used in an EntityRule namespaceSelector"},
	{KindProfile, `{"ingress":[{"action":"Allow","source":{"selector":"global()"}}]}`, "spec.ingress[0].source.selector: global() can only be used"},
	{KindGlobalNetworkPolicy, `{"ingress":[{"action":"Allow","source":{"nets":["0.0.0.0/0"]}}]}`, ""},
	{KindProfile, `{"labelsToApply":{"team":"a"}}`, ""},
	{KindHostEndpoint, `{"expectedIPs":["10.0.0.1"]}`, ""},
	{KindBGPFilter, `{"exportV4":[{"action":"Accept","cidr":"10.0.0.0/8","matchOperator":"In"}]}`, ""},
	{KindBGPFilter, `{"importV4":[{"action":"Reject","interface":"eth*"}]}`, "warn:spec.importV4[0].interface: stored; the embedded BGP speaker does not know which interface a route uses, so this Reject rule rejects every route its other fields match, on any interface"},
	{KindBGPFilter, `{"exportV6":[{"action":"Accept","interface":"cali*","cidr":"fd00::/8","matchOperator":"In"}]}`, "warn:spec.exportV6[0].interface: stored; the embedded BGP speaker does not know which interface a route uses, so this Accept rule matches no route here"},
	{KindBGPFilter, `{"importV4":[{"action":"Accept","interface":"*"}]}`, ""},
	{KindBGPFilter, `{"importV4":[{"action":"Reject","interface":"eth0/1"}]}`, `spec.importV4[0].interface: invalid interface "eth0/1"`},
}

func buildManifest(t *testing.T, kind, spec string) ([]byte, map[string]any) {
	t.Helper()
	b, ok := baseSpecs[kind]
	if !ok {
		t.Fatalf("no base spec for %s", kind)
	}
	var base, add map[string]any
	if err := json.Unmarshal([]byte(b.spec), &base); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(spec), &add); err != nil {
		t.Fatalf("case spec %s: %v", spec, err)
	}
	for k, v := range add {
		if v == nil {
			// null removes a field of the base spec.
			delete(base, k)
			continue
		}
		base[k] = v
	}
	md := map[string]any{"name": b.name}
	if b.ns != "" {
		md["namespace"] = b.ns
	}
	doc := map[string]any{"apiVersion": APIVersion, "kind": kind, "metadata": md, "spec": base}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out, base
}

func TestFieldTable(t *testing.T) {
	for i, tc := range fieldCases {
		name := tc.kind + "/" + tc.spec
		data, spec := buildManifest(t, tc.kind, tc.spec)
		docs, err := DecodeAndValidate(data)
		want, isWarn := strings.CutPrefix(tc.want, "warn:")
		switch {
		case tc.want != "" && !isWarn:
			if err == nil {
				t.Errorf("case %d %s: accepted, want error %q", i, name, tc.want)
			} else if !strings.Contains(err.Error(), want) {
				t.Errorf("case %d %s: error %q lacks %q", i, name, err, want)
			}
			continue
		case err != nil:
			t.Errorf("case %d %s: refused: %v", i, name, err)
			continue
		}
		warns := strings.Join(docs[0].Warnings, "\n")
		if isWarn && !strings.Contains(warns, want) {
			t.Errorf("case %d %s: warnings %q lack %q", i, name, warns, want)
		}
		if !isWarn && warns != "" {
			t.Errorf("case %d %s: unexpected warnings %q", i, name, warns)
		}
		checkRoundTrip(t, name, docs[0].Resource, spec)
	}
}

// checkRoundTrip stores r as the CLI does, reads it back, and checks that
// what a client sees has every field of spec with its value.
func checkRoundTrip(t *testing.T, name string, r Resource, spec map[string]any) {
	t.Helper()
	stored, err := EncodeStoredApply(r, nil)
	if err != nil {
		t.Fatalf("%s: encode: %v", name, err)
	}
	back, err := DecodeStored(r.Kind(), StoredName(r.Kind(), r.GetObjectMeta().Name), stored, 7)
	if err != nil {
		t.Fatalf("%s: decode stored: %v", name, err)
	}
	out, err := MarshalResource(back)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec map[string]any `json:"spec"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range spec {
		if !reflect.DeepEqual(dropEmpty(got.Spec[k]), v) {
			t.Errorf("%s: round trip changed spec.%s: %#v, want %#v\nstored: %s", name, k, got.Spec[k], v, stored)
		}
	}
	// And the value read back validates and re-encodes to the same.
	again, err := EncodeStored(back, stored)
	if err != nil {
		t.Fatal(err)
	}
	if !SameStored(r.Kind(), again, stored) {
		t.Errorf("%s: re-encoding the value read back changed it:\n%s\n%s", name, stored, again)
	}
}

// An update from a manifest drops table fields the manifest leaves out,
// keeps fields nobody knows, and a programmatic update keeps everything.
func TestExtraFieldsOnUpdate(t *testing.T) {
	prev := []byte(`{"kind":"FelixConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},
		"spec":{"bpfEnabled":true,"wireguardEnabled":true,"someFutureField":"x","logSeverityScreen":"Info"}}`)
	docs, err := DecodeAndValidate([]byte(`{"apiVersion":"projectcalico.org/v3","kind":"FelixConfiguration","metadata":{"name":"default"},"spec":{"bpfEnabled":false}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeStoredApply(docs[0].Resource, prev)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Spec map[string]any }
	_ = json.Unmarshal(b, &got)
	if got.Spec["bpfEnabled"] != false || got.Spec["wireguardEnabled"] != nil || got.Spec["someFutureField"] != "x" || got.Spec["logSeverityScreen"] != nil {
		t.Errorf("apply over stored: %s", b)
	}

	// Read, change a Go field, write back (as the agent does): nothing lost.
	r, err := DecodeStored(KindFelixConfiguration, "default", prev, 3)
	if err != nil {
		t.Fatal(err)
	}
	r.(*FelixConfiguration).Spec.LogSeverityScreen = "Debug"
	b, err = EncodeStored(r, prev)
	if err != nil {
		t.Fatal(err)
	}
	got.Spec = nil
	_ = json.Unmarshal(b, &got)
	if got.Spec["bpfEnabled"] != true || got.Spec["wireguardEnabled"] != true || got.Spec["someFutureField"] != "x" || got.Spec["logSeverityScreen"] != "Debug" {
		t.Errorf("read-modify-write: %s", b)
	}
	if x := ExtraFields(r); strings.Join(x, ",") != "spec.bpfEnabled,spec.someFutureField,spec.wireguardEnabled" {
		t.Errorf("ExtraFields = %v", x)
	}

	// null is no value: not stored, not shown.
	docs, err = DecodeAndValidate([]byte(`{"apiVersion":"projectcalico.org/v3","kind":"FelixConfiguration","metadata":{"name":"default"},"spec":{"bpfEnabled":null,"wireguardEnabled":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := MarshalResource(docs[0].Resource); strings.Contains(string(b), "bpfEnabled") || !strings.Contains(string(b), `"wireguardEnabled":true`) {
		t.Errorf("null field: %s", b)
	}
}

// Every kind's base spec is valid without warnings (the cases above rely
// on it), and every field entry of the table belongs to a kind.
func TestFieldTableBases(t *testing.T) {
	for kind := range baseSpecs {
		data, _ := buildManifest(t, kind, `{}`)
		docs, err := DecodeAndValidate(data)
		if err != nil {
			t.Errorf("%s base: %v", kind, err)
			continue
		}
		if len(docs[0].Warnings) > 0 {
			t.Errorf("%s base warns: %v", kind, docs[0].Warnings)
		}
	}
}

// dropEmpty removes empty objects ("source": {} of a rule, which Calico
// writes too) from JSON data.
func dropEmpty(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if m, ok := e.(map[string]any); ok && len(m) == 0 {
				continue
			}
			out[k] = dropEmpty(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = dropEmpty(e)
		}
		return out
	}
	return v
}

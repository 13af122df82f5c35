package api

import (
	"fmt"
	"regexp"
	"strings"
)

// The fields of Calico's v3 schema that have no Go field here (see
// fields.go), and the status of Go fields that do not simply act.

// Why a field has no effect here.
const (
	whyBPF        = "the eBPF dataplane is not available: this node programs nftables"
	whyWireGuard  = "WireGuard encryption is not available here"
	whyIptables   = "this dataplane is nftables, not iptables"
	whyNftFixed   = "the nftables dataplane here is always on and its actions and marks are fixed"
	whyIPIP       = "IPIP is not available here: use VXLAN"
	whyXDP        = "XDP acceleration is not available here"
	whyFlowLogs   = "Calico's flow log pipeline (Goldmane) is not available here: see `calico node` flow logs"
	whyWindows    = "Windows nodes are not supported"
	whyOpenStack  = "there is no OpenStack integration here"
	whyKube       = "Kubernetes-only: there is no Kubernetes here"
	whyAWS        = "there is no AWS integration here"
	whyDebug      = "Felix's debugging settings have no counterpart in this node agent"
	whyUsage      = "this project reports no usage"
	whyIPv6Auto   = "IPv6 is programmed whenever IPv6 pools or addresses exist"
	whyFelix      = "the node agent does not implement this Felix setting"
	whyServices   = "there are no Kubernetes services here to advertise"
	whyBGPExtra   = "the embedded BGP speaker does not implement it"
	whySASelector = "evaluated as Calico does against the endpoint's service account, whose only label here is projectcalico.org/name = spec.serviceAccountName; containers here have none unless their WorkloadEndpoint sets it"
	whyNSSelector = "evaluated as Calico does against the endpoint's namespace, whose only label here is projectcalico.org/name = its name (there are no Namespace resources)"
)

// Why fields of issue 12 item 1 are stored without (full) effect.
const (
	whyLoadBalancer = "no load balancer addresses are allocated here, and the pool is never used for workloads or tunnels"
	whyIfacePrefix  = "workload interfaces here are always named cali*, and the dataplane always matches that prefix; another value is stored only"
)

var (
	ifaceFilterRe    = regexp.MustCompile(`^[a-zA-Z0-9:._+-]{1,15}$`)
	prometheusHostRe = regexp.MustCompile(`^[a-zA-Z0-9:._+-]{1,64}$`)
	htoNameRe        = regexp.MustCompile(`^[a-zA-Z0-9_ -]+$`)
	standardCommRe   = regexp.MustCompile(`^(\d+):(\d+)$`)
	largeCommRe      = regexp.MustCompile(`^(\d+):(\d+):(\d+)$`)
	dns1123LabelRe   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

const (
	ifaceWhat          = "1-15 letters, digits, '_', '.' or '-'"
	ifaceFilterWhat    = "1-15 letters, digits or : . _ + - ('+' is a wildcard)"
	prometheusHostWhat = "1-64 letters, digits or : . _ + -"
)

func isOpenstackRegion(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	const maxLen = 63 - len("openstack-region-")
	switch {
	case len(s) > maxLen:
		return fe(path, "is too long (at most %d characters)", maxLen)
	case s != "" && !dns1123LabelRe.MatchString(s):
		return fe(path, "must be a valid DNS label (lower case letters, digits and '-')")
	}
	return nil
}

var cOpenstackRegion = check{isOpenstackRegion, "DNS label"}

// cNetV4 is an IPv4 address or CIDR.
func isNetV4(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	p, err := ParseAddrOrNet(s)
	switch {
	case err != nil:
		return fe(path, "has invalid CIDR(s): %q", s)
	case !p.Addr().Is4():
		return fe(path, "has invalid IPv6 CIDR %q: want IPv4", s)
	}
	return nil
}

var cNetV4 = check{isNetV4, "IPv4 address or CIDR"}

func isKubeNodePortRanges(v any, path string) *FieldError {
	if err := cList(cPort).run(v, path); err != nil {
		return err
	}
	list := v.([]any)
	if len(list) > 7 {
		return fe(path, "node port ranges list is too long (max 7)")
	}
	for i, e := range list {
		if s, ok := e.(string); ok {
			if p, err := ParsePort(s); err == nil && p.PortName != "" {
				return fe(idx(path, i), "node port ranges should not contain named ports")
			}
		}
	}
	return nil
}

var cKubeNodePortRanges = check{isKubeNodePortRanges, "list of at most 7 port ranges"}

var healthTimeoutOverride = obj{
	fields:   map[string]check{"name": cMatch(htoNameRe, "letters, digits, '_', ' ' or '-'"), "timeout": cDuration},
	required: []string{"name"},
	whole: func(m map[string]any, path string) *FieldError {
		if strOf(m["name"]) == "" || !htoNameRe.MatchString(strOf(m["name"])) {
			return fe(join(path, "name"), "name should match %s", htoNameRe)
		}
		if d := strOf(m["timeout"]); strings.HasPrefix(d, "-") {
			return fe(join(path, "timeout"), "timeout should not be negative")
		}
		return nil
	},
}

var routeTableRange = obj{
	fields: map[string]check{"min": cInt(minI64, maxI64), "max": cInt(minI64, maxI64)},
	whole: func(m map[string]any, path string) *FieldError {
		lo, hi := intOf(m["min"]), intOf(m["max"])
		if lo < 1 || hi < lo || hi > 250 {
			return fe(path, "must be a range of route table indices within 1..250")
		}
		return nil
	},
}

var routeTableIDRange = obj{
	fields: map[string]check{"min": cInt(minI64, maxI64), "max": cInt(minI64, maxI64)},
	whole: func(m map[string]any, path string) *FieldError {
		lo, hi := intOf(m["min"]), intOf(m["max"])
		switch {
		case lo > hi:
			return fe(path, "min value cannot be greater than max value")
		case lo <= 0:
			return fe(path, "cannot target indices < 1")
		case hi > 0xffffffff:
			return fe(path, "max index too high")
		}
		return nil
	},
}

var bpfConntrackTimeouts = obj{fields: map[string]check{
	"creationGracePeriod": cString, "tcpSynSent": cString, "tcpEstablished": cString, "tcpFinsSeen": cString,
	"tcpResetSeen": cString, "udpTimeout": cString, "genericTimeout": cString, "icmpTimeout": cString,
}}

var secretKeyRef = obj{
	fields:   map[string]check{"name": cString, "key": cString, "optional": cBool},
	required: []string{"key"},
}

var bgpPassword = obj{fields: map[string]check{"secretKeyRef": secretKeyRef.c("object {name, key, optional}")}}

func isCIDRBlock(v any, path string) *FieldError {
	return obj{fields: map[string]check{"cidr": cNet}}.validate(v, path)
}

var cidrBlock = check{isCIDRBlock, "object {cidr}"}

// cCommunity checks a BGP community value: "aa:nn" with 16-bit parts or
// "aa:nn:mm" (large) with 32-bit parts. ok is false when v is neither form.
func checkCommunity(s, path string) (ok bool, err *FieldError) {
	bits := 16
	switch {
	case standardCommRe.MatchString(s):
	case largeCommRe.MatchString(s):
		bits = 32
	default:
		return false, nil
	}
	for _, part := range strings.Split(s, ":") {
		var n uint64
		if _, e := fmt.Sscanf(part, "%d", &n); e != nil || n>>bits != 0 {
			return true, fe(path, "invalid community value, expected %d bit value", bits)
		}
	}
	return true, nil
}

var community = obj{
	fields:   map[string]check{"name": cName, "value": cString},
	required: []string{"name", "value"},
}

var prefixAdvertisement = obj{
	fields:   map[string]check{"cidr": cNet, "communities": cList(cString)},
	required: []string{"cidr", "communities"},
}

var nodeWireguard = obj{fields: map[string]check{"interfaceIPv4Address": cIP(4), "interfaceIPv6Address": cIP(6)}}

var nodeInterface = obj{fields: map[string]check{"name": cName, "addresses": cList(cString)}}

func isDSCP(v any, path string) *FieldError {
	switch x := v.(type) {
	case string:
		return nil
	default:
		return cInt(0, 63).run(x, path)
	}
}

var cDSCP = check{isDSCP, "DSCP (0-63 or name)"}

var qosControls = obj{fields: map[string]check{
	"ingressBandwidth": cInt(minI64, maxI64), "ingressBurst": cInt(minI64, maxI64), "ingressPeakrate": cInt(minI64, maxI64),
	"ingressMinburst": cInt(minI64, maxI64), "egressBandwidth": cInt(minI64, maxI64), "egressBurst": cInt(minI64, maxI64),
	"egressPeakrate": cInt(minI64, maxI64), "egressMinburst": cInt(minI64, maxI64), "ingressPacketRate": cInt(minI64, maxI64),
	"ingressPacketBurst": cInt(minI64, maxI64), "egressPacketRate": cInt(minI64, maxI64), "egressPacketBurst": cInt(minI64, maxI64),
	"ingressMaxConnections": cInt(minI64, maxI64), "egressMaxConnections": cInt(minI64, maxI64), "dscp": cDSCP,
}}

// cMustBeNil refuses any value (Calico's deprecated v1 fields).
func cMustBeNil(use string) check {
	return check{desc: "must not be set (use " + use + ")", fn: func(v any, path string) *FieldError {
		return fe(path, "field must not be set: it is the deprecated v1 form, use %s", use)
	}}
}

func cMustBeFalse(use string) check {
	return check{desc: "false (use " + use + ")", fn: func(v any, path string) *FieldError {
		if err := cBool.run(v, path); err != nil {
			return err
		}
		if v.(bool) {
			return fe(path, "field must be false: it is the deprecated v1 form, use %s", use)
		}
		return nil
	}}
}

func init() {
	extraFields(IPPoolSpec{},
		Field{Name: "namespaceSelector", Check: cSelector, Status: NoEffect, Why: "Kubernetes-only: containers here have no namespace labels, so the pool serves every namespace"},
		Field{Name: "ipip", Check: cMustBeNil("ipipMode"), Status: Refused, Why: "refused by Calico too: the deprecated v1 form of ipipMode"},
		Field{Name: "nat-outgoing", Check: cMustBeFalse("natOutgoing"), Status: Refused, Why: "refused by Calico too unless false: the deprecated v1 form of natOutgoing"},
		Field{Name: "ipipMode", Status: NoEffect, Why: "Always and CrossSubnet: " + whyIPIP + " (the pool is routed without encapsulation)"},
		Field{Name: "allowedUses", Status: Acts, Why: "IPAM gives workload addresses only from Workload pools and tunnel addresses only from Tunnel pools; LoadBalancer (alone, as Calico requires) is stored, but " + whyLoadBalancer},
	)
	extraFields(BGPConfigurationSpec{},
		Field{Name: "serviceLoadBalancerIPs", Check: cList(cidrBlock), Status: NoEffect, Why: whyServices},
		Field{Name: "serviceExternalIPs", Check: cList(cidrBlock), Status: NoEffect, Why: whyServices},
		Field{Name: "serviceClusterIPs", Check: cList(cidrBlock), Status: NoEffect, Why: whyServices},
		Field{Name: "serviceLoadBalancerAggregation", Check: cString, Status: NoEffect, Why: whyServices},
		Field{Name: "communities", Check: cList(community.c("object {name, value}")), Status: NoEffect, Why: whyBGPExtra},
		Field{Name: "prefixAdvertisements", Check: cList(prefixAdvertisement.c("object {cidr, communities}")), Status: NoEffect, Why: whyBGPExtra},
		Field{Name: "nodeMeshPassword", Check: bgpPassword.c("object {secretKeyRef}"), Status: NoEffect, Why: "mesh sessions between nodes are authenticated by the cluster's own credentials; per-peer passwords are set on BGPPeer"},
		Field{Name: "localWorkloadPeeringIPV4", Check: cIP(4), Status: NoEffect, Why: whyBGPExtra},
		Field{Name: "localWorkloadPeeringIPV6", Check: cIP(6), Status: NoEffect, Why: whyBGPExtra},
	)
	extraFields(BGPPeerSpec{},
		Field{Name: "localASNumber", Check: cASNumber, Status: NoEffect, Why: whyBGPExtra},
		Field{Name: "nextHopMode", Check: cString, Status: NoEffect, Why: "the embedded speaker always sets itself as next hop towards peers"},
		Field{Name: "numAllowedLocalASNumbers", Check: cInt(-1<<31, 1<<31-1), Status: NoEffect, Why: whyBGPExtra},
		Field{Name: "reachableBy", Check: cAnyIP, Status: NoEffect, Why: whyBGPExtra},
		Field{Name: "localWorkloadSelector", Check: cSelector, Status: NoEffect, Why: whyBGPExtra},
		Field{Name: "reversePeering", Check: cString, Status: NoEffect, Why: whyBGPExtra},
		Field{Name: "keepOriginalNextHop", Status: NoEffect, Why: "the embedded speaker always sets itself as next hop towards peers"},
	)
	extraFields(NodeSpec{},
		Field{Name: "wireguard", Check: nodeWireguard.c("object {interfaceIPv4Address, interfaceIPv6Address}"), Status: NoEffect, Why: whyWireGuard},
		Field{Name: "interfaces", Check: cList(nodeInterface.c("object {name, addresses}")), Status: NoEffect, Why: "written by Calico's node for its own use; not read here"},
	)
	extraFields(NodeStatus{},
		Field{Name: "wireguardPublicKey", Check: cString, Status: NoEffect, Why: whyWireGuard},
		Field{Name: "wireguardPublicKeyV6", Check: cString, Status: NoEffect, Why: whyWireGuard},
		Field{Name: "podCIDRs", Check: cList(cString), Status: NoEffect, Why: whyKube},
	)
	extraFields(NodeBGPSpec{},
		Field{Name: "ipv4IPIPTunnelAddr", Status: NoEffect, Why: whyIPIP},
	)
	extraFields(WorkloadEndpointSpec{},
		Field{Name: "qosControls", Check: qosControls.c("object of limits"), Status: NoEffect, Why: "bandwidth, packet-rate and connection limits are not programmed here"},
		Field{Name: "ipNATs", Status: NoEffect, Why: "1:1 NAT (floating IPs) is not available in this dataplane"},
		Field{Name: "allowSpoofedSourcePrefixes", Status: NoEffect, Why: "workloads may only send from their own addresses here"},
		Field{Name: "ports", Status: Acts, Why: "named ports that policy rules match by name; a hostPort publishes the port on the host"},
	)
	extraFields(PolicySpec{},
		Field{Name: "tier", Status: Acts, Why: "the policy's tier (default: default); see Tier"},
		Field{Name: "doNotTrack", Status: Acts, Why: "GlobalNetworkPolicy only, with applyOnForward: untracked host endpoint policy (see HostEndpoint)"},
		Field{Name: "preDNAT", Status: Acts, Why: "GlobalNetworkPolicy only, with applyOnForward, ingress only: judged before DNAT (see HostEndpoint)"},
		Field{Name: "applyOnForward", Status: Acts, Why: "GlobalNetworkPolicy only: host endpoint policy also judges forwarded traffic (see HostEndpoint)"},
		Field{Name: "serviceAccountSelector", Status: Acts, Why: whySASelector + ": the policy applies to no endpoint without one"},
		Field{Name: "namespaceSelector", Status: Acts, Why: "GlobalNetworkPolicy only: " + whyNSSelector},
		Field{Name: "performanceHints", Status: NoEffect, Why: "policies are always computed for every node"},
	)
	extraFields(EntityRule{},
		Field{Name: "ports", Status: Acts, Why: "numbers, ranges and named ports (resolved against the spec.ports of the workload endpoints this side selects, in named-port sets)"},
		Field{Name: "notPorts", Status: Acts, Why: "numbers, ranges and named ports (as ports)"},
		Field{Name: "namespaceSelector", Status: Acts, Why: whyNSSelector + "; global() selects only non-namespaced things (GlobalNetworkSets, host endpoints)"},
		Field{Name: "serviceAccounts", Status: Acts, Why: "names match spec.serviceAccountName; " + whySASelector},
		Field{Name: "services", Status: Acts, Why: "validated as Calico does; there are no Kubernetes Services here, so the rule matches no traffic"},
	)
	extraFields(Rule{},
		Field{Name: "http", Status: Acts, Why: "validated as Calico does (ingress rules only); there is no application layer proxy, so it fails closed: an Allow or Log rule with http matches no traffic, a Deny or Pass rule with http denies all its L3/L4 traffic"},
		Field{Name: "metadata", Status: NoEffect, Why: "rule annotations are kept for people and tools; they do not change matching"},
	)
	extraFields(FelixConfigurationSpec{}, felixFields...)
	extraFields(BGPFilterRule{},
		Field{Name: "interface", Status: Acts, Why: "the embedded BGP speaker does not know which interface a route uses, so it fails closed: an Accept rule with an interface (other than *) matches no route, a Reject rule rejects its match on every interface"},
	)
	extraFields(SecretKeySelector{},
		Field{Name: "optional", Status: Acts, Why: "true: a missing secret file means a session without a password, as in Calico (apply warns, the node reports it); an empty or unreadable file still leaves the peer out"},
	)
	extraFields(FelixConfigurationSpec{},
		Field{Name: "iptablesRefreshInterval", Status: NoEffect, Why: whyIptables + ": set nftablesRefreshInterval"},
		Field{Name: "interfacePrefix", Status: NoEffect, Why: whyIfacePrefix},
	)
}

// felixFields are FelixConfiguration fields without a Go field (Calico
// v3.31): all stored, none acts here.
var felixFields = []Field{
	{Name: "useInternalDataplaneDriver", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "dataplaneDriver", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "dataplaneWatchdogTimeout", Check: cDuration, Status: NoEffect, Why: whyFelix},
	{Name: "ipv6Support", Check: cBool, Status: NoEffect, Why: whyIPv6Auto},
	{Name: "interfaceRefreshInterval", Check: cDuration, Status: NoEffect, Why: whyFelix},
	{Name: "iptablesPostWriteCheckInterval", Check: cDuration, Status: NoEffect, Why: whyIptables},
	{Name: "iptablesLockFilePath", Check: cString, Status: NoEffect, Why: whyIptables},
	{Name: "iptablesLockTimeout", Check: cDuration, Status: NoEffect, Why: whyIptables},
	{Name: "iptablesLockProbeInterval", Check: cDuration, Status: NoEffect, Why: whyIptables},
	{Name: "featureDetectOverride", Check: cKeyValueList, Status: NoEffect, Why: whyFelix},
	{Name: "featureGates", Check: cKeyValueList, Status: NoEffect, Why: whyFelix},
	{Name: "ipsetsRefreshInterval", Check: cDuration, Status: NoEffect, Why: whyIptables},
	{Name: "maxIpsetSize", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyIptables},
	{Name: "iptablesBackend", Check: cEnum("Auto", "NFT", "Legacy"), Status: NoEffect, Why: whyIptables},
	{Name: "xdpRefreshInterval", Check: cDuration, Status: NoEffect, Why: whyXDP},
	{Name: "netlinkTimeout", Check: cDuration, Status: NoEffect, Why: whyFelix},
	{Name: "metadataAddr", Check: cString, Status: NoEffect, Why: whyOpenStack},
	{Name: "metadataPort", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyOpenStack},
	{Name: "openstackRegion", Check: cOpenstackRegion, Status: NoEffect, Why: whyOpenStack},
	{Name: "interfaceExclude", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "chainInsertMode", Check: cString, Status: NoEffect, Why: whyIptables},
	{Name: "iptablesFilterAllowAction", Check: cEnum("Accept", "Return"), Status: NoEffect, Why: whyIptables},
	{Name: "iptablesMangleAllowAction", Check: cEnum("Accept", "Return"), Status: NoEffect, Why: whyIptables},
	{Name: "iptablesFilterDenyAction", Check: cEnum("Drop", "Reject"), Status: NoEffect, Why: whyIptables},
	{Name: "logPrefix", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "logActionRateLimit", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "logActionRateLimitBurst", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyFelix},
	{Name: "logFilePath", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "logSeverityFile", Check: cLogLevel, Status: NoEffect, Why: whyFelix},
	{Name: "logSeveritySys", Check: cLogLevel, Status: NoEffect, Why: whyFelix},
	{Name: "logDebugFilenameRegex", Check: cRegexp, Status: NoEffect, Why: whyFelix},
	{Name: "ipipEnabled", Check: cBool, Status: NoEffect, Why: whyIPIP},
	{Name: "ipipMTU", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyIPIP},
	{Name: "allowVXLANPacketsFromWorkloads", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "allowIPIPPacketsFromWorkloads", Check: cBool, Status: NoEffect, Why: whyIPIP},
	{Name: "reportingInterval", Check: cDuration, Status: NoEffect, Why: whyFelix},
	{Name: "reportingTTL", Check: cDuration, Status: NoEffect, Why: whyFelix},
	{Name: "endpointReportingEnabled", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "endpointReportingDelay", Check: cDuration, Status: NoEffect, Why: whyFelix},
	{Name: "endpointStatusPathPrefix", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "iptablesMarkMask", Check: cInt(0, 4294967295), Status: NoEffect, Why: whyIptables},
	{Name: "disableConntrackInvalidCheck", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "healthEnabled", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "healthHost", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "healthTimeoutOverrides", Check: cList(healthTimeoutOverride.c("object {name, timeout}")), Status: NoEffect, Why: whyFelix},
	{Name: "prometheusMetricsHost", Check: cMatch(prometheusHostRe, prometheusHostWhat), Status: NoEffect, Why: whyFelix},
	{Name: "prometheusGoMetricsEnabled", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "prometheusProcessMetricsEnabled", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "prometheusWireGuardMetricsEnabled", Check: cBool, Status: NoEffect, Why: whyWireGuard},
	{Name: "kubeNodePortRanges", Check: cKubeNodePortRanges, Status: NoEffect, Why: whyKube},
	{Name: "policySyncPathPrefix", Check: cString, Status: NoEffect, Why: whyKube},
	{Name: "usageReportingEnabled", Check: cBool, Status: NoEffect, Why: whyUsage},
	{Name: "usageReportingInitialDelay", Check: cDuration, Status: NoEffect, Why: whyUsage},
	{Name: "usageReportingInterval", Check: cDuration, Status: NoEffect, Why: whyUsage},
	{Name: "natPortRange", Check: cPort, Status: NoEffect, Why: whyFelix},
	{Name: "natOutgoingAddress", Check: cIP(4), Status: NoEffect, Why: whyFelix},
	{Name: "natOutgoingExclusions", Check: cEnum("IPPoolsOnly", "IPPoolsAndHostIPs"), Status: NoEffect, Why: whyFelix},
	{Name: "deviceRouteSourceAddress", Check: cIP(4), Status: NoEffect, Why: whyFelix},
	{Name: "deviceRouteSourceAddressIPv6", Check: cIP(6), Status: NoEffect, Why: whyFelix},
	{Name: "deviceRouteProtocol", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyFelix},
	{Name: "removeExternalRoutes", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "programClusterRoutes", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "ipForwarding", Check: cString, Status: NoEffect, Why: whyFelix},
	{Name: "externalNodesList", Check: cList(cNetV4), Status: NoEffect, Why: whyFelix},
	{Name: "debugMemoryProfilePath", Check: cString, Status: NoEffect, Why: whyDebug},
	{Name: "debugDisableLogDropping", Check: cBool, Status: NoEffect, Why: whyDebug},
	{Name: "debugSimulateCalcGraphHangAfter", Check: cDuration, Status: NoEffect, Why: whyDebug},
	{Name: "debugSimulateDataplaneHangAfter", Check: cDuration, Status: NoEffect, Why: whyDebug},
	{Name: "debugSimulateDataplaneApplyDelay", Check: cDuration, Status: NoEffect, Why: whyDebug},
	{Name: "debugHost", Check: cString, Status: NoEffect, Why: whyDebug},
	{Name: "debugPort", Check: cInt(0, 65535), Status: NoEffect, Why: whyDebug},
	{Name: "iptablesNATOutgoingInterfaceFilter", Check: cMatch(ifaceFilterRe, ifaceFilterWhat), Status: NoEffect, Why: whyIptables},
	{Name: "sidecarAccelerationEnabled", Check: cBool, Status: NoEffect, Why: whyKube},
	{Name: "xdpEnabled", Check: cBool, Status: NoEffect, Why: whyXDP},
	{Name: "genericXDPEnabled", Check: cBool, Status: NoEffect, Why: whyXDP},
	{Name: "nftablesMode", Check: cString, Status: NoEffect, Why: whyNftFixed},
	{Name: "nftablesFilterAllowAction", Check: cEnum("Accept", "Return"), Status: NoEffect, Why: whyNftFixed},
	{Name: "nftablesMangleAllowAction", Check: cEnum("Accept", "Return"), Status: NoEffect, Why: whyNftFixed},
	{Name: "nftablesFilterDenyAction", Check: cEnum("Drop", "Reject"), Status: NoEffect, Why: whyNftFixed},
	{Name: "nftablesMarkMask", Check: cInt(0, 4294967295), Status: NoEffect, Why: whyNftFixed},
	{Name: "bpfEnabled", Check: cBool, Status: NoEffect, Why: whyBPF},
	{Name: "bpfDisableUnprivileged", Check: cBool, Status: NoEffect, Why: whyBPF},
	{Name: "bpfJITHardening", Check: cEnum("Auto", "Strict"), Status: NoEffect, Why: whyBPF},
	{Name: "bpfLogLevel", Check: cEnum("Debug", "Info", "Off"), Status: NoEffect, Why: whyBPF},
	{Name: "bpfConntrackLogLevel", Check: cEnum("Off", "Debug"), Status: NoEffect, Why: whyBPF},
	{Name: "bpfConntrackMode", Check: cEnum("Auto", "Userspace", "BPFProgram"), Status: NoEffect, Why: whyBPF},
	{Name: "bpfConntrackTimeouts", Check: bpfConntrackTimeouts.c("object of timeouts"), Status: NoEffect, Why: whyBPF},
	{Name: "bpfLogFilters", Check: cStringMap(cMatch(interfaceRe, ifaceWhat)), Status: NoEffect, Why: whyBPF},
	{Name: "bpfCTLBLogFilter", Check: cString, Status: NoEffect, Why: whyBPF},
	{Name: "bpfDataIfacePattern", Check: cRegexp, Status: NoEffect, Why: whyBPF},
	{Name: "bpfL3IfacePattern", Check: cRegexp, Status: NoEffect, Why: whyBPF},
	{Name: "bpfConnectTimeLoadBalancingEnabled", Check: cBool, Status: NoEffect, Why: whyBPF},
	{Name: "bpfConnectTimeLoadBalancing", Check: cEnum("TCP", "Enabled", "Disabled"), Status: NoEffect, Why: whyBPF},
	{Name: "bpfHostNetworkedNATWithoutCTLB", Check: cEnum("Enabled", "Disabled"), Status: NoEffect, Why: whyBPF},
	{Name: "bpfExternalServiceMode", Check: cEnum("Tunnel", "DSR"), Status: NoEffect, Why: whyBPF},
	{Name: "bpfDSROptoutCIDRs", Check: cList(cCIDR), Status: NoEffect, Why: whyBPF},
	{Name: "bpfExtToServiceConnmark", Check: cInt(0, 4294967295), Status: NoEffect, Why: whyBPF},
	{Name: "bpfKubeProxyIptablesCleanupEnabled", Check: cBool, Status: NoEffect, Why: whyBPF},
	{Name: "bpfKubeProxyMinSyncPeriod", Check: cDuration, Status: NoEffect, Why: whyBPF},
	{Name: "bpfKubeProxyHealthzPort", Check: cInt(1, 65535), Status: NoEffect, Why: whyBPF},
	{Name: "bpfKubeProxyEndpointSlicesEnabled", Check: cBool, Status: NoEffect, Why: whyBPF},
	{Name: "bpfPSNATPorts", Check: cPort, Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeNATFrontend", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeNATBackend", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeNATAffinity", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeRoute", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeConntrack", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizePerCpuConntrack", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeConntrackScaling", Check: cString, Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeConntrackCleanupQueue", Check: cInt(1, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeIPSets", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfMapSizeIfState", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "bpfHostConntrackBypass", Check: cBool, Status: NoEffect, Why: whyBPF},
	{Name: "bpfEnforceRPF", Check: cString, Status: NoEffect, Why: whyBPF},
	{Name: "bpfPolicyDebugEnabled", Check: cBool, Status: NoEffect, Why: whyBPF},
	{Name: "bpfForceTrackPacketsFromIfaces", Check: cList(cMatch(ifaceFilterRe, ifaceFilterWhat)), Status: NoEffect, Why: whyBPF},
	{Name: "bpfDisableGROForIfaces", Check: cRegexp, Status: NoEffect, Why: whyBPF},
	{Name: "bpfExcludeCIDRsFromNAT", Check: cList(cCIDR), Status: NoEffect, Why: whyBPF},
	{Name: "bpfExportBufferSizeMB", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyBPF},
	{Name: "cgroupV2Path", Check: cString, Status: NoEffect, Why: whyBPF},
	{Name: "flowLogsPolicyEvaluationMode", Check: cString, Status: NoEffect, Why: whyFlowLogs},
	{Name: "bpfRedirectToPeer", Check: cString, Status: NoEffect, Why: whyBPF},
	{Name: "bpfAttachType", Check: cEnum("TC", "TCX"), Status: NoEffect, Why: whyBPF},
	{Name: "flowLogsFlushInterval", Check: cDuration, Status: NoEffect, Why: whyFlowLogs},
	{Name: "flowLogsCollectorDebugTrace", Check: cBool, Status: NoEffect, Why: whyFlowLogs},
	{Name: "flowLogsGoldmaneServer", Check: cString, Status: NoEffect, Why: whyFlowLogs},
	{Name: "flowLogsLocalReporter", Check: cString, Status: NoEffect, Why: whyFlowLogs},
	{Name: "bpfProfiling", Check: cString, Status: NoEffect, Why: whyBPF},
	{Name: "routeSource", Check: cEnum("WorkloadIPs", "CalicoIPAM"), Status: NoEffect, Why: whyFelix},
	{Name: "routeTableRanges", Check: cList(routeTableIDRange.c("object {min, max}")), Status: NoEffect, Why: whyFelix},
	{Name: "routeTableRange", Check: routeTableRange.c("object {min, max} within 1-250"), Status: NoEffect, Why: whyFelix},
	{Name: "routeSyncDisabled", Check: cBool, Status: NoEffect, Why: whyFelix},
	{Name: "wireguardEnabled", Check: cBool, Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardEnabledV6", Check: cBool, Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardThreadingEnabled", Check: cBool, Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardListeningPort", Check: cInt(1, 65535), Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardListeningPortV6", Check: cInt(1, 65535), Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardRoutingRulePriority", Check: cInt(1, 32765), Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardInterfaceName", Check: cMatch(interfaceRe, ifaceWhat), Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardInterfaceNameV6", Check: cMatch(interfaceRe, ifaceWhat), Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardMTU", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardMTUV6", Check: cInt(minI64, maxI64), Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardHostEncryptionEnabled", Check: cBool, Status: NoEffect, Why: whyWireGuard},
	{Name: "wireguardKeepAlive", Check: cDuration, Status: NoEffect, Why: whyWireGuard},
	{Name: "awsSrcDstCheck", Check: cEnum("DoNothing", "Enable", "Disable"), Status: NoEffect, Why: whyAWS},
	{Name: "serviceLoopPrevention", Check: cEnum("Drop", "Reject", "Disabled"), Status: NoEffect, Why: whyFelix},
	{Name: "workloadSourceSpoofing", Check: cEnum("Disabled", "Any"), Status: NoEffect, Why: whyFelix},
	{Name: "mtuIfacePattern", Check: cRegexp, Status: NoEffect, Why: whyFelix},
	{Name: "floatingIPs", Check: cString, Status: NoEffect, Why: whyOpenStack},
	{Name: "windowsManageFirewallRules", Check: cEnum("Enabled", "Disabled"), Status: NoEffect, Why: whyWindows},
	{Name: "goGCThreshold", Check: cInt(-1, maxI64), Status: NoEffect, Why: whyFelix},
	{Name: "goMemoryLimitMB", Check: cInt(-1, maxI64), Status: NoEffect, Why: whyFelix},
	{Name: "goMaxProcs", Check: cInt(-1, maxI64), Status: NoEffect, Why: whyFelix},
	{Name: "requireMTUFile", Check: cBool, Status: NoEffect, Why: whyFelix},
}

package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Group and version of every resource.
const (
	Group      = "projectcalico.org"
	Version    = "v3"
	APIVersion = Group + "/" + Version
)

// Kinds.
const (
	KindIPPool              = "IPPool"
	KindProfile             = "Profile"
	KindNetworkPolicy       = "NetworkPolicy"
	KindGlobalNetworkPolicy = "GlobalNetworkPolicy"
	KindWorkloadEndpoint    = "WorkloadEndpoint"
	KindHostEndpoint        = "HostEndpoint"
	KindNode                = "Node"
	KindBGPPeer             = "BGPPeer"
	KindBGPConfiguration    = "BGPConfiguration"
	KindFelixConfiguration  = "FelixConfiguration"
)

// TypeMeta is the kind and API version of a resource.
type TypeMeta struct {
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
}

// ObjectMeta is the subset of Kubernetes object metadata Calico resources use.
type ObjectMeta struct {
	Name              string            `json:"name,omitempty"`
	Namespace         string            `json:"namespace,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	UID               string            `json:"uid,omitempty"`
	CreationTimestamp string            `json:"creationTimestamp,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`

	// extra keeps the fields without a Go field (see extras.go).
	extra *extraData
}

// Duration is a time.Duration written as a Go duration string ("90s").
type Duration struct{ time.Duration }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"90s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// ---- numorstring-style values ----

// Protocol is a protocol name (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite) or number (0-255).
type Protocol struct {
	Name   string // set when given as a string
	Number *uint8 // set when given as a number
}

func (p Protocol) MarshalJSON() ([]byte, error) {
	if p.Number != nil {
		return json.Marshal(*p.Number)
	}
	return json.Marshal(p.Name)
}

func (p *Protocol) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 || n > 255 {
			return fmt.Errorf("protocol number %d out of range 0-255", n)
		}
		v := uint8(n)
		*p = Protocol{Number: &v}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("protocol must be a name or a number")
	}
	*p = Protocol{Name: s}
	return nil
}

func (p Protocol) String() string {
	if p.Number != nil {
		return strconv.Itoa(int(*p.Number))
	}
	return p.Name
}

// Port is a port number, a range "first:last", or a named port.
type Port struct {
	MinPort  uint16
	MaxPort  uint16
	PortName string
}

func (p Port) String() string {
	switch {
	case p.PortName != "":
		return p.PortName
	case p.MinPort == p.MaxPort:
		return strconv.Itoa(int(p.MinPort))
	default:
		return fmt.Sprintf("%d:%d", p.MinPort, p.MaxPort)
	}
}

func (p Port) MarshalJSON() ([]byte, error) {
	if p.PortName == "" && p.MinPort == p.MaxPort {
		return json.Marshal(p.MinPort)
	}
	return json.Marshal(p.String())
}

func (p *Port) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Errorf("port %d out of range 0-65535", n)
		}
		*p = Port{MinPort: uint16(n), MaxPort: uint16(n)}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("port must be a number, a range \"min:max\" or a name")
	}
	v, err := ParsePort(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePort parses "80", "80:90" or a port name.
func ParsePort(s string) (Port, error) {
	if s == "" {
		return Port{}, fmt.Errorf("empty port")
	}
	if lo, hi, ok := strings.Cut(s, ":"); ok {
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil {
			return Port{}, fmt.Errorf("invalid port range %q: want \"min:max\" with numbers 0-65535", s)
		}
		if a > b {
			return Port{}, fmt.Errorf("invalid port range %q: min is greater than max", s)
		}
		return Port{MinPort: uint16(a), MaxPort: uint16(b)}, nil
	}
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return Port{MinPort: uint16(n), MaxPort: uint16(n)}, nil
	}
	if s[0] >= '0' && s[0] <= '9' {
		return Port{}, fmt.Errorf("invalid port %q: out of range 0-65535", s)
	}
	return Port{PortName: s}, nil
}

// ASNumber is a BGP AS number, in plain ("64512") or dotted ("1.10") form.
type ASNumber uint32

func (a *ASNumber) UnmarshalJSON(b []byte) error {
	var n uint64
	if err := json.Unmarshal(b, &n); err == nil {
		if n > 0xffffffff {
			return fmt.Errorf("AS number %d out of range", n)
		}
		*a = ASNumber(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("AS number must be a number or \"high.low\"")
	}
	v, err := ParseASNumber(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseASNumber parses "64512" or "1.10" (asdot).
func ParseASNumber(s string) (ASNumber, error) {
	if hi, lo, ok := strings.Cut(s, "."); ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("invalid AS number %q", s)
		}
		return ASNumber(h<<16 | l), nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid AS number %q", s)
	}
	return ASNumber(n), nil
}

// ---- Policy rules ----

// Action values for Rule.Action.
const (
	ActionAllow = "Allow"
	ActionDeny  = "Deny"
	ActionLog   = "Log"
	ActionPass  = "Pass"
)

// PolicyType values.
const (
	PolicyTypeIngress = "Ingress"
	PolicyTypeEgress  = "Egress"
)

// Rule is one policy or profile rule.
type Rule struct {
	Action      string        `json:"action"`
	IPVersion   *int          `json:"ipVersion,omitempty"`
	Protocol    *Protocol     `json:"protocol,omitempty"`
	NotProtocol *Protocol     `json:"notProtocol,omitempty"`
	ICMP        *ICMPFields   `json:"icmp,omitempty"`
	NotICMP     *ICMPFields   `json:"notICMP,omitempty"`
	Source      EntityRule    `json:"source,omitempty"`
	Destination EntityRule    `json:"destination,omitempty"`
	HTTP        *HTTPMatch    `json:"http,omitempty"`
	Metadata    *RuleMetadata `json:"metadata,omitempty"`
}

// ICMPFields matches an ICMP type and code.
type ICMPFields struct {
	Type *int `json:"type,omitempty"`
	Code *int `json:"code,omitempty"`
}

// HTTPMatch restricts a rule to HTTP requests with one of Methods and one of
// Paths. It is stored and validated as Calico does; without an application
// layer proxy it cannot be matched here, so rules with it fail closed (see
// internal/calc).
type HTTPMatch struct {
	Methods []string   `json:"methods,omitempty"`
	Paths   []HTTPPath `json:"paths,omitempty"`
}

// HTTPPath is one path match: exactly one of Exact and Prefix.
type HTTPPath struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// RuleMetadata carries annotations on a rule.
type RuleMetadata struct {
	Annotations map[string]string `json:"annotations,omitempty"`
}

// EntityRule is the source or destination of a rule.
type EntityRule struct {
	Nets              []string             `json:"nets,omitempty"`
	NotNets           []string             `json:"notNets,omitempty"`
	Selector          string               `json:"selector,omitempty"`
	NotSelector       string               `json:"notSelector,omitempty"`
	NamespaceSelector string               `json:"namespaceSelector,omitempty"`
	Ports             []Port               `json:"ports,omitempty"`
	NotPorts          []Port               `json:"notPorts,omitempty"`
	ServiceAccounts   *ServiceAccountMatch `json:"serviceAccounts,omitempty"`
	Services          *ServiceMatch        `json:"services,omitempty"`
}

// ServiceAccountMatch is parsed so that it can be refused as not supported.
type ServiceAccountMatch struct {
	Names    []string `json:"names,omitempty"`
	Selector string   `json:"selector,omitempty"`
}

// ServiceMatch is parsed so that it can be refused as not supported.
type ServiceMatch struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// ---- Resources ----

// IPPool is a range of addresses workloads get addresses from.
type IPPool struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       IPPoolSpec `json:"spec"`
}

// IPPoolSpec mirrors Calico's.
type IPPoolSpec struct {
	CIDR             string   `json:"cidr"`
	VXLANMode        string   `json:"vxlanMode,omitempty"`
	IPIPMode         string   `json:"ipipMode,omitempty"`
	NATOutgoing      bool     `json:"natOutgoing,omitempty"`
	Disabled         bool     `json:"disabled,omitempty"`
	DisableBGPExport bool     `json:"disableBGPExport,omitempty"`
	BlockSize        int      `json:"blockSize,omitempty"`
	NodeSelector     string   `json:"nodeSelector,omitempty"`
	AllowedUses      []string `json:"allowedUses,omitempty"`
	AssignmentMode   string   `json:"assignmentMode,omitempty"`
}

// Encapsulation modes.
const (
	EncapNever       = "Never"
	EncapAlways      = "Always"
	EncapCrossSubnet = "CrossSubnet"
)

// Profile is a named set of rules and labels applied to endpoints that name it.
type Profile struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ProfileSpec `json:"spec"`
}

// ProfileSpec mirrors Calico's.
type ProfileSpec struct {
	Ingress       []Rule            `json:"ingress,omitempty"`
	Egress        []Rule            `json:"egress,omitempty"`
	LabelsToApply map[string]string `json:"labelsToApply,omitempty"`
}

// NetworkPolicy is a namespaced ordered policy.
type NetworkPolicy struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PolicySpec `json:"spec"`
}

// GlobalNetworkPolicy is a cluster-wide ordered policy.
type GlobalNetworkPolicy struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PolicySpec `json:"spec"`
}

// PolicySpec is shared by NetworkPolicy and GlobalNetworkPolicy; fields that
// only GlobalNetworkPolicy has are refused on NetworkPolicy by validation.
type PolicySpec struct {
	Tier                   string   `json:"tier,omitempty"`
	Order                  *float64 `json:"order,omitempty"`
	Selector               string   `json:"selector,omitempty"`
	Types                  []string `json:"types,omitempty"`
	Ingress                []Rule   `json:"ingress,omitempty"`
	Egress                 []Rule   `json:"egress,omitempty"`
	ServiceAccountSelector string   `json:"serviceAccountSelector,omitempty"`
	NamespaceSelector      string   `json:"namespaceSelector,omitempty"`
	DoNotTrack             bool     `json:"doNotTrack,omitempty"`
	PreDNAT                bool     `json:"preDNAT,omitempty"`
	ApplyOnForward         bool     `json:"applyOnForward,omitempty"`
	PerformanceHints       []string `json:"performanceHints,omitempty"`
}

// WorkloadEndpoint is one container interface.
type WorkloadEndpoint struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       WorkloadEndpointSpec `json:"spec"`
}

// WorkloadEndpointSpec mirrors Calico's.
type WorkloadEndpointSpec struct {
	Orchestrator               string                 `json:"orchestrator,omitempty"`
	Workload                   string                 `json:"workload,omitempty"`
	Node                       string                 `json:"node,omitempty"`
	ContainerID                string                 `json:"containerID,omitempty"`
	Pod                        string                 `json:"pod,omitempty"`
	Endpoint                   string                 `json:"endpoint,omitempty"`
	ServiceAccountName         string                 `json:"serviceAccountName,omitempty"`
	IPNetworks                 []string               `json:"ipNetworks,omitempty"`
	IPNATs                     []IPNAT                `json:"ipNATs,omitempty"`
	IPv4Gateway                string                 `json:"ipv4Gateway,omitempty"`
	IPv6Gateway                string                 `json:"ipv6Gateway,omitempty"`
	Profiles                   []string               `json:"profiles,omitempty"`
	InterfaceName              string                 `json:"interfaceName,omitempty"`
	MAC                        string                 `json:"mac,omitempty"`
	Ports                      []WorkloadEndpointPort `json:"ports,omitempty"`
	AllowSpoofedSourcePrefixes []string               `json:"allowSpoofedSourcePrefixes,omitempty"`
}

// IPNAT is a 1:1 NAT mapping (parsed; refused as not supported when set).
type IPNAT struct {
	InternalIP string `json:"internalIP"`
	ExternalIP string `json:"externalIP"`
}

// WorkloadEndpointPort is a named port of a workload.
type WorkloadEndpointPort struct {
	Name     string   `json:"name"`
	Protocol Protocol `json:"protocol"`
	Port     uint16   `json:"port"`
	HostPort uint16   `json:"hostPort,omitempty"`
	HostIP   string   `json:"hostIP,omitempty"`
}

// HostEndpoint is one host interface.
type HostEndpoint struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       HostEndpointSpec `json:"spec"`
}

// HostEndpointSpec mirrors Calico's.
type HostEndpointSpec struct {
	Node          string         `json:"node,omitempty"`
	InterfaceName string         `json:"interfaceName,omitempty"`
	ExpectedIPs   []string       `json:"expectedIPs,omitempty"`
	Profiles      []string       `json:"profiles,omitempty"`
	Ports         []EndpointPort `json:"ports,omitempty"`
}

// EndpointPort is a named port of a host endpoint.
type EndpointPort struct {
	Name     string   `json:"name"`
	Protocol Protocol `json:"protocol"`
	Port     uint16   `json:"port"`
}

// Node is one host running calico node.
type Node struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NodeSpec    `json:"spec"`
	Status     *NodeStatus `json:"status,omitempty"`
}

// NodeSpec mirrors Calico's.
type NodeSpec struct {
	BGP                  *NodeBGPSpec  `json:"bgp,omitempty"`
	IPv4VXLANTunnelAddr  string        `json:"ipv4VXLANTunnelAddr,omitempty"`
	VXLANTunnelMACAddr   string        `json:"vxlanTunnelMACAddr,omitempty"`
	IPv6VXLANTunnelAddr  string        `json:"ipv6VXLANTunnelAddr,omitempty"`
	VXLANTunnelMACAddrV6 string        `json:"vxlanTunnelMACAddrV6,omitempty"`
	OrchRefs             []OrchRef     `json:"orchRefs,omitempty"`
	Addresses            []NodeAddress `json:"addresses,omitempty"`
}

// NodeBGPSpec is the BGP part of a Node.
type NodeBGPSpec struct {
	ASNumber                *ASNumber `json:"asNumber,omitempty"`
	IPv4Address             string    `json:"ipv4Address,omitempty"`
	IPv6Address             string    `json:"ipv6Address,omitempty"`
	IPv4IPIPTunnelAddr      string    `json:"ipv4IPIPTunnelAddr,omitempty"`
	RouteReflectorClusterID string    `json:"routeReflectorClusterID,omitempty"`
}

// OrchRef names the node in an orchestrator.
type OrchRef struct {
	NodeName     string `json:"nodeName,omitempty"`
	Orchestrator string `json:"orchestrator"`
}

// NodeAddress is one address of a node.
type NodeAddress struct {
	Address string `json:"address"`
	Type    string `json:"type,omitempty"`
}

// NodeStatus is written by the node itself.
type NodeStatus struct {
	Ready        bool   `json:"ready,omitempty"`
	LastUpdate   string `json:"lastUpdate,omitempty"`
	Endpoints    int    `json:"endpoints,omitempty"`
	AgentVersion string `json:"agentVersion,omitempty"`
}

// BGPPeer is a BGP session configured explicitly.
type BGPPeer struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       BGPPeerSpec `json:"spec"`
}

// BGPPeerSpec mirrors Calico's.
type BGPPeerSpec struct {
	Node                string       `json:"node,omitempty"`
	PeerIP              string       `json:"peerIP,omitempty"`
	ASNumber            ASNumber     `json:"asNumber,omitempty"`
	NodeSelector        string       `json:"nodeSelector,omitempty"`
	PeerSelector        string       `json:"peerSelector,omitempty"`
	KeepOriginalNextHop bool         `json:"keepOriginalNextHop,omitempty"`
	Password            *BGPPassword `json:"password,omitempty"`
	SourceAddress       string       `json:"sourceAddress,omitempty"`
	MaxRestartTime      *Duration    `json:"maxRestartTime,omitempty"`
	TTLSecurity         *uint8       `json:"ttlSecurity,omitempty"`
	Filters             []string     `json:"filters,omitempty"`
}

// BGPConfiguration holds cluster-wide (name "default") or per-node BGP settings.
type BGPConfiguration struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       BGPConfigurationSpec `json:"spec"`
}

// BGPConfigurationSpec mirrors the parts of Calico's that apply here.
type BGPConfigurationSpec struct {
	LogSeverityScreen      string    `json:"logSeverityScreen,omitempty"`
	NodeToNodeMeshEnabled  *bool     `json:"nodeToNodeMeshEnabled,omitempty"`
	ASNumber               *ASNumber `json:"asNumber,omitempty"`
	ListenPort             uint16    `json:"listenPort,omitempty"`
	BindMode               string    `json:"bindMode,omitempty"`
	NodeMeshMaxRestartTime *Duration `json:"nodeMeshMaxRestartTime,omitempty"`
	IgnoredInterfaces      []string  `json:"ignoredInterfaces,omitempty"`
}

// FelixConfiguration holds cluster-wide (name "default") or per-node
// ("node.<name>") dataplane settings.
type FelixConfiguration struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       FelixConfigurationSpec `json:"spec"`
}

// FelixConfigurationSpec holds the fields that apply to this dataplane.
type FelixConfigurationSpec struct {
	LogSeverityScreen           string       `json:"logSeverityScreen,omitempty"`
	RouteRefreshInterval        *Duration    `json:"routeRefreshInterval,omitempty"`
	NftablesRefreshInterval     *Duration    `json:"nftablesRefreshInterval,omitempty"`
	IptablesRefreshInterval     *Duration    `json:"iptablesRefreshInterval,omitempty"`
	DefaultEndpointToHostAction string       `json:"defaultEndpointToHostAction,omitempty"`
	InterfacePrefix             string       `json:"interfacePrefix,omitempty"`
	FailsafeInboundHostPorts    *[]ProtoPort `json:"failsafeInboundHostPorts,omitempty"`
	FailsafeOutboundHostPorts   *[]ProtoPort `json:"failsafeOutboundHostPorts,omitempty"`
	VXLANEnabled                *bool        `json:"vxlanEnabled,omitempty"`
	VXLANPort                   *int         `json:"vxlanPort,omitempty"`
	VXLANVNI                    *int         `json:"vxlanVNI,omitempty"`
	VXLANMTU                    *int         `json:"vxlanMTU,omitempty"`
	VXLANMTUV6                  *int         `json:"vxlanMTUV6,omitempty"`
	HealthPort                  *int         `json:"healthPort,omitempty"`
	PrometheusMetricsEnabled    *bool        `json:"prometheusMetricsEnabled,omitempty"`
	PrometheusMetricsPort       *int         `json:"prometheusMetricsPort,omitempty"`
	// FlowLogsFileEnabled turns flow logs on (Calico Enterprise's name):
	// the node records allowed and denied flows with the deciding rule for
	// `calico flows`. Default off.
	FlowLogsFileEnabled *bool `json:"flowLogsFileEnabled,omitempty"`
}

// ProtoPort is a protocol and port, as in failsafe port lists.
type ProtoPort struct {
	Protocol string `json:"protocol"`
	Port     uint16 `json:"port"`
	Net      string `json:"net,omitempty"`
}

package api

import (
	"slices"
	"strings"
	"testing"
)

func TestLookupKind(t *testing.T) {
	cases := map[string]string{
		"ippool": KindIPPool, "IPPools": KindIPPool, "pool": KindIPPool, "ipp": KindIPPool,
		"profile": KindProfile, "pro": KindProfile,
		"networkpolicy": KindNetworkPolicy, "NetworkPolicies": KindNetworkPolicy, "policy": KindNetworkPolicy,
		"policies": KindNetworkPolicy, "np": KindNetworkPolicy, "netpol": KindNetworkPolicy, "pol": KindNetworkPolicy,
		"globalnetworkpolicy": KindGlobalNetworkPolicy, "GNP": KindGlobalNetworkPolicy, "gnps": KindGlobalNetworkPolicy,
		"workloadendpoint": KindWorkloadEndpoint, "wep": KindWorkloadEndpoint, "weps": KindWorkloadEndpoint,
		"hostendpoint": KindHostEndpoint, "hep": KindHostEndpoint, "heps": KindHostEndpoint,
		"node": KindNode, "nodes": KindNode, "no": KindNode,
		"bgppeer": KindBGPPeer, "bgppeers": KindBGPPeer, "bgpp": KindBGPPeer, "bp": KindBGPPeer,
		"bgpconfiguration": KindBGPConfiguration, "bgpconfig": KindBGPConfiguration, "bgpconfigs": KindBGPConfiguration,
		"felixconfiguration": KindFelixConfiguration, "felixconfig": KindFelixConfiguration, "FelixConfigs": KindFelixConfiguration,
		"bgpfilter": KindBGPFilter, "bgpfilters": KindBGPFilter, "bf": KindBGPFilter,
		"gnetsets": KindGlobalNetworkSet, "netsets": KindNetworkSet, "tiers": KindTier, "sgnp": KindStagedGlobalNetworkPolicy,
		"spols": KindStagedNetworkPolicy, "sknp": KindStagedKubernetesNetworkPolicy, "reservations": KindIPReservation,
		"kubecontrollersconfig": KindKubeControllersConfiguration,
	}
	for name, want := range cases {
		ki, err := LookupKind(name)
		if err != nil || ki.Kind != want {
			t.Errorf("LookupKind(%q) = %q, %v; want %q", name, ki.Kind, err, want)
		}
	}
	if _, err := LookupKind("firewall"); err == nil || !strings.Contains(err.Error(), `unknown resource type "firewall"`) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := LookupKind("caliconodestatus"); err == nil || !strings.Contains(err.Error(), "not supported here") {
		t.Errorf("unsupported kind: %v", err)
	}
}

func TestKindTable(t *testing.T) {
	wantPlural := map[string]string{
		KindIPPool: "ippools", KindProfile: "profiles", KindNetworkPolicy: "networkpolicies",
		KindGlobalNetworkPolicy: "globalnetworkpolicies", KindWorkloadEndpoint: "workloadendpoints",
		KindHostEndpoint: "hostendpoints", KindNode: "nodes", KindBGPPeer: "bgppeers",
		KindBGPConfiguration: "bgpconfigurations", KindFelixConfiguration: "felixconfigurations",
		KindBGPFilter: "bgpfilters", KindGlobalNetworkSet: "globalnetworksets", KindNetworkSet: "networksets",
		KindTier: "tiers", KindStagedGlobalNetworkPolicy: "stagedglobalnetworkpolicies",
		KindStagedNetworkPolicy: "stagednetworkpolicies", KindStagedKubernetesNetworkPolicy: "stagedkubernetesnetworkpolicies",
		KindIPReservation: "ipreservations", KindKubeControllersConfiguration: "kubecontrollersconfigurations",
		KindClusterInformation: "clusterinformations",
	}
	if len(Kinds()) != len(wantPlural) {
		t.Fatalf("%d kinds, want %d", len(Kinds()), len(wantPlural))
	}
	for _, ki := range Kinds() {
		if ki.Plural != wantPlural[ki.Kind] {
			t.Errorf("%s plural %q", ki.Kind, ki.Plural)
		}
		if ns := ki.Kind == KindNetworkPolicy || ki.Kind == KindWorkloadEndpoint || ki.Kind == KindNetworkSet ||
			ki.Kind == KindStagedNetworkPolicy || ki.Kind == KindStagedKubernetesNetworkPolicy; ns != ki.Namespaced {
			t.Errorf("%s namespaced = %v", ki.Kind, ki.Namespaced)
		}
		r, err := New(ki.Kind)
		if err != nil || r.Kind() != ki.Kind || r.GetTypeMeta().Kind != ki.Kind || r.GetTypeMeta().APIVersion != APIVersion {
			t.Errorf("New(%s) = %#v, %v", ki.Kind, r, err)
		}
		if got, ok := LookupPlural(ki.Plural); !ok || got.Kind != ki.Kind {
			t.Errorf("LookupPlural(%s) = %v", ki.Plural, got.Kind)
		}
	}
	if _, err := New("CalicoNodeStatus"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("New(CalicoNodeStatus): %v", err)
	}
}

func TestDefaultPolicyTypes(t *testing.T) {
	rule := []Rule{{Action: ActionAllow}}
	cases := []struct {
		name  string
		spec  PolicySpec
		types []string
	}{
		{"no rules", PolicySpec{}, []string{"Ingress"}},
		{"ingress only", PolicySpec{Ingress: rule}, []string{"Ingress"}},
		{"egress only", PolicySpec{Egress: rule}, []string{"Egress"}},
		{"both", PolicySpec{Ingress: rule, Egress: rule}, []string{"Ingress", "Egress"}},
		{"explicit kept", PolicySpec{Ingress: rule, Types: []string{"Egress"}}, []string{"Egress"}},
	}
	for _, c := range cases {
		np := &NetworkPolicy{Spec: c.spec}
		Default(np)
		if !slices.Equal(np.Spec.Types, c.types) {
			t.Errorf("%s: NetworkPolicy types %v, want %v", c.name, np.Spec.Types, c.types)
		}
		if np.Namespace != "default" {
			t.Errorf("%s: namespace %q", c.name, np.Namespace)
		}
		gnp := &GlobalNetworkPolicy{Spec: c.spec}
		Default(gnp)
		if !slices.Equal(gnp.Spec.Types, c.types) || gnp.Namespace != "" {
			t.Errorf("%s: GlobalNetworkPolicy types %v ns %q", c.name, gnp.Spec.Types, gnp.Namespace)
		}
	}
}

func TestDefaultIPPool(t *testing.T) {
	cases := []struct {
		cidr, wantCIDR string
		block          int
	}{
		{"10.1.0.0/16", "10.1.0.0/16", 26},
		{"fd00:0:0::/48", "fd00::/48", 122},
		{"10.1.2.3/16", "10.1.2.3/16", 26}, // host bits: left for Validate
		{"garbage", "garbage", 0},
	}
	for _, c := range cases {
		p := &IPPool{Spec: IPPoolSpec{CIDR: c.cidr}}
		Default(p)
		s := p.Spec
		if s.CIDR != c.wantCIDR || s.BlockSize != c.block || s.IPIPMode != "Never" || s.VXLANMode != "Never" ||
			s.NodeSelector != "all()" || !slices.Equal(s.AllowedUses, []string{"Workload", "Tunnel"}) || s.AssignmentMode != "Automatic" {
			t.Errorf("%s: defaulted to %+v", c.cidr, s)
		}
		if p.TypeMeta != (TypeMeta{Kind: KindIPPool, APIVersion: APIVersion}) {
			t.Errorf("TypeMeta %+v", p.TypeMeta)
		}
	}
	// Explicit values are kept.
	p := &IPPool{Spec: IPPoolSpec{CIDR: "10.0.0.0/8", BlockSize: 24, VXLANMode: "Always", NodeSelector: "a == 'b'", AllowedUses: []string{"Workload"}}}
	Default(p)
	if p.Spec.BlockSize != 24 || p.Spec.VXLANMode != "Always" || p.Spec.NodeSelector != "a == 'b'" || len(p.Spec.AllowedUses) != 1 {
		t.Errorf("explicit values changed: %+v", p.Spec)
	}
	w := &WorkloadEndpoint{}
	Default(w)
	if w.Namespace != "default" {
		t.Errorf("WorkloadEndpoint namespace %q", w.Namespace)
	}
}

func ptr[T any](v T) *T { return &v }

func meta(name string) ObjectMeta { return ObjectMeta{Name: name} }

// Table of single resources: valid ones validate, invalid ones fail with
// the given field path and reason.
func TestValidate(t *testing.T) {
	tcp := &Protocol{Name: "TCP"}
	cases := []struct {
		name string
		r    Resource
		want string // "" = valid; else a substring of the error
	}{
		{"pool ok", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/16"}}, ""},
		{"pool missing cidr", &IPPool{ObjectMeta: meta("p")}, "spec.cidr: cidr is required"},
		{"pool block larger than pool while disabled is fine", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/30", Disabled: true}}, ""},
		{"pool block 32", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/30", BlockSize: 32}}, ""},
		{"pool v6 block 128", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "fd00::/120", BlockSize: 128}}, ""},
		{"pool v6 link local", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "fe80::/64"}}, "IPv6 link-local"},
		{"pool ipip crosssubnet stored", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/16", IPIPMode: "CrossSubnet"}}, ""},
		{"pool vxlan always ok", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/16", VXLANMode: "Always"}}, ""},
		{"pool loadbalancer", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/16", AllowedUses: []string{"LoadBalancer"}}}, ""},
		{"pool loadbalancer and workload", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/16", AllowedUses: []string{"Workload", "LoadBalancer"}}}, "spec.allowedUses: LoadBalancer cannot be combined with Workload or Tunnel"},
		{"pool unknown use", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/16", AllowedUses: []string{"Workload", "Pets"}}}, `spec.allowedUses[1]: unknown use "Pets"`},
		{"pool assignment", &IPPool{ObjectMeta: meta("p"), Spec: IPPoolSpec{CIDR: "10.0.0.0/16", AssignmentMode: "Sometimes"}}, "spec.assignmentMode"},
		{"name missing", &Profile{}, "metadata.name: name is required"},
		{"name too long", &Profile{ObjectMeta: meta(strings.Repeat("a", 254))}, "name is too long"},
		{"name with dots ok", &Profile{ObjectMeta: meta("a.b.c")}, ""},
		{"name underscore", &Profile{ObjectMeta: meta("a_b")}, `invalid name "a_b"`},
		{"policy one dot ok", &GlobalNetworkPolicy{ObjectMeta: meta("default.allow")}, ""},
		{"policy two dots", &GlobalNetworkPolicy{ObjectMeta: meta("a.b.c")}, "at most one '.'"},
		{"policy knp prefix", &NetworkPolicy{ObjectMeta: ObjectMeta{Name: "knp.default.x", Namespace: "default"}}, "reserved"},
		{"policy namespace required", &NetworkPolicy{ObjectMeta: meta("x")}, "metadata.namespace: namespace is required"},
		{"policy namespace bad", &NetworkPolicy{ObjectMeta: ObjectMeta{Name: "x", Namespace: "a.b"}}, "invalid namespace"},
		{"node name with dots", &Node{ObjectMeta: meta("host-1.example.com")}, ""},
		{"labels ok", &Profile{ObjectMeta: ObjectMeta{Name: "p", Labels: map[string]string{"app.kubernetes.io/name": "web", "x": ""}}}, ""},
		{"label value bad", &Profile{ObjectMeta: ObjectMeta{Name: "p", Labels: map[string]string{"x": "a b"}}}, `metadata.labels.x: invalid label value "a b"`},
		{"resourceVersion bad", &Profile{ObjectMeta: ObjectMeta{Name: "p", ResourceVersion: "abc"}}, "metadata.resourceVersion"},
		{"creationTimestamp bad", &Profile{ObjectMeta: ObjectMeta{Name: "p", CreationTimestamp: "yesterday"}}, "metadata.creationTimestamp"},
		{"named port", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Destination: EntityRule{Ports: []Port{{PortName: "http"}}}}}}}, ""},
		{"named and numeric ports", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Destination: EntityRule{Ports: []Port{{PortName: "http"}, {MinPort: 80, MaxPort: 90}}}}}}}, ""},
		{"named port without protocol", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Destination: EntityRule{Ports: []Port{{PortName: "http"}}}, Source: EntityRule{NotPorts: []Port{{PortName: "dns-tcp"}}}}}}}, ""},
		{"named port with digits", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Destination: EntityRule{Ports: []Port{{PortName: "h2c-8080"}}}}}}}, ""},
		{"named port 15 chars", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Destination: EntityRule{Ports: []Port{{PortName: "abcdefghijklmno"}}}}}}}, ""},
		{"number without protocol", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Destination: EntityRule{Ports: []Port{{PortName: "http"}, {MinPort: 80, MaxPort: 80}}}}}}}, "spec.ingress[0].destination.ports: rules that specify ports must set protocol"},
		{"named port with ICMP", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: &Protocol{Name: "ICMP"}, Destination: EntityRule{Ports: []Port{{PortName: "http"}}}}}}}, "spec.ingress[0].destination.ports: rules that specify ports must set protocol"},
		{"named port digits only", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Destination: EntityRule{Ports: []Port{{PortName: "8-0"}}}}}}}, "invalid port name"},
		{"named port upper case", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Destination: EntityRule{Ports: []Port{{PortName: "HTTP"}}}}}}}, "spec.ingress[0].destination.ports[0]: invalid port name"},
		{"named port leading dash", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Destination: EntityRule{NotPorts: []Port{{PortName: "-http"}}}}}}}, "spec.ingress[0].destination.notPorts[0]: invalid port name"},
		{"named port trailing dash", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Source: EntityRule{Ports: []Port{{PortName: "http-"}}}}}}}, "invalid port name"},
		{"named port double dash", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Source: EntityRule{Ports: []Port{{PortName: "ht--tp"}}}}}}}, "invalid port name"},
		{"named port 16 chars", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Source: EntityRule{Ports: []Port{{PortName: "abcdefghijklmnop"}}}}}}}, "invalid port name"},
		{"named port underscore", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: tcp, Source: EntityRule{Ports: []Port{{PortName: "my_port"}}}}}}}, "invalid port name"},
		{"protocol number string ok", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: &Protocol{Name: "17"}, Source: EntityRule{Ports: []Port{{MinPort: 1, MaxPort: 2}}}}}}}, ""},
		{"protocol sctp ports", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: &Protocol{Name: "SCTP"}, Source: EntityRule{NotPorts: []Port{{MinPort: 9, MaxPort: 9}}}}}}}, ""},
		{"protocol udplite no ports", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Ingress: []Rule{{Action: "Allow", Protocol: &Protocol{Name: "UDPLite"}, Source: EntityRule{NotPorts: []Port{{MinPort: 9, MaxPort: 9}}}}}}}, "spec.ingress[0].source.notPorts: rules that specify ports"},
		{"protocol name unknown", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Deny", NotProtocol: &Protocol{Name: "GRE"}}}}}, `spec.egress[0].notProtocol: invalid protocol "GRE"`},
		{"icmpv6 with v6", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Allow", IPVersion: ptr(6), Protocol: &Protocol{Name: "ICMPv6"}, NotICMP: &ICMPFields{Type: ptr(128)}}}}}, ""},
		{"icmp type 255", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Allow", Protocol: &Protocol{Name: "ICMP"}, ICMP: &ICMPFields{Type: ptr(255)}}}}}, "spec.egress[0].icmp.type: ICMP type must be 0-254"},
		{"ipVersion 5", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Allow", IPVersion: ptr(5)}}}}, "ipVersion must be 4 or 6"},
		{"icmp with ipVersion 6", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Allow", IPVersion: ptr(6), Protocol: &Protocol{Name: "ICMP"}}}}}, "must set ipVersion to 4 with protocol ICMP"},
		{"v6 nets with ipVersion 6", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Allow", IPVersion: ptr(6), Source: EntityRule{Nets: []string{"fd00::/8"}}, Destination: EntityRule{NotNets: []string{"fd00:1::/32"}}}}}}, ""},
		{"mixed families across sides", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Allow", Source: EntityRule{Nets: []string{"10.0.0.0/8"}}, Destination: EntityRule{Nets: []string{"fd00::/8"}}}}}}, "spec.egress[0].destination.nets: rule contains both IPv4 and IPv6 CIDRs"},
		{"rule nets host bits ok", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Allow", Source: EntityRule{Nets: []string{"10.1.2.3/8"}}}}}}, ""},
		{"rule net bare IP", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Egress: []Rule{{Action: "Allow", Source: EntityRule{Nets: []string{"10.1.2.3"}}}}}}, `invalid CIDR "10.1.2.3"`},
		{"types invalid", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Types: []string{"ingress"}}}, `spec.types[0]: invalid type "ingress"`},
		{"selector bad", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Selector: "has("}}, "spec.selector: invalid selector"},
		{"notSelector bad", &Profile{ObjectMeta: meta("p"), Spec: ProfileSpec{Egress: []Rule{{Action: "Allow", Destination: EntityRule{NotSelector: "a =="}}}}}, "spec.egress[0].destination.notSelector: invalid selector"},
		{"rule namespaceSelector", &Profile{ObjectMeta: meta("p"), Spec: ProfileSpec{Egress: []Rule{{Action: "Allow", Destination: EntityRule{NamespaceSelector: "all()"}}}}}, ""},
		{"rule namespaceSelector bad", &Profile{ObjectMeta: meta("p"), Spec: ProfileSpec{Egress: []Rule{{Action: "Allow", Destination: EntityRule{NamespaceSelector: "a =="}}}}}, "spec.egress[0].destination.namespaceSelector: invalid selector"},
		{"rule services", &Profile{ObjectMeta: meta("p"), Spec: ProfileSpec{Egress: []Rule{{Action: "Allow", Destination: EntityRule{Services: &ServiceMatch{Name: "s"}}}}}}, ""},
		{"rule services and serviceAccounts", &Profile{ObjectMeta: meta("p"), Spec: ProfileSpec{Egress: []Rule{{Action: "Allow", Destination: EntityRule{Services: &ServiceMatch{Name: "s"}, ServiceAccounts: &ServiceAccountMatch{Names: []string{"a"}}}}}}}, "destination.services: cannot specify serviceAccounts and services"},
		{"performance hint", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{PerformanceHints: []string{"AssumeNeededOnEveryNode", "Fast"}}}, `spec.performanceHints[1]: unknown performance hint "Fast"`},
		{"tier default ok", &GlobalNetworkPolicy{ObjectMeta: meta("p"), Spec: PolicySpec{Tier: "default", Order: ptr(-5.5)}}, ""},
		{"profile labelsToApply", &Profile{ObjectMeta: meta("p"), Spec: ProfileSpec{LabelsToApply: map[string]string{"a/b/c": "x"}}}, "spec.labelsToApply"},
		{"wep ok", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", IPNetworks: []string{"10.0.0.1", "fd00::1/128"}, IPv4Gateway: "169.254.1.1", IPv6Gateway: "fe80::1"}}, ""},
		{"wep gateway family", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", IPv4Gateway: "fe80::1"}}, "spec.ipv4Gateway: invalid IPv4 gateway"},
		{"wep iface", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", InterfaceName: "cali0123456789abcdef"}}, "spec.interfaceName: invalid interface name"},
		{"wep mac", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", MAC: "zz"}}, "spec.mac"},
		{"wep profile name", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", Profiles: []string{"ok", "Not_OK"}}}, "spec.profiles[1]"},
		{"wep port proto", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", Ports: []WorkloadEndpointPort{{Name: "p", Protocol: Protocol{Name: "ICMP"}, Port: 1}}}}, "spec.ports[0].protocol: protocol must be TCP, UDP or SCTP"},
		{"wep hostPort", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", Ports: []WorkloadEndpointPort{{Name: "p", Protocol: Protocol{Name: "TCP"}, Port: 80, HostPort: 8080}}}}, ""},
		{"wep hostPort unnamed", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", Ports: []WorkloadEndpointPort{{Protocol: Protocol{Name: "UDP"}, Port: 53, HostPort: 5353, HostIP: "fd00::1"}}}}, ""},
		{"wep unnamed port", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", Ports: []WorkloadEndpointPort{{Protocol: Protocol{Name: "TCP"}, Port: 80}}}}, "spec.ports[0].name: name is required"},
		{"wep hostPort sctp", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", Ports: []WorkloadEndpointPort{{Protocol: Protocol{Name: "SCTP"}, Port: 80, HostPort: 80}}}}, "spec.ports[0].protocol: a port with hostPort must use protocol TCP or UDP"},
		{"wep hostIP bad", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", Ports: []WorkloadEndpointPort{{Protocol: Protocol{Name: "TCP"}, Port: 80, HostPort: 80, HostIP: "10.0.0.0/8"}}}}, `spec.ports[0].hostIP: invalid host IP "10.0.0.0/8"`},
		{"wep hostIP without hostPort", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", Ports: []WorkloadEndpointPort{{Name: "p", Protocol: Protocol{Name: "TCP"}, Port: 80, HostIP: "10.0.0.1"}}}}, "spec.ports[0].hostIP: hostIP needs hostPort"},
		{"wep spoof", &WorkloadEndpoint{ObjectMeta: ObjectMeta{Name: "n-docker-w-eth0", Namespace: "default"}, Spec: WorkloadEndpointSpec{Node: "n", Orchestrator: "docker", Workload: "w", Endpoint: "eth0", AllowSpoofedSourcePrefixes: []string{"0.0.0.0/0"}}}, ""},
		{"hep wildcard", &HostEndpoint{ObjectMeta: meta("h"), Spec: HostEndpointSpec{Node: "n", InterfaceName: "*"}}, ""},
		{"hep bad ip", &HostEndpoint{ObjectMeta: meta("h"), Spec: HostEndpointSpec{Node: "n", ExpectedIPs: []string{"10.0.0.0/8"}}}, `spec.expectedIPs[0]: invalid IP address "10.0.0.0/8"`},
		{"hep no node", &HostEndpoint{ObjectMeta: meta("h"), Spec: HostEndpointSpec{InterfaceName: "eth0"}}, "spec.node: node is required"},
		{"node empty bgp", &Node{ObjectMeta: meta("n"), Spec: NodeSpec{BGP: &NodeBGPSpec{}}}, "spec.bgp: bgp must not be empty"},
		{"node as 0", &Node{ObjectMeta: meta("n"), Spec: NodeSpec{BGP: &NodeBGPSpec{IPv4Address: "10.0.0.1", ASNumber: ptr(ASNumber(0))}}}, "spec.bgp.asNumber"},
		{"node address type", &Node{ObjectMeta: meta("n"), Spec: NodeSpec{Addresses: []NodeAddress{{Address: "10.0.0.1", Type: "Public"}}}}, "spec.addresses[0].type"},
		{"node orchref", &Node{ObjectMeta: meta("n"), Spec: NodeSpec{OrchRefs: []OrchRef{{NodeName: "x"}}}}, "spec.orchRefs[0].orchestrator"},
		{"node vxlan v6 addr wrong family", &Node{ObjectMeta: meta("n"), Spec: NodeSpec{IPv6VXLANTunnelAddr: "10.0.0.1"}}, "spec.ipv6VXLANTunnelAddr"},
		{"peer selector ok", &BGPPeer{ObjectMeta: meta("b"), Spec: BGPPeerSpec{PeerSelector: "all()"}}, ""},
		{"peer v4 port ok", &BGPPeer{ObjectMeta: meta("b"), Spec: BGPPeerSpec{PeerIP: "10.0.0.1:1179", ASNumber: 1}}, ""},
		{"peer port 0", &BGPPeer{ObjectMeta: meta("b"), Spec: BGPPeerSpec{PeerIP: "10.0.0.1:0", ASNumber: 1}}, "port must be 1-65535"},
		{"peer neither", &BGPPeer{ObjectMeta: meta("b")}, "one of peerIP, peerSelector or localWorkloadSelector is required"},
		{"peer selector with as", &BGPPeer{ObjectMeta: meta("b"), Spec: BGPPeerSpec{PeerSelector: "all()", ASNumber: 5}}, "asNumber must be empty when peerSelector"},
		{"peer filters", &BGPPeer{ObjectMeta: meta("b"), Spec: BGPPeerSpec{PeerSelector: "all()", Filters: []string{"f"}}}, ""},
		{"peer password without ref", &BGPPeer{ObjectMeta: meta("b"), Spec: BGPPeerSpec{PeerSelector: "all()", Password: &BGPPassword{}}}, "spec.password.secretKeyRef: secretKeyRef is required"},
		{"peer source address", &BGPPeer{ObjectMeta: meta("b"), Spec: BGPPeerSpec{PeerSelector: "all()", SourceAddress: "Auto"}}, "spec.sourceAddress"},
		{"peer restart negative", &BGPPeer{ObjectMeta: meta("b"), Spec: BGPPeerSpec{PeerSelector: "all()", MaxRestartTime: &Duration{-1}}}, "spec.maxRestartTime: duration must be positive"},
		{"bgpconfig bind", &BGPConfiguration{ObjectMeta: meta("default"), Spec: BGPConfigurationSpec{BindMode: "Any"}}, "spec.bindMode"},
		{"bgpconfig ignored iface", &BGPConfiguration{ObjectMeta: meta("default"), Spec: BGPConfigurationSpec{IgnoredInterfaces: []string{"docker*", "*"}}}, "spec.ignoredInterfaces[1]"},
		{"felix vni", &FelixConfiguration{ObjectMeta: meta("default"), Spec: FelixConfigurationSpec{VXLANVNI: ptr(1 << 24)}}, "spec.vxlanVNI: must be 1-16777215"},
		{"felix failsafe proto", &FelixConfiguration{ObjectMeta: meta("default"), Spec: FelixConfigurationSpec{FailsafeInboundHostPorts: &[]ProtoPort{{Protocol: "tcp", Port: 22}}}}, "spec.failsafeInboundHostPorts[0].protocol"},
		{"felix e2h", &FelixConfiguration{ObjectMeta: meta("default"), Spec: FelixConfigurationSpec{DefaultEndpointToHostAction: "Allow"}}, "spec.defaultEndpointToHostAction"},
		{"felix prefix cali ok", &FelixConfiguration{ObjectMeta: meta("node.host1"), Spec: FelixConfigurationSpec{InterfacePrefix: "cali"}}, ""},
	}
	for _, c := range cases {
		err := Validate(c.r)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && err == nil:
			t.Errorf("%s: accepted, want %q", c.name, c.want)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: error %q lacks %q", c.name, err, c.want)
		}
	}
}

// Calico's secretKeyRef.optional is accepted; apply says what it means.
func TestOptionalSecretWarns(t *testing.T) {
	yes := true
	r := &BGPPeer{ObjectMeta: meta("p"), Spec: BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: 65001,
		Password: &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "s", Key: "k", Optional: &yes}}}}
	warns, err := ValidateWarn(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "spec.password.secretKeyRef.optional") || !strings.Contains(warns[0], "WITHOUT a password") {
		t.Fatalf("warnings %q", warns)
	}
}

func TestPortParsing(t *testing.T) {
	cases := []struct {
		in   string
		want Port
		err  string
	}{
		{"80", Port{MinPort: 80, MaxPort: 80}, ""},
		{"80:90", Port{MinPort: 80, MaxPort: 90}, ""},
		{"http", Port{PortName: "http"}, ""},
		{"90:80", Port{}, "min is greater than max"},
		{"1:99999", Port{}, "want \"min:max\""},
		{"70000", Port{}, "out of range"},
		{"", Port{}, "empty port"},
	}
	for _, c := range cases {
		got, err := ParsePort(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParsePort(%q) err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParsePort(%q) = %+v, %v", c.in, got, err)
		}
	}
}

func TestProtocolHelpers(t *testing.T) {
	n6 := uint8(6)
	cases := []struct {
		p        Protocol
		num      uint8
		ports    bool
		icmp, v6 bool
	}{
		{Protocol{Name: "TCP"}, 6, true, false, false},
		{Protocol{Number: &n6}, 6, true, false, false},
		{Protocol{Name: "132"}, 132, true, false, false},
		{Protocol{Name: "ICMP"}, 1, false, true, false},
		{Protocol{Name: "ICMPv6"}, 58, false, false, true},
		{Protocol{Name: "UDPLite"}, 136, false, false, false},
	}
	for _, c := range cases {
		n, err := c.p.NumberValue()
		if err != nil || n != c.num || c.p.SupportsPorts() != c.ports || c.p.IsICMP() != c.icmp || c.p.IsICMPv6() != c.v6 {
			t.Errorf("%v: num %d err %v ports %v", c.p, n, err, c.p.SupportsPorts())
		}
	}
	if _, err := (Protocol{Name: "bogus"}).NumberValue(); err == nil {
		t.Error("bogus protocol has a number")
	}
}

func TestParsePeerIP(t *testing.T) {
	for in, want := range map[string]string{"10.0.0.1": "10.0.0.1|0", "10.0.0.1:179": "10.0.0.1|179", "[fd00::1]:1179": "fd00::1|1179", "fd00::1": "fd00::1|0"} {
		a, p, err := ParsePeerIP(in)
		if err != nil || a.String()+"|"+itoa(int(p)) != want {
			t.Errorf("ParsePeerIP(%q) = %v %d %v", in, a, p, err)
		}
	}
	for _, in := range []string{"", "host:179", "fd00::1:179:1x", "[fd00::1]:99999"} {
		if _, _, err := ParsePeerIP(in); err == nil {
			t.Errorf("ParsePeerIP(%q) accepted", in)
		}
	}
}

func TestParseNetMasks(t *testing.T) {
	p, err := ParseNet("10.1.2.3/8")
	if err != nil || p.String() != "10.0.0.0/8" {
		t.Fatalf("got %v %v", p, err)
	}
}

func TestDocumentErrorFormat(t *testing.T) {
	e := &DocumentError{Document: 2, Item: 3, Resource: "NetworkPolicy default/x", Err: FieldErrors{
		{Field: "spec.a", Reason: "bad"}, {Field: "spec.b", Reason: "worse"},
	}}
	want := "document 2, item 3 (NetworkPolicy default/x): spec.a: bad\ndocument 2, item 3 (NetworkPolicy default/x): spec.b: worse"
	if e.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", e.Error(), want)
	}
}

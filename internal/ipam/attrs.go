package ipam

import (
	"fmt"
	"strings"
	"time"
)

// Kinds of assignment (Attrs.Kind).
const (
	// KindWorkload: the address belongs to a workload endpoint (a container).
	KindWorkload = "workload"
	// KindManual: an operator reserved the address with `calico ipam assign`;
	// check lists these separately and never calls them leaks.
	KindManual = "manual"
)

// Tunnel address types (Attrs.Type), Calico's values of the "type"
// attribute. Calico's node writes them with only "node" and "type" (no
// kind), under the handle "<type prefix>-tunnel-addr-<node>"; an address of
// this type is in use while a Node resource lists it as its tunnel address.
const (
	TypeVXLANTunnel       = "vxlanTunnelAddress"
	TypeVXLANV6Tunnel     = "vxlanV6TunnelAddress"
	TypeIPIPTunnel        = "ipipTunnelAddress"
	TypeWireguardTunnel   = "wireguardTunnelAddress"
	TypeWireguardV6Tunnel = "wireguardV6TunnelAddress"
)

// Keys of Attribute.Secondary. "node", "type", "namespace", "pod" and
// "timestamp" are Calico's (libcalico-go ipam); the others are this
// project's, and Calico's tools ignore them.
const (
	attrKind      = "kind"
	attrNode      = "node"
	attrType      = "type"
	attrNamespace = "namespace"
	attrPod       = "pod"
	attrEndpoint  = "endpoint"
	attrContainer = "containerID"
	attrNote      = "note"
	attrTimestamp = "timestamp"
)

// Attrs records what an address is for. Workload: Node, Endpoint
// ("namespace/name" of its WorkloadEndpoint, may be filled in later with
// SetHandleAttrs) and ContainerID. Manual: Node (who asked) and a free Note.
// Addresses Calico's own IPAM library assigned have no Kind: a tunnel
// address has Node and Type, a Kubernetes pod's Node, Namespace and Pod.
type Attrs struct {
	Kind        string    `json:"kind,omitempty"`
	Type        string    `json:"type,omitempty"`
	Namespace   string    `json:"namespace,omitempty"`
	Pod         string    `json:"pod,omitempty"`
	Node        string    `json:"node,omitempty"`
	Endpoint    string    `json:"endpoint,omitempty"`
	ContainerID string    `json:"containerID,omitempty"`
	Note        string    `json:"note,omitempty"`
	Assigned    time.Time `json:"assigned,omitzero"` // set by the allocator
}

// Validate checks the kind and the endpoint form.
func (a Attrs) Validate() error {
	switch a.Kind {
	case KindWorkload, KindManual:
	case "":
		if a.Type == "" || a.Node == "" {
			return fmt.Errorf("attrs: kind is required (%q or %q), or Calico's tunnel type and node", KindWorkload, KindManual)
		}
	default:
		return fmt.Errorf("attrs: unknown kind %q (want %q or %q)", a.Kind, KindWorkload, KindManual)
	}
	if a.Endpoint != "" {
		ns, name, ok := strings.Cut(a.Endpoint, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("attrs: endpoint %q must be \"namespace/name\"", a.Endpoint)
		}
	}
	return nil
}

// Describe is a short human description ("workload ns/wep on node n1").
func (a Attrs) Describe() string {
	var parts []string
	switch a.Kind {
	case KindWorkload:
		parts = append(parts, "workload")
		if a.Endpoint != "" {
			parts = append(parts, a.Endpoint)
		}
		if a.ContainerID != "" {
			parts = append(parts, "container "+shortID(a.ContainerID))
		}
	case KindManual:
		parts = append(parts, "manual reservation")
		if a.Note != "" {
			parts = append(parts, fmt.Sprintf("%q", a.Note))
		}
	case "":
		switch {
		case a.Type != "":
			parts = append(parts, a.Type)
		case a.Pod != "":
			parts = append(parts, "pod "+a.Namespace+"/"+a.Pod)
		}
	default:
		parts = append(parts, a.Kind)
	}
	if a.Node != "" {
		parts = append(parts, "on node "+a.Node)
	}
	return strings.Join(parts, " ")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// calicoTimestamp is how Calico's CNI plugin writes "timestamp" (Go's
// time.Time String form).
const calicoTimestamp = "2006-01-02 15:04:05.999999999 -0700 MST"

// Secondary encodes the attrs as a block attribute's secondary map.
func (a Attrs) Secondary() map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(attrKind, a.Kind)
	set(attrNode, a.Node)
	set(attrType, a.Type)
	set(attrNamespace, a.Namespace)
	set(attrPod, a.Pod)
	set(attrEndpoint, a.Endpoint)
	set(attrContainer, a.ContainerID)
	set(attrNote, a.Note)
	if !a.Assigned.IsZero() {
		m[attrTimestamp] = a.Assigned.UTC().Format(time.RFC3339Nano)
	}
	return m
}

// AttrsFromSecondary decodes a secondary map; unknown keys are ignored.
func AttrsFromSecondary(m map[string]string) Attrs {
	a := Attrs{
		Kind:        m[attrKind],
		Type:        m[attrType],
		Namespace:   m[attrNamespace],
		Pod:         m[attrPod],
		Node:        m[attrNode],
		Endpoint:    m[attrEndpoint],
		ContainerID: m[attrContainer],
		Note:        m[attrNote],
	}
	if ts, err := time.Parse(time.RFC3339Nano, m[attrTimestamp]); err == nil {
		a.Assigned = ts
	} else if ts, err := time.Parse(calicoTimestamp, m[attrTimestamp]); err == nil {
		a.Assigned = ts
	}
	return a
}

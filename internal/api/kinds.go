package api

import (
	"fmt"
	"sort"
	"strings"
)

// KindInfo describes one resource kind: its canonical name, the lowercase
// plural used in datastore keys, whether it lives in a namespace, and the
// names calicoctl accepts for it on the command line.
type KindInfo struct {
	Kind       string
	Plural     string
	Namespaced bool
	// Aliases are lowercase; LookupKind compares case-insensitively.
	Aliases []string
	new     func() Resource
}

// kinds is the table of every kind this project understands. Aliases are
// calicoctl's (singular, plural and short forms).
var kinds = []KindInfo{
	{Kind: KindIPPool, Plural: "ippools", Aliases: []string{"ippool", "ippools", "ipp", "ipps", "pool", "pools"},
		new: func() Resource { return &IPPool{} }},
	{Kind: KindProfile, Plural: "profiles", Aliases: []string{"profile", "profiles", "pro", "pros"},
		new: func() Resource { return &Profile{} }},
	{Kind: KindNetworkPolicy, Plural: "networkpolicies", Namespaced: true,
		Aliases: []string{"networkpolicy", "networkpolicies", "policy", "policies", "np", "nps", "pol", "pols", "netpol", "netpols"},
		new:     func() Resource { return &NetworkPolicy{} }},
	{Kind: KindGlobalNetworkPolicy, Plural: "globalnetworkpolicies",
		Aliases: []string{"globalnetworkpolicy", "globalnetworkpolicies", "gnp", "gnps"},
		new:     func() Resource { return &GlobalNetworkPolicy{} }},
	{Kind: KindWorkloadEndpoint, Plural: "workloadendpoints", Namespaced: true,
		Aliases: []string{"workloadendpoint", "workloadendpoints", "wep", "weps"},
		new:     func() Resource { return &WorkloadEndpoint{} }},
	{Kind: KindHostEndpoint, Plural: "hostendpoints", Aliases: []string{"hostendpoint", "hostendpoints", "hep", "heps"},
		new: func() Resource { return &HostEndpoint{} }},
	{Kind: KindNode, Plural: "nodes", Aliases: []string{"node", "nodes", "no", "nos"},
		new: func() Resource { return &Node{} }},
	{Kind: KindBGPPeer, Plural: "bgppeers", Aliases: []string{"bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps"},
		new: func() Resource { return &BGPPeer{} }},
	{Kind: KindBGPConfiguration, Plural: "bgpconfigurations",
		Aliases: []string{"bgpconfiguration", "bgpconfigurations", "bgpconfig", "bgpconfigs"},
		new:     func() Resource { return &BGPConfiguration{} }},
	{Kind: KindFelixConfiguration, Plural: "felixconfigurations",
		Aliases: []string{"felixconfiguration", "felixconfigurations", "felixconfig", "felixconfigs"},
		new:     func() Resource { return &FelixConfiguration{} }},
	bgpFilterKind,
	globalNetworkSetKind, networkSetKind, tierKind, stagedGNPKind, stagedNPKind, stagedKNPKind,
	ipReservationKind, kubeControllersKind, clusterInfoKind,
}

// unsupportedKinds are Calico kinds this project knows of but does not
// implement; naming them gives a clearer error than "unknown kind".
var unsupportedKinds = map[string]bool{
	"IPAMConfiguration": true, "CalicoNodeStatus": true, "BlockAffinity": true,
}

var (
	byAlias = map[string]int{}
	byKind  = map[string]int{}
)

func init() {
	for i, k := range kinds {
		byKind[k.Kind] = i
		byAlias[strings.ToLower(k.Kind)] = i
		for _, a := range k.Aliases {
			byAlias[a] = i
		}
	}
}

// Kinds returns the table of supported kinds in a stable order.
func Kinds() []KindInfo {
	out := make([]KindInfo, len(kinds))
	copy(out, kinds)
	return out
}

// LookupKind resolves a kind name as calicoctl does: the canonical kind or
// any of its aliases, case-insensitively ("gnp", "NetworkPolicy", "pools").
func LookupKind(name string) (KindInfo, error) {
	if i, ok := byAlias[strings.ToLower(name)]; ok {
		return kinds[i], nil
	}
	for k := range unsupportedKinds {
		if strings.EqualFold(k, name) {
			return KindInfo{}, fmt.Errorf("kind %q is not supported here", k)
		}
	}
	return KindInfo{}, fmt.Errorf("unknown resource type %q: want one of %s", name, kindNames())
}

// kindInfo returns the table entry of a canonical kind name (exact case).
func kindInfo(kind string) (KindInfo, bool) {
	i, ok := byKind[kind]
	if !ok {
		return KindInfo{}, false
	}
	return kinds[i], true
}

func kindNames() string {
	names := make([]string, 0, len(kinds))
	for _, k := range kinds {
		names = append(names, k.Kind)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// New returns an empty resource of the given canonical kind with its
// TypeMeta filled in.
func New(kind string) (Resource, error) {
	ki, ok := kindInfo(kind)
	if !ok {
		if unsupportedKinds[kind] {
			return nil, fmt.Errorf("kind %q is not supported here", kind)
		}
		return nil, fmt.Errorf("unknown kind %q: want one of %s", kind, kindNames())
	}
	r := ki.new()
	*r.GetTypeMeta() = TypeMeta{Kind: ki.Kind, APIVersion: APIVersion}
	return r, nil
}

// Resource is implemented by every kind. Kind returns the canonical kind
// (from the Go type, whatever TypeMeta says).
type Resource interface {
	GetObjectMeta() *ObjectMeta
	GetTypeMeta() *TypeMeta
	Kind() string
}

// Info returns the kind table entry of a resource.
func Info(r Resource) KindInfo {
	ki, _ := kindInfo(r.Kind())
	return ki
}

// Ident is "Kind name" or "Kind namespace/name", the way errors and
// command output name a resource.
func Ident(r Resource) string {
	m := r.GetObjectMeta()
	if m.Namespace != "" {
		return r.Kind() + " " + m.Namespace + "/" + m.Name
	}
	return r.Kind() + " " + m.Name
}

func (r *IPPool) GetObjectMeta() *ObjectMeta              { return &r.ObjectMeta }
func (r *IPPool) GetTypeMeta() *TypeMeta                  { return &r.TypeMeta }
func (r *IPPool) Kind() string                            { return KindIPPool }
func (r *Profile) GetObjectMeta() *ObjectMeta             { return &r.ObjectMeta }
func (r *Profile) GetTypeMeta() *TypeMeta                 { return &r.TypeMeta }
func (r *Profile) Kind() string                           { return KindProfile }
func (r *NetworkPolicy) GetObjectMeta() *ObjectMeta       { return &r.ObjectMeta }
func (r *NetworkPolicy) GetTypeMeta() *TypeMeta           { return &r.TypeMeta }
func (r *NetworkPolicy) Kind() string                     { return KindNetworkPolicy }
func (r *GlobalNetworkPolicy) GetObjectMeta() *ObjectMeta { return &r.ObjectMeta }
func (r *GlobalNetworkPolicy) GetTypeMeta() *TypeMeta     { return &r.TypeMeta }
func (r *GlobalNetworkPolicy) Kind() string               { return KindGlobalNetworkPolicy }
func (r *WorkloadEndpoint) GetObjectMeta() *ObjectMeta    { return &r.ObjectMeta }
func (r *WorkloadEndpoint) GetTypeMeta() *TypeMeta        { return &r.TypeMeta }
func (r *WorkloadEndpoint) Kind() string                  { return KindWorkloadEndpoint }
func (r *HostEndpoint) GetObjectMeta() *ObjectMeta        { return &r.ObjectMeta }
func (r *HostEndpoint) GetTypeMeta() *TypeMeta            { return &r.TypeMeta }
func (r *HostEndpoint) Kind() string                      { return KindHostEndpoint }
func (r *Node) GetObjectMeta() *ObjectMeta                { return &r.ObjectMeta }
func (r *Node) GetTypeMeta() *TypeMeta                    { return &r.TypeMeta }
func (r *Node) Kind() string                              { return KindNode }
func (r *BGPPeer) GetObjectMeta() *ObjectMeta             { return &r.ObjectMeta }
func (r *BGPPeer) GetTypeMeta() *TypeMeta                 { return &r.TypeMeta }
func (r *BGPPeer) Kind() string                           { return KindBGPPeer }
func (r *BGPConfiguration) GetObjectMeta() *ObjectMeta    { return &r.ObjectMeta }
func (r *BGPConfiguration) GetTypeMeta() *TypeMeta        { return &r.TypeMeta }
func (r *BGPConfiguration) Kind() string                  { return KindBGPConfiguration }
func (r *FelixConfiguration) GetObjectMeta() *ObjectMeta  { return &r.ObjectMeta }
func (r *FelixConfiguration) GetTypeMeta() *TypeMeta      { return &r.TypeMeta }
func (r *FelixConfiguration) Kind() string                { return KindFelixConfiguration }

package api

import "net/netip"

// Defaults Calico applies when a resource is written.
const (
	DefaultNamespace       = "default"
	DefaultBlockSizeV4     = 26
	DefaultBlockSizeV6     = 122
	DefaultNodeSelector    = "all()"
	DefaultASNumber        = 64512
	DefaultTier            = "default"
	AssignmentAutomatic    = "Automatic"
	AssignmentManual       = "Manual"
	AllowedUseWorkload     = "Workload"
	AllowedUseTunnel       = "Tunnel"
	AllowedUseLoadBalancer = "LoadBalancer"
)

// Default fills in what Calico fills in when a resource is created or
// updated, so that what is stored (and what `get` shows) is explicit:
//   - TypeMeta: the canonical kind and apiVersion.
//   - NetworkPolicy, WorkloadEndpoint: namespace "default" when omitted.
//   - NetworkPolicy, GlobalNetworkPolicy: types from the rules present when
//     omitted (see DefaultPolicyTypes).
//   - IPPool: blockSize 26 (IPv4) or 122 (IPv6), ipipMode and vxlanMode
//     "Never", nodeSelector "all()", allowedUses [Workload, Tunnel],
//     assignmentMode "Automatic"; a correctly masked CIDR is written in its
//     canonical form. A CIDR with host bits set is left for Validate to refuse.
//
// Default never fails; Validate reports what it cannot fix.
func Default(r Resource) {
	*r.GetTypeMeta() = TypeMeta{Kind: r.Kind(), APIVersion: APIVersion}
	if Info(r).Namespaced && r.GetObjectMeta().Namespace == "" {
		r.GetObjectMeta().Namespace = DefaultNamespace
	}
	defaultIdentity(r)
	switch v := r.(type) {
	case *IPPool:
		defaultIPPool(&v.Spec)
	case *NetworkPolicy:
		v.Spec.Types = DefaultPolicyTypes(v.Spec)
	case *GlobalNetworkPolicy:
		v.Spec.Types = DefaultPolicyTypes(v.Spec)
	default:
		defaultMoreKinds(r)
	}
}

// DefaultPolicyTypes is Calico's rule for a policy without types: Ingress
// when it has no egress rules (including when it has no rules at all),
// Egress when it has only egress rules, both when it has both. Types given
// explicitly are returned unchanged.
func DefaultPolicyTypes(s PolicySpec) []string {
	if len(s.Types) > 0 {
		return s.Types
	}
	switch {
	case len(s.Egress) == 0:
		return []string{PolicyTypeIngress}
	case len(s.Ingress) == 0:
		return []string{PolicyTypeEgress}
	default:
		return []string{PolicyTypeIngress, PolicyTypeEgress}
	}
}

func defaultIPPool(s *IPPoolSpec) {
	if p, err := netip.ParsePrefix(s.CIDR); err == nil && p == p.Masked() {
		s.CIDR = p.String()
	}
	if s.BlockSize == 0 {
		if p, err := netip.ParsePrefix(s.CIDR); err == nil {
			if p.Addr().Is4() {
				s.BlockSize = DefaultBlockSizeV4
			} else {
				s.BlockSize = DefaultBlockSizeV6
			}
		}
	}
	if s.IPIPMode == "" {
		s.IPIPMode = EncapNever
	}
	if s.VXLANMode == "" {
		s.VXLANMode = EncapNever
	}
	if s.NodeSelector == "" {
		s.NodeSelector = DefaultNodeSelector
	}
	if len(s.AllowedUses) == 0 {
		s.AllowedUses = []string{AllowedUseWorkload, AllowedUseTunnel}
	}
	if s.AssignmentMode == "" {
		s.AssignmentMode = AssignmentAutomatic
	}
}

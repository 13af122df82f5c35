package api

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/selector"
)

// Validate checks a resource the way Calico does and refuses what this
// project does not implement. It returns nil or FieldErrors, every problem
// named by its field path. Run Default first: Validate treats empty
// defaulted fields as their defaults but does not fill them in.
func Validate(r Resource) error {
	_, err := ValidateWarn(r)
	return err
}

// ValidateWarn is Validate that also returns a warning for every field
// that is stored without effect here (see fields.go), each naming the
// field and why.
func ValidateWarn(r Resource) ([]string, error) {
	var c errs
	validateMeta(&c, r)
	validateIdentity(&c, r)
	switch v := r.(type) {
	case *IPPool:
		validateIPPool(&c, &v.Spec)
	case *Profile:
		validateProfile(&c, &v.Spec)
	case *NetworkPolicy:
		validatePolicy(&c, &v.Spec, false)
	case *GlobalNetworkPolicy:
		validatePolicy(&c, &v.Spec, true)
	case *WorkloadEndpoint:
		validateWorkloadEndpoint(&c, &v.Spec)
	case *HostEndpoint:
		validateHostEndpoint(&c, &v.Spec)
	case *Node:
		validateNode(&c, &v.Spec)
	case *BGPPeer:
		validateBGPPeer(&c, &v.Spec, strOf(extraSpec(v)["localWorkloadSelector"]) != "")
	case *BGPConfiguration:
		validateBGPConfiguration(&c, &v.Spec)
	case *FelixConfiguration:
		validateFelixConfiguration(&c, &v.Spec)
	case *BGPFilter:
		validateBGPFilter(&c, &v.Spec)
	default:
		if !validateMoreKinds(&c, r) {
			c.add("kind", "unknown resource type %T", r)
		}
	}
	validateExtras(&c, r)
	warn := append(extraWarnings(r), c.warn...)
	if why := kindNoEffect(r); why != "" {
		warn = append(warn, why)
	}
	return warn, c.err()
}

// ---- metadata ----

const maxAnnotationBytes = 256 << 10

func validateMeta(c *errs, r Resource) {
	m := r.GetObjectMeta()
	ki := Info(r)
	switch {
	case m.Name == "":
		c.add("metadata.name", "name is required")
	case len(m.Name) > maxNameLen:
		c.add("metadata.name", "name is too long (%d characters, at most %d)", len(m.Name), maxNameLen)
	case r.Kind() == KindNetworkPolicy || r.Kind() == KindGlobalNetworkPolicy || isStagedPolicyKind(r.Kind()):
		if strings.HasPrefix(m.Name, "knp.default.") {
			c.add("metadata.name", "invalid name %q: the prefix knp.default. is reserved for Kubernetes network policies", m.Name)
		} else if !policyNameRe.MatchString(m.Name) {
			c.add("metadata.name", "invalid name %q: policy names are lower case alphanumeric characters or '-', with at most one '.'", m.Name)
		}
	default:
		if err := checkName(m.Name); err != nil {
			c.add("metadata.name", "%v", err)
		}
	}
	if ki.Namespaced {
		switch {
		case m.Namespace == "":
			c.add("metadata.namespace", "namespace is required")
		case len(m.Namespace) > maxLabelLen || !labelRe.MatchString(m.Namespace):
			c.add("metadata.namespace", "invalid namespace %q: must be at most 63 lower case alphanumeric characters or '-'", m.Namespace)
		}
	} else if m.Namespace != "" {
		c.add("metadata.namespace", "%s is not namespaced: remove the namespace", r.Kind())
	}
	checkLabels(c, "metadata.labels", m.Labels)
	checkAnnotations(c, "metadata.annotations", m.Annotations)
	if m.ResourceVersion != "" {
		if n, err := strconv.ParseInt(m.ResourceVersion, 10, 64); err != nil || n <= 0 {
			c.add("metadata.resourceVersion", "invalid resourceVersion %q: want the number shown by `calico get`", m.ResourceVersion)
		}
	}
	if m.CreationTimestamp != "" {
		if _, err := time.Parse(time.RFC3339, m.CreationTimestamp); err != nil {
			c.add("metadata.creationTimestamp", "invalid timestamp %q: want RFC 3339, e.g. 2024-01-02T15:04:05Z", m.CreationTimestamp)
		}
	}
}

func checkLabels(c *errs, path string, labels map[string]string) {
	total, bad := 0, 0
	for _, k := range sortedKeys(labels) {
		total += len(k) + len(labels[k])
		kerr, verr := checkQualifiedName(k), checkLabelValue(labels[k])
		if kerr == nil && verr == nil {
			continue
		}
		if bad++; bad > maxReportedLabels {
			continue
		}
		if kerr != nil {
			c.add(path, "%v", kerr)
		}
		if verr != nil {
			c.add(join(path, k), "%v", verr)
		}
	}
	if bad > maxReportedLabels {
		c.add(path, "and %d more invalid labels", bad-maxReportedLabels)
	}
	if total > maxLabelBytes {
		c.add(path, "labels are too large (%d bytes, at most %d)", total, maxLabelBytes)
	}
}

// maxLabelBytes bounds the labels of one resource (as annotations are
// bounded): every endpoint's labels are matched against every selector, and
// the datastore refuses values above about 1.5 MiB.
const maxLabelBytes = 256 << 10

// maxReportedLabels is how many invalid labels an error lists one by one.
const maxReportedLabels = 20

func checkAnnotations(c *errs, path string, ann map[string]string) {
	total := 0
	for _, k := range sortedKeys(ann) {
		if err := checkQualifiedName(strings.ToLower(k)); err != nil {
			c.add(path, "%v", err)
		}
		total += len(k) + len(ann[k])
	}
	if total > maxAnnotationBytes {
		c.add(path, "annotations are too large (%d bytes, at most %d)", total, maxAnnotationBytes)
	}
}

func checkSelector(c *errs, path, s string) {
	if s == "" {
		return
	}
	if _, err := selector.Parse(s); err != nil {
		c.add(path, "invalid selector: %v", err)
	}
}

func checkRefName(c *errs, path, s string) {
	if s == "" {
		c.add(path, "must not be empty")
		return
	}
	if err := checkName(s); err != nil {
		c.add(path, "%v", err)
	}
}

// ---- IPPool ----

var (
	v4LinkLocal = netip.MustParsePrefix("169.254.0.0/16")
	v6LinkLocal = netip.MustParsePrefix("fe80::/10")
)

func encapEnabled(mode string) bool { return mode == EncapAlways || mode == EncapCrossSubnet }

func validEncap(mode string) bool {
	return mode == "" || mode == EncapNever || mode == EncapAlways || mode == EncapCrossSubnet
}

func validateIPPool(c *errs, s *IPPoolSpec) {
	var pool netip.Prefix
	poolOK := false
	switch p, err := netip.ParsePrefix(s.CIDR); {
	case s.CIDR == "":
		c.add("spec.cidr", "cidr is required")
	case err != nil:
		c.add("spec.cidr", "invalid CIDR %q: want address/prefix-length, e.g. 192.168.0.0/16", s.CIDR)
	case p != p.Masked():
		c.add("spec.cidr", "IP pool CIDR is not strictly masked: %s has host bits set (did you mean %s?)", s.CIDR, p.Masked())
	case p.Addr().Is4() && p.Overlaps(v4LinkLocal):
		c.add("spec.cidr", "IP pool range overlaps with the IPv4 link-local range 169.254.0.0/16")
	case p.Addr().Is6() && p.Overlaps(v6LinkLocal):
		c.add("spec.cidr", "IP pool range overlaps with the IPv6 link-local range fe80::/10")
	default:
		pool, poolOK = p, true
	}

	if poolOK {
		bs := s.BlockSize
		if bs == 0 {
			bs = DefaultBlockSizeV4
			if pool.Addr().Is6() {
				bs = DefaultBlockSizeV6
			}
		}
		switch {
		case pool.Addr().Is4() && (bs < 20 || bs > 32):
			c.add("spec.blockSize", "IPv4 block size must be between 20 and 32 (got %d)", bs)
		case pool.Addr().Is6() && (bs < 116 || bs > 128):
			c.add("spec.blockSize", "IPv6 block size must be between 116 and 128 (got %d)", bs)
		case !s.Disabled && pool.Bits() > bs:
			c.add("spec.cidr", "IP pool size is too small for use with Calico IPAM: /%d is smaller than one block (blockSize %d)", pool.Bits(), bs)
		}
	}

	if !validEncap(s.IPIPMode) {
		c.add("spec.ipipMode", "invalid ipipMode %q: want Always, CrossSubnet or Never", s.IPIPMode)
	}
	if !validEncap(s.VXLANMode) {
		c.add("spec.vxlanMode", "invalid vxlanMode %q: want Always, CrossSubnet or Never", s.VXLANMode)
	}
	if encapEnabled(s.IPIPMode) && encapEnabled(s.VXLANMode) {
		c.add("spec.ipipMode", "ipipMode and vxlanMode cannot both be enabled")
	}
	if encapEnabled(s.IPIPMode) {
		c.noEffect("spec.ipipMode", whyIPIP+" (the pool is routed without encapsulation)")
	}
	checkSelector(c, "spec.nodeSelector", s.NodeSelector)
	lb, wlOrTunnel := false, false
	for i, u := range s.AllowedUses {
		switch u {
		case AllowedUseWorkload, AllowedUseTunnel:
			wlOrTunnel = true
		case AllowedUseLoadBalancer:
			lb = true
		default:
			c.add(idx("spec.allowedUses", i), "unknown use %q: want Workload, Tunnel or LoadBalancer", u)
		}
	}
	if lb {
		// Calico's rules for a LoadBalancer pool.
		switch {
		case wlOrTunnel:
			c.add("spec.allowedUses", "LoadBalancer cannot be combined with Workload or Tunnel allowed uses")
		case encapEnabled(s.IPIPMode) || encapEnabled(s.VXLANMode):
			c.add("spec.allowedUses", "LoadBalancer IP pool cannot have IPIP or VXLAN enabled")
		case s.DisableBGPExport:
			c.add("spec.disableBGPExport", "LoadBalancer IP pools cannot disable BGP export")
		case strings.TrimSpace(s.NodeSelector) != "" && strings.TrimSpace(s.NodeSelector) != "all()":
			c.add("spec.nodeSelector", "IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()")
		default:
			c.noEffect("spec.allowedUses", whyLoadBalancer)
		}
	}
	switch s.AssignmentMode {
	case "", AssignmentAutomatic, AssignmentManual:
	default:
		c.add("spec.assignmentMode", "invalid assignmentMode %q: want Automatic or Manual", s.AssignmentMode)
	}
}

// ---- Profile ----

func validateProfile(c *errs, s *ProfileSpec) {
	for i := range s.Ingress {
		validateRule(c, idx("spec.ingress", i), &s.Ingress[i])
	}
	for i := range s.Egress {
		validateRule(c, idx("spec.egress", i), &s.Egress[i])
	}
	checkLabels(c, "spec.labelsToApply", s.LabelsToApply)
}

// ---- NetworkPolicy and GlobalNetworkPolicy ----

func validatePolicy(c *errs, s *PolicySpec, global bool) {
	if s.Tier != "" && (len(s.Tier) > maxTierNameLen || !tierNameRe.MatchString(s.Tier)) {
		c.add("spec.tier", "invalid tier name %q: at most 63 lower case alphanumeric characters or '-'", s.Tier)
	}
	if s.Order != nil && (math.IsNaN(*s.Order) || math.IsInf(*s.Order, 0)) {
		c.add("spec.order", "order must be a finite number")
	}
	checkSelector(c, "spec.selector", s.Selector)
	seen := map[string]bool{}
	for i, t := range s.Types {
		switch {
		case t != PolicyTypeIngress && t != PolicyTypeEgress:
			c.add(idx("spec.types", i), "invalid type %q: want Ingress or Egress", t)
		case seen[t]:
			c.add(idx("spec.types", i), "%q type specified more than once", t)
		}
		seen[t] = true
	}
	for i := range s.Ingress {
		validateRule(c, idx("spec.ingress", i), &s.Ingress[i])
	}
	for i := range s.Egress {
		validateRule(c, idx("spec.egress", i), &s.Egress[i])
		if s.Egress[i].HTTP != nil {
			c.add(join(idx("spec.egress", i), "http"), "not allowed in egress rules")
		}
	}
	checkPolicyKubeSelectors(c, s, global)
	checkPolicyServices(c, s, global)
	gnpOnly := func(field string, set bool) {
		if set {
			c.add(field, "not a field of NetworkPolicy (GlobalNetworkPolicy only)")
		}
	}
	if global {
		validateHostPolicy(c, s)
	} else {
		gnpOnly("spec.doNotTrack", s.DoNotTrack)
		gnpOnly("spec.preDNAT", s.PreDNAT)
		gnpOnly("spec.applyOnForward", s.ApplyOnForward)
	}
	for i, h := range s.PerformanceHints {
		if h != "AssumeNeededOnEveryNode" {
			c.add(idx("spec.performanceHints", i), "unknown performance hint %q: want AssumeNeededOnEveryNode", h)
		}
	}
}

// validateHostPolicy checks the host endpoint flags of a
// GlobalNetworkPolicy as Calico does.
func validateHostPolicy(c *errs, s *PolicySpec) {
	if s.PreDNAT && s.DoNotTrack {
		c.add("spec.preDNAT", "preDNAT and doNotTrack cannot both be true: a policy is either pre-DNAT or untracked")
	}
	if (s.PreDNAT || s.DoNotTrack) && !s.ApplyOnForward {
		c.add("spec.applyOnForward", "applyOnForward must be true when preDNAT or doNotTrack is true (they apply to forwarded traffic too)")
	}
	if s.PreDNAT {
		if len(s.Egress) > 0 {
			c.add("spec.egress", "a preDNAT policy cannot have egress rules (pre-DNAT policy judges incoming traffic only)")
		}
		for i, t := range s.Types {
			if strings.EqualFold(t, PolicyTypeEgress) {
				c.add(idx("spec.types", i), "a preDNAT policy cannot have type Egress (pre-DNAT policy judges incoming traffic only)")
			}
		}
	}
}

// ---- Rules ----

var actions = "Allow, Deny, Log or Pass"

func validateRule(c *errs, path string, r *Rule) {
	switch r.Action {
	case ActionAllow, ActionDeny, ActionLog, ActionPass:
	case "":
		c.add(join(path, "action"), "action is required: %s", actions)
	default:
		c.add(join(path, "action"), "invalid action %q: want %s", r.Action, actions)
	}
	if r.IPVersion != nil && *r.IPVersion != 4 && *r.IPVersion != 6 {
		c.add(join(path, "ipVersion"), "ipVersion must be 4 or 6 (got %d)", *r.IPVersion)
	}
	checkProtocol(c, join(path, "protocol"), r.Protocol)
	checkProtocol(c, join(path, "notProtocol"), r.NotProtocol)

	isICMP := func(p *Protocol) bool { return p != nil && p.IsICMP() }
	isICMPv6 := func(p *Protocol) bool { return p != nil && p.IsICMPv6() }
	for _, f := range []struct {
		name string
		icmp *ICMPFields
	}{{"icmp", r.ICMP}, {"notICMP", r.NotICMP}} {
		if f.icmp == nil {
			continue
		}
		p := join(path, f.name)
		if !isICMP(r.Protocol) && !isICMPv6(r.Protocol) {
			c.add(p, "rules that specify ICMP fields must set protocol to ICMP or ICMPv6")
		}
		if f.icmp.Code != nil && f.icmp.Type == nil {
			c.add(join(p, "code"), "ICMP code specified without an ICMP type")
		}
		if f.icmp.Type != nil && (*f.icmp.Type < 0 || *f.icmp.Type > 254) {
			c.add(join(p, "type"), "ICMP type must be 0-254 (got %d)", *f.icmp.Type)
		}
		if f.icmp.Code != nil && (*f.icmp.Code < 0 || *f.icmp.Code > 255) {
			c.add(join(p, "code"), "ICMP code must be 0-255 (got %d)", *f.icmp.Code)
		}
	}
	if r.IPVersion != nil {
		if (isICMP(r.Protocol) || isICMP(r.NotProtocol)) && *r.IPVersion != 4 {
			c.add(join(path, "ipVersion"), "must set ipVersion to 4 with protocol ICMP")
		}
		if (isICMPv6(r.Protocol) || isICMPv6(r.NotProtocol)) && *r.IPVersion != 6 {
			c.add(join(path, "ipVersion"), "must set ipVersion to 6 with protocol ICMPv6")
		}
	}

	portsOK := r.Protocol != nil && r.Protocol.SupportsPorts()
	var seenV4, seenV6 bool
	for _, side := range []struct {
		name string
		e    *EntityRule
	}{{"source", &r.Source}, {"destination", &r.Destination}} {
		sp := join(path, side.name)
		e := side.e
		for _, pf := range []struct {
			name  string
			ports []Port
		}{{"ports", e.Ports}, {"notPorts", e.NotPorts}} {
			// Calico: without a protocol only named ports are allowed (a
			// named port carries its endpoint port's protocol); with one,
			// it must be a protocol with ports.
			if len(pf.ports) > 0 && !portsOK && (r.Protocol != nil || !allNamed(pf.ports)) {
				c.add(join(sp, pf.name), "rules that specify ports must set protocol to TCP, UDP or SCTP (only named ports may leave it unset)")
			}
			for i, p := range pf.ports {
				checkPort(c, idx(join(sp, pf.name), i), p)
			}
		}
		for _, nf := range []struct {
			name string
			nets []string
		}{{"nets", e.Nets}, {"notNets", e.NotNets}} {
			var v4, v6 bool
			for i, n := range nf.nets {
				p, err := ParseNet(n)
				if err != nil {
					c.add(idx(join(sp, nf.name), i), "%v", err)
					continue
				}
				v4 = v4 || p.Addr().Is4()
				v6 = v6 || p.Addr().Is6()
			}
			np := join(sp, nf.name)
			if r.IPVersion != nil && ((v4 && *r.IPVersion != 4) || (v6 && *r.IPVersion != 6)) {
				c.add(np, "rule IP version doesn't match CIDR version")
			}
			if (v4 && v6) || (v4 && seenV6) || (v6 && seenV4) {
				c.add(np, "rule contains both IPv4 and IPv6 CIDRs")
			}
			seenV4 = seenV4 || v4
			seenV6 = seenV6 || v6
		}
		checkSelector(c, join(sp, "selector"), e.Selector)
		checkSelector(c, join(sp, "notSelector"), e.NotSelector)
		checkSideKubeSelectors(c, sp, e)
	}
	checkServicePorts(c, path, r)
	checkHTTP(c, join(path, "http"), r)
	if r.Metadata != nil {
		checkAnnotations(c, join(path, "metadata.annotations"), r.Metadata.Annotations)
	}
}

// checkHTTP validates an HTTP match as Calico does (no repeated method; each
// path exactly one of exact or prefix, starting with "/" and without "?",
// "#" or " ") and warns how the rule acts here. There is no application
// layer proxy, so the request cannot be seen: the rule is read so that the
// policy never admits more than written (see internal/calc).
func checkHTTP(c *errs, path string, r *Rule) {
	h := r.HTTP
	if h == nil {
		return
	}
	seen := map[string]bool{}
	for i, m := range h.Methods {
		if seen[m] {
			c.add(idx(join(path, "methods"), i), "method %q is listed more than once", m)
		}
		seen[m] = true
	}
	for i, hp := range h.Paths {
		pp := idx(join(path, "paths"), i)
		v := hp.Exact
		switch {
		case hp.Exact != "" && hp.Prefix != "":
			c.add(pp, "invalid path match: both exact and prefix are set")
			continue
		case hp.Exact == "" && hp.Prefix == "":
			c.add(pp, "invalid path match: either exact or prefix must be set")
			continue
		case v == "":
			v = hp.Prefix
		}
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "? #") {
			c.add(pp, "invalid path %q: must start with / and not contain ?, # or a space", v)
		}
	}
	switch {
	case strings.EqualFold(r.Action, ActionDeny):
		c.note(path, "stored; without an application layer proxy the HTTP request cannot be checked here, so this Deny rule denies all its L3/L4 traffic")
	case strings.EqualFold(r.Action, ActionPass):
		c.note(path, "stored; without an application layer proxy the HTTP request cannot be checked here, so this Pass rule denies all its L3/L4 traffic (neither passing nor not passing it is safe)")
	default:
		c.note(path, fmt.Sprintf("stored; without an application layer proxy the HTTP request cannot be checked here, so this %s rule matches no traffic", r.Action))
	}
}

func checkProtocol(c *errs, path string, p *Protocol) {
	if p == nil {
		return
	}
	if p.Number != nil {
		if *p.Number == 0 {
			c.add(path, "protocol number must be 1-255")
		}
		return
	}
	if _, ok := protocolNumbers[p.Name]; ok {
		return
	}
	if n, err := strconv.Atoi(p.Name); err == nil {
		if n < 1 || n > 255 {
			c.add(path, "protocol number must be 1-255 (got %d)", n)
		}
		return
	}
	for name := range protocolNumbers {
		if strings.EqualFold(name, p.Name) {
			c.add(path, "invalid protocol %q (did you mean %q?)", p.Name, name)
			return
		}
	}
	c.add(path, "invalid protocol %q: want TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255", p.Name)
}

func allNamed(ps []Port) bool {
	for _, p := range ps {
		if p.PortName == "" {
			return false
		}
	}
	return true
}

func checkPort(c *errs, path string, p Port) {
	switch {
	case p.PortName != "":
		// A named port matches the ports of that name in the spec.ports
		// of the workload endpoints the rule's side selects.
		if err := checkPortName(p.PortName); err != nil {
			c.add(path, "%v", err)
		}
	case p.MinPort > p.MaxPort:
		c.add(path, "invalid port range %d:%d: min is greater than max", p.MinPort, p.MaxPort)
	case p.MinPort < 1:
		c.add(path, "port numbers must be 1-65535 (got 0)")
	}
}

// ---- WorkloadEndpoint and HostEndpoint ----

func validateWorkloadEndpoint(c *errs, s *WorkloadEndpointSpec) {
	if s.Node == "" {
		c.add("spec.node", "node is required")
	} else if err := checkName(s.Node); err != nil {
		c.add("spec.node", "%v", err)
	}
	if s.ContainerID != "" && !containerIDRe.MatchString(s.ContainerID) {
		c.add("spec.containerID", "invalid containerID %q", s.ContainerID)
	}
	for i, n := range s.IPNetworks {
		p, err := ParseAddrOrNet(n)
		switch {
		case err != nil:
			c.add(idx("spec.ipNetworks", i), "%v", err)
		case p.Bits() != p.Addr().BitLen():
			c.add(idx("spec.ipNetworks", i), "IP network %s contains multiple addresses: want a single address (/32 or /128)", n)
		}
	}
	if len(s.IPNATs) > 0 {
		c.noEffect("spec.ipNATs", "1:1 NAT (floating IPs) is not available in this dataplane")
	}
	if len(s.AllowSpoofedSourcePrefixes) > 0 {
		c.noEffect("spec.allowSpoofedSourcePrefixes", "workloads may only send from their own addresses here")
	}
	checkGateway(c, "spec.ipv4Gateway", s.IPv4Gateway, 4)
	checkGateway(c, "spec.ipv6Gateway", s.IPv6Gateway, 6)
	for i, p := range s.Profiles {
		checkRefName(c, idx("spec.profiles", i), p)
	}
	if s.InterfaceName != "" && !interfaceRe.MatchString(s.InterfaceName) {
		c.add("spec.interfaceName", "invalid interface name %q: want 1-15 letters, digits, '_', '.' or '-'", s.InterfaceName)
	}
	if s.MAC != "" {
		if _, err := net.ParseMAC(s.MAC); err != nil {
			c.add("spec.mac", "invalid MAC address %q", s.MAC)
		}
	}
	for i, p := range s.Ports {
		pp := idx("spec.ports", i)
		switch {
		case p.Name == "" && p.HostPort == 0:
			c.add(join(pp, "name"), "name is required (unless the port sets hostPort)")
		case p.Name != "":
			if err := checkPortName(p.Name); err != nil {
				c.add(join(pp, "name"), "%v", err)
			}
		}
		checkEndpointPort(c, pp, p.Protocol, p.Port)
		checkHostPort(c, pp, p)
	}
}

// checkHostPort validates a published port (hostPort, hostIP): the dataplane
// forwards TCP and UDP host ports to the workload (Calico leaves this to the
// CNI portmap plugin; here the node does it).
func checkHostPort(c *errs, pp string, p WorkloadEndpointPort) {
	if p.HostIP != "" {
		a, err := netip.ParseAddr(p.HostIP)
		switch {
		case err != nil || a.Zone() != "" || a.Is4In6():
			c.add(join(pp, "hostIP"), "invalid host IP %q: want an IPv4 or IPv6 address", p.HostIP)
		case p.HostPort == 0:
			c.add(join(pp, "hostIP"), "hostIP needs hostPort: set the host port to publish on %s", p.HostIP)
		}
	}
	if p.HostPort == 0 {
		return
	}
	if n, err := p.Protocol.NumberValue(); err == nil && n != 6 && n != 17 {
		c.add(join(pp, "protocol"), "a port with hostPort must use protocol TCP or UDP (got %q)", p.Protocol.String())
	}
}

func checkEndpointPort(c *errs, path string, proto Protocol, port uint16) {
	if !proto.SupportsPorts() {
		c.add(join(path, "protocol"), "protocol must be TCP, UDP or SCTP (got %q)", proto.String())
	}
	if port == 0 {
		c.add(join(path, "port"), "port must be 1-65535")
	}
}

func checkGateway(c *errs, path, s string, family int) {
	if s == "" {
		return
	}
	p, err := ParseAddrOrNet(s)
	if err != nil || (family == 4) != p.Addr().Is4() {
		c.add(path, "invalid IPv%d gateway address %q", family, s)
	}
}

func validateHostEndpoint(c *errs, s *HostEndpointSpec) {
	if s.Node == "" {
		c.add("spec.node", "node is required")
	} else if err := checkName(s.Node); err != nil {
		c.add("spec.node", "%v", err)
	}
	if s.InterfaceName == "" && len(s.ExpectedIPs) == 0 {
		c.add("spec.interfaceName", "no interface or expected IPs have been specified")
	}
	if s.InterfaceName != "" && s.InterfaceName != "*" && !interfaceRe.MatchString(s.InterfaceName) {
		c.add("spec.interfaceName", "invalid interface name %q: want 1-15 letters, digits, '_', '.' or '-', or \"*\"", s.InterfaceName)
	}
	for i, ip := range s.ExpectedIPs {
		if a, err := netip.ParseAddr(ip); err != nil || a.Zone() != "" {
			c.add(idx("spec.expectedIPs", i), "invalid IP address %q", ip)
		}
	}
	for i, p := range s.Profiles {
		checkRefName(c, idx("spec.profiles", i), p)
	}
	for i, p := range s.Ports {
		pp := idx("spec.ports", i)
		if err := checkPortName(p.Name); err != nil {
			c.add(join(pp, "name"), "%v", err)
		}
		checkEndpointPort(c, pp, p.Protocol, p.Port)
	}
}

// ---- Node ----

var nodeAddressTypes = map[string]bool{"CalicoNodeIP": true, "InternalIP": true, "ExternalIP": true}

func validateNode(c *errs, s *NodeSpec) {
	if b := s.BGP; b != nil {
		if *b == (NodeBGPSpec{}) {
			c.add("spec.bgp", "bgp must not be empty: set ipv4Address and/or ipv6Address, or remove it")
		}
		if b.ASNumber != nil && *b.ASNumber == 0 {
			c.add("spec.bgp.asNumber", "AS number 0 is reserved")
		}
		checkHostCIDR(c, "spec.bgp.ipv4Address", b.IPv4Address, 4)
		checkHostCIDR(c, "spec.bgp.ipv6Address", b.IPv6Address, 6)
		if b.IPv4IPIPTunnelAddr != "" {
			c.noEffect("spec.bgp.ipv4IPIPTunnelAddr", whyIPIP)
		}
		if b.RouteReflectorClusterID != "" {
			if a, err := netip.ParseAddr(b.RouteReflectorClusterID); err != nil || !a.Is4() {
				c.add("spec.bgp.routeReflectorClusterID", "invalid cluster ID %q: want an IPv4-style dotted quad", b.RouteReflectorClusterID)
			}
		}
	}
	checkHostCIDR(c, "spec.ipv4VXLANTunnelAddr", s.IPv4VXLANTunnelAddr, 4)
	checkHostCIDR(c, "spec.ipv6VXLANTunnelAddr", s.IPv6VXLANTunnelAddr, 6)
	for _, m := range []struct{ path, v string }{
		{"spec.vxlanTunnelMACAddr", s.VXLANTunnelMACAddr},
		{"spec.vxlanTunnelMACAddrV6", s.VXLANTunnelMACAddrV6},
	} {
		if m.v != "" {
			if _, err := net.ParseMAC(m.v); err != nil {
				c.add(m.path, "invalid MAC address %q", m.v)
			}
		}
	}
	for i, o := range s.OrchRefs {
		if o.Orchestrator == "" {
			c.add(join(idx("spec.orchRefs", i), "orchestrator"), "orchestrator is required")
		}
	}
	for i, a := range s.Addresses {
		p := idx("spec.addresses", i)
		if _, err := ParseAddrOrNet(a.Address); err != nil {
			c.add(join(p, "address"), "%v", err)
		}
		if a.Type != "" && !nodeAddressTypes[a.Type] {
			c.add(join(p, "type"), "invalid address type %q: want CalicoNodeIP, InternalIP or ExternalIP", a.Type)
		}
	}
}

// checkHostCIDR validates an address with an optional prefix length
// ("10.0.0.1/24"), as Calico's Node addresses are written.
func checkHostCIDR(c *errs, path, s string, family int) {
	if s == "" {
		return
	}
	p, err := ParseAddrOrNet(s)
	if err != nil || (family == 4) != p.Addr().Is4() {
		c.add(path, "invalid IPv%d address %q", family, s)
	}
}

// ---- BGP ----

// localWorkload: spec.localWorkloadSelector is set (Calico's third way to
// name the peer, stored here with no effect; see fields_table.go).
func validateBGPPeer(c *errs, s *BGPPeerSpec, localWorkload bool) {
	if s.Node != "" {
		if err := checkName(s.Node); err != nil {
			c.add("spec.node", "%v", err)
		}
		if s.NodeSelector != "" {
			c.add("spec.node", "node must be empty when nodeSelector is specified")
		}
	}
	checkSelector(c, "spec.nodeSelector", s.NodeSelector)
	checkSelector(c, "spec.peerSelector", s.PeerSelector)
	switch {
	case s.PeerIP != "" && s.PeerSelector != "":
		c.add("spec.peerIP", "peerIP must be empty when peerSelector is specified")
	case s.PeerIP == "" && s.PeerSelector == "" && !localWorkload:
		c.add("spec.peerIP", "one of peerIP, peerSelector or localWorkloadSelector is required")
	case s.PeerIP != "":
		if _, _, err := ParsePeerIP(s.PeerIP); err != nil {
			c.add("spec.peerIP", "%v", err)
		}
		if s.ASNumber == 0 {
			c.add("spec.asNumber", "asNumber is required with peerIP")
		}
	case s.PeerSelector != "" && s.ASNumber != 0:
		c.add("spec.asNumber", "asNumber must be empty when peerSelector is specified")
	}
	validateBGPPeerSecurity(c, s)
	if s.KeepOriginalNextHop {
		c.noEffect("spec.keepOriginalNextHop", "the embedded speaker always sets itself as next hop towards peers")
	}
	switch s.SourceAddress {
	case "", "UseNodeIP", "None":
	default:
		c.add("spec.sourceAddress", "invalid sourceAddress %q: want UseNodeIP or None", s.SourceAddress)
	}
	checkDuration(c, "spec.maxRestartTime", s.MaxRestartTime, false)
}

var logLevels = map[string]bool{"Trace": true, "Debug": true, "Info": true, "Warning": true, "Error": true, "Fatal": true}

func checkLogLevel(c *errs, path, s string) {
	if s != "" && !logLevels[s] {
		c.add(path, "invalid log level %q: want Trace, Debug, Info, Warning, Error or Fatal", s)
	}
}

// checkDuration refuses negative durations, and zero unless zeroOK.
func checkDuration(c *errs, path string, d *Duration, zeroOK bool) {
	if d == nil {
		return
	}
	if d.Duration < 0 || (!zeroOK && d.Duration == 0) {
		c.add(path, "duration must be positive (got %s)", d.Duration)
	}
}

func validateBGPConfiguration(c *errs, s *BGPConfigurationSpec) {
	checkLogLevel(c, "spec.logSeverityScreen", s.LogSeverityScreen)
	if s.ASNumber != nil && *s.ASNumber == 0 {
		c.add("spec.asNumber", "AS number 0 is reserved")
	}
	switch s.BindMode {
	case "", "None", "NodeIP":
	default:
		c.add("spec.bindMode", "invalid bindMode %q: want None or NodeIP", s.BindMode)
	}
	checkDuration(c, "spec.nodeMeshMaxRestartTime", s.NodeMeshMaxRestartTime, false)
	if s.NodeMeshMaxRestartTime != nil && s.NodeToNodeMeshEnabled != nil && !*s.NodeToNodeMeshEnabled {
		c.add("spec.nodeMeshMaxRestartTime", "cannot be set when nodeToNodeMeshEnabled is false")
	}
	for i, ifc := range s.IgnoredInterfaces {
		if ifc == "*" || !ignoredInterfaceRe.MatchString(ifc) {
			c.add(idx("spec.ignoredInterfaces", i), "invalid interface pattern %q", ifc)
		}
	}
}

// ---- FelixConfiguration ----

func validateFelixConfiguration(c *errs, s *FelixConfigurationSpec) {
	checkLogLevel(c, "spec.logSeverityScreen", s.LogSeverityScreen)
	checkDuration(c, "spec.routeRefreshInterval", s.RouteRefreshInterval, true)
	checkDuration(c, "spec.nftablesRefreshInterval", s.NftablesRefreshInterval, true)
	if s.IptablesRefreshInterval != nil {
		c.noEffect("spec.iptablesRefreshInterval", whyIptables+": set nftablesRefreshInterval")
	}
	switch s.DefaultEndpointToHostAction {
	case "", "Drop", "Accept", "Return":
	default:
		c.add("spec.defaultEndpointToHostAction", "invalid action %q: want Drop, Accept or Return", s.DefaultEndpointToHostAction)
	}
	if s.InterfacePrefix != "" && s.InterfacePrefix != "cali" {
		c.noEffect("spec.interfacePrefix", whyIfacePrefix)
	}
	for _, fp := range []struct {
		path  string
		ports *[]ProtoPort
	}{{"spec.failsafeInboundHostPorts", s.FailsafeInboundHostPorts}, {"spec.failsafeOutboundHostPorts", s.FailsafeOutboundHostPorts}} {
		if fp.ports == nil {
			continue
		}
		for i, p := range *fp.ports {
			pp := idx(fp.path, i)
			switch p.Protocol {
			case "TCP", "UDP", "SCTP":
			default:
				c.add(join(pp, "protocol"), "protocol must be TCP, UDP or SCTP (got %q)", p.Protocol)
			}
			if p.Port == 0 {
				c.add(join(pp, "port"), "port must be 1-65535")
			}
			if p.Net != "" {
				if _, err := ParseNet(p.Net); err != nil {
					c.add(join(pp, "net"), "%v", err)
				}
			}
		}
	}
	checkIntRange(c, "spec.vxlanPort", s.VXLANPort, 1, 65535)
	checkIntRange(c, "spec.vxlanVNI", s.VXLANVNI, 1, 1<<24-1)
	checkIntRange(c, "spec.vxlanMTU", s.VXLANMTU, 68, 65535)
	checkIntRange(c, "spec.healthPort", s.HealthPort, 1, 65535)
	checkIntRange(c, "spec.prometheusMetricsPort", s.PrometheusMetricsPort, 1, 65535)
}

func checkIntRange(c *errs, path string, v *int, lo, hi int) {
	if v != nil && (*v < lo || *v > hi) {
		c.add(path, "must be %d-%d (got %d)", lo, hi, *v)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

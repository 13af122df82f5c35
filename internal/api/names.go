package api

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

const (
	labelFmt     = `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
	subdomainFmt = labelFmt + `(\.` + labelFmt + `)*`
	maxNameLen   = 253
	maxLabelLen  = 63
)

var (
	// Most names: lowercase DNS-1123 subdomains (dots allowed).
	nameRe = regexp.MustCompile(`^` + subdomainFmt + `$`)
	// Namespaces: DNS-1123 labels (no dots).
	labelRe = regexp.MustCompile(`^` + labelFmt + `$`)
	// Calico allows NetworkPolicy and GlobalNetworkPolicy names at most one
	// dot (a tier-style prefix).
	policyNameRe = regexp.MustCompile(`^(` + labelFmt + `\.)?` + labelFmt + `$`)

	qualifiedNamePartRe = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelValueRe        = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	interfaceRe         = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)
	ignoredInterfaceRe  = regexp.MustCompile(`^[a-zA-Z0-9_.*-]{1,15}$`)
	containerIDRe       = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`)
	portNameRe          = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// checkName validates a resource or reference name (DNS-1123 subdomain).
func checkName(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("name is too long (%d characters, at most %d)", len(s), maxNameLen)
	}
	if !nameRe.MatchString(s) {
		return fmt.Errorf("invalid name %q: must consist of lower case alphanumeric characters, '-' or '.', and start and end with an alphanumeric character", s)
	}
	return nil
}

// checkQualifiedName validates a label or annotation key: an optional DNS
// subdomain prefix and "/", then a name of at most 63 characters.
func checkQualifiedName(k string) error {
	name := k
	if prefix, rest, ok := strings.Cut(k, "/"); ok {
		if prefix == "" || len(prefix) > maxNameLen || !nameRe.MatchString(prefix) {
			return fmt.Errorf("invalid key %q: the prefix before '/' must be a lowercase DNS subdomain", k)
		}
		name = rest
	}
	if name == "" || len(name) > maxLabelLen || !qualifiedNamePartRe.MatchString(name) {
		return fmt.Errorf("invalid key %q: must be at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character, with an optional DNS subdomain prefix and '/'", k)
	}
	return nil
}

func checkLabelValue(v string) error {
	if len(v) > maxLabelLen || !labelValueRe.MatchString(v) {
		return fmt.Errorf("invalid label value %q: must be empty or at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character", v)
	}
	return nil
}

// CheckPortName reports whether s is a valid port name, as Calico's
// validator requires of named ports.
func CheckPortName(s string) error { return checkPortName(s) }

// checkPortName validates a named port (an IANA service name, as
// Kubernetes): 1-15 lowercase alphanumerics or '-', at least one letter,
// no leading, trailing or doubled '-'.
func checkPortName(s string) error {
	if len(s) > 15 || !portNameRe.MatchString(s) || strings.Contains(s, "--") || !strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") {
		return fmt.Errorf("invalid port name %q: want 1-15 lowercase letters, digits or '-', with at least one letter", s)
	}
	return nil
}

// ParseNet parses a rule's net ("10.0.0.0/8"). Calico accepts host bits in
// rule nets; the returned prefix is masked.
func ParseNet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: want address/prefix-length, e.g. 10.0.0.0/8", s)
	}
	return p.Masked(), nil
}

// ParseAddrOrNet parses "10.0.0.1" (as a /32 or /128) or "10.0.0.1/32".
func ParseAddrOrNet(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParsePeerIP parses a BGPPeer peerIP: "IP", "IPv4:port" or "[IPv6]:port".
// Port is 0 when not given.
func ParsePeerIP(s string) (netip.Addr, uint16, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a, 0, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" {
		return netip.Addr{}, 0, fmt.Errorf("invalid peerIP %q: want an IP address, \"IPv4:port\" or \"[IPv6]:port\"", s)
	}
	if ap.Port() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("invalid peerIP %q: port must be 1-65535", s)
	}
	return ap.Addr().Unmap(), ap.Port(), nil
}

// Protocol names Calico accepts, with their IP protocol numbers.
var protocolNumbers = map[string]uint8{
	"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58, "SCTP": 132, "UDPLite": 136,
}

// NumberValue returns the IP protocol number, for names and numbers alike.
func (p Protocol) NumberValue() (uint8, error) {
	if p.Number != nil {
		return *p.Number, nil
	}
	if n, ok := protocolNumbers[p.Name]; ok {
		return n, nil
	}
	if n, err := strconv.ParseUint(p.Name, 10, 8); err == nil {
		return uint8(n), nil
	}
	return 0, fmt.Errorf("invalid protocol %q", p.Name)
}

// SupportsPorts reports whether rules with this protocol may match ports
// (TCP, UDP, SCTP, by name or number).
func (p Protocol) SupportsPorts() bool {
	n, err := p.NumberValue()
	return err == nil && (n == 6 || n == 17 || n == 132)
}

// IsICMP reports whether the protocol is ICMP (IPv4) and IsICMPv6 ICMPv6.
func (p Protocol) IsICMP() bool   { n, err := p.NumberValue(); return err == nil && n == 1 }
func (p Protocol) IsICMPv6() bool { n, err := p.NumberValue(); return err == nil && n == 58 }

package api

import (
	"net/netip"
	"regexp"
	"strings"
)

// KindBGPFilter is Calico's BGPFilter: import and export rules that
// BGPPeers name in spec.filters.
const KindBGPFilter = "BGPFilter"

// BGPFilter mirrors Calico's projectcalico.org/v3 BGPFilter (v3.31 fields).
type BGPFilter struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       BGPFilterSpec `json:"spec"`
}

// BGPFilterSpec holds the ordered rules per direction and family.
type BGPFilterSpec struct {
	ExportV4 []BGPFilterRule `json:"exportV4,omitempty"`
	ImportV4 []BGPFilterRule `json:"importV4,omitempty"`
	ExportV6 []BGPFilterRule `json:"exportV6,omitempty"`
	ImportV6 []BGPFilterRule `json:"importV6,omitempty"`
}

// BGPFilterRule is one rule (Calico's BGPFilterRuleV4 and V6 have the same
// fields; the family is checked by validation).
type BGPFilterRule struct {
	CIDR          string                 `json:"cidr,omitempty"`
	PrefixLength  *BGPFilterPrefixLength `json:"prefixLength,omitempty"`
	Source        string                 `json:"source,omitempty"`
	Interface     string                 `json:"interface,omitempty"`
	MatchOperator string                 `json:"matchOperator,omitempty"`
	Action        string                 `json:"action"`
}

// BGPFilterPrefixLength bounds the prefix length of In and NotIn matches.
type BGPFilterPrefixLength struct {
	Min *int32 `json:"min,omitempty"`
	Max *int32 `json:"max,omitempty"`
}

// BGPPassword is BGPPeer spec.password.
type BGPPassword struct {
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// SecretKeySelector names one key of a secret (Kubernetes' type). Here the
// secret is a file on the node: /etc/calico/bgp-secrets/<name>/<key>.
type SecretKeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

func (r *BGPFilter) GetObjectMeta() *ObjectMeta { return &r.ObjectMeta }
func (r *BGPFilter) GetTypeMeta() *TypeMeta     { return &r.TypeMeta }
func (r *BGPFilter) Kind() string               { return KindBGPFilter }

var bgpFilterKind = KindInfo{Kind: KindBGPFilter, Plural: "bgpfilters",
	Aliases: []string{"bgpfilter", "bgpfilters", "bgpf", "bgpfs", "bf", "bfs"},
	new:     func() Resource { return &BGPFilter{} }}

// Calico's validator patterns.
var (
	bgpFilterInterfaceRe = regexp.MustCompile(`^[a-zA-Z0-9_.*-]{1,15}$`)
	secretKeyRe          = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

func validateBGPFilter(c *errs, s *BGPFilterSpec) {
	for _, l := range []struct {
		path  string
		rules []BGPFilterRule
		v6    bool
	}{{"spec.exportV4", s.ExportV4, false}, {"spec.importV4", s.ImportV4, false}, {"spec.exportV6", s.ExportV6, true}, {"spec.importV6", s.ImportV6, true}} {
		for i, r := range l.rules {
			validateBGPFilterRule(c, idx(l.path, i), r, l.v6)
		}
	}
}

func validateBGPFilterRule(c *errs, path string, r BGPFilterRule, v6 bool) {
	fam, maxLen := "IPv4", int32(32)
	if v6 {
		fam, maxLen = "IPv6", 128
	}
	if r.CIDR != "" {
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil || p.Addr().Is6() != v6 || p.Addr().Is4In6() {
			c.add(join(path, "cidr"), "invalid %s CIDR %q", fam, r.CIDR)
		}
		if r.MatchOperator == "" {
			c.add(join(path, "cidr"), "matchOperator cannot be empty when cidr is not")
		}
	} else {
		if r.MatchOperator != "" {
			c.add(join(path, "matchOperator"), "cidr cannot be empty when matchOperator is not")
		}
		if r.PrefixLength != nil {
			c.add(join(path, "prefixLength"), "cidr cannot be empty when prefixLength is not")
		}
	}
	switch r.MatchOperator {
	case "", "Equal", "NotEqual", "In", "NotIn":
	default:
		c.add(join(path, "matchOperator"), "invalid matchOperator %q: want Equal, NotEqual, In or NotIn", r.MatchOperator)
	}
	if pl := r.PrefixLength; pl != nil {
		for _, m := range []struct {
			name string
			v    *int32
		}{{"min", pl.Min}, {"max", pl.Max}} {
			if m.v != nil && (*m.v < 0 || *m.v > maxLen) {
				c.add(join(join(path, "prefixLength"), m.name), "must be 0-%d for %s (got %d)", maxLen, fam, *m.v)
			}
		}
	}
	switch r.Source {
	case "", "RemotePeers":
	default:
		c.add(join(path, "source"), "invalid source %q: want RemotePeers", r.Source)
	}
	if r.Interface != "" {
		if r.Interface != "*" && !bgpFilterInterfaceRe.MatchString(r.Interface) {
			c.add(join(path, "interface"), "invalid interface %q: at most 15 letters, digits or _ . * -", r.Interface)
		} else if r.Interface != "*" {
			// See internal/bgp filterRule: fail closed.
			if r.Action == "Accept" {
				c.note(join(path, "interface"), "stored; the embedded BGP speaker does not know which interface a route uses, so this Accept rule matches no route here (match on cidr instead)")
			} else {
				c.note(join(path, "interface"), "stored; the embedded BGP speaker does not know which interface a route uses, so this Reject rule rejects every route its other fields match, on any interface")
			}
		}
	}
	switch r.Action {
	case "Accept", "Reject":
	case "":
		c.add(join(path, "action"), "action is required (Accept or Reject)")
	default:
		c.add(join(path, "action"), "invalid action %q: want Accept or Reject", r.Action)
	}
}

// validateBGPPeerSecurity checks the BGPPeer fields of session security and
// filtering: spec.password, spec.ttlSecurity and spec.filters.
func validateBGPPeerSecurity(c *errs, s *BGPPeerSpec) {
	if s.Password != nil {
		ref := s.Password.SecretKeyRef
		switch {
		case ref == nil:
			c.add("spec.password.secretKeyRef", "secretKeyRef is required: name the secret file /etc/calico/bgp-secrets/<name>/<key>")
		default:
			if err := checkName(ref.Name); err != nil {
				c.add("spec.password.secretKeyRef.name", "%v", err)
			}
			if !secretKeyRe.MatchString(ref.Key) || ref.Key == "." || ref.Key == ".." || strings.HasPrefix(ref.Key, "..") {
				c.add("spec.password.secretKeyRef.key", "invalid key %q: letters, digits, '-', '_' or '.', not '.' or '..'", ref.Key)
			}
			if ref.Optional != nil && *ref.Optional {
				c.note("spec.password.secretKeyRef.optional", "true: if the secret file is missing, the session is made WITHOUT a password (as in Calico); the node reports it")
			}
		}
	}
	for i, f := range s.Filters {
		if err := checkName(f); err != nil {
			c.add(idx("spec.filters", i), "%v", err)
		}
	}
	// spec.ttlSecurity: any value; 0 leaves GTSM off, as in Calico.
}

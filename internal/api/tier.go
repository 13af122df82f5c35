package api

import (
	"math"
	"regexp"
)

// Tier groups policies: tiers are evaluated in ascending spec.order (no
// order: last; ties by name), the policies of a tier in their own order. A
// packet that an endpoint's policies in a tier do not decide gets the tier's
// defaultAction: Deny (the default) drops it, Pass hands it to the next
// tier; a rule's Pass action also moves on to the next tier.
type Tier struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       TierSpec `json:"spec"`
}

// TierSpec is Calico's.
type TierSpec struct {
	Order         *float64 `json:"order,omitempty"`
	DefaultAction *string  `json:"defaultAction,omitempty"`
}

func (r *Tier) GetObjectMeta() *ObjectMeta { return &r.ObjectMeta }
func (r *Tier) GetTypeMeta() *TypeMeta     { return &r.TypeMeta }
func (r *Tier) Kind() string               { return KindTier }

var tierKind = KindInfo{Kind: KindTier, Plural: "tiers", Aliases: []string{"tier", "tiers"},
	new: func() Resource { return &Tier{} }}

// Calico's built-in tiers (v3.31) and the orders they must have.
const (
	DefaultTierOrder       = 1_000_000
	AdminTier              = "adminnetworkpolicy"
	AdminTierOrder         = 1_000
	BaselineAdminTier      = "baselineadminnetworkpolicy"
	BaselineAdminTierOrder = 10_000_000
	TierDefaultActionDeny  = "Deny"
	TierDefaultActionPass  = "Pass"
	maxTierNameLen         = 63
)

var tierNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

var builtinTierOrders = map[string]float64{
	DefaultTier: DefaultTierOrder, AdminTier: AdminTierOrder, BaselineAdminTier: BaselineAdminTierOrder,
}

// TierDefaultAction is a tier's effective default action: Pass only when
// it says Pass, else Deny (as Felix reads it).
func TierDefaultAction(s *TierSpec) string {
	if s != nil && s.DefaultAction != nil && *s.DefaultAction == TierDefaultActionPass {
		return TierDefaultActionPass
	}
	return TierDefaultActionDeny
}

func validateTier(c *errs, m *ObjectMeta, s *TierSpec) {
	if len(m.Name) > maxTierNameLen || !tierNameRe.MatchString(m.Name) {
		c.add("metadata.name", "invalid tier name %q: at most 63 lower case alphanumeric characters or '-', no '.' (it prefixes its policies' names)", m.Name)
	}
	if s.Order != nil && (math.IsNaN(*s.Order) || math.IsInf(*s.Order, 0)) {
		c.add("spec.order", "order must be a finite number")
	}
	if want, ok := builtinTierOrders[m.Name]; ok && (s.Order == nil || *s.Order != want) {
		c.add("spec.order", "the %s tier's order must be %v", m.Name, want)
	}
	if a := s.DefaultAction; a != nil && *a != TierDefaultActionDeny && *a != TierDefaultActionPass {
		c.add("spec.defaultAction", "invalid defaultAction %q: want Deny or Pass", *a)
	}
}

// defaultTier fills in defaultAction Deny, as Calico's API does.
func defaultTier(s *TierSpec) {
	if s.DefaultAction == nil {
		d := TierDefaultActionDeny
		s.DefaultAction = &d
	}
}

package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// extraData keeps what a resource had beyond its Go fields: Calico fields
// without a Go field (see fields.go) and, for a stored value, anything a
// newer writer added. It is the whole JSON document as decoded; encoding
// takes from it only what the Go type does not know.
type extraData struct {
	tree map[string]any
	// manifest: decoded from a manifest, so its fields of the table are the
	// whole truth (an update with it drops the ones it leaves out).
	manifest bool
}

// knownOnly returns a copy of v (JSON data for Go type t) without the
// fields t does not know, and whether it dropped any.
func knownOnly(v any, t reflect.Type) (any, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return v, false
	}
	switch t.Kind() {
	case reflect.Struct:
		o, ok := v.(map[string]any)
		if !ok {
			return v, false
		}
		fields := fieldsOf(t)
		out := make(map[string]any, len(o))
		dropped := false
		for k, e := range o {
			ft, ok := fields[k]
			if !ok {
				dropped = true
				continue
			}
			kv, d := knownOnly(e, ft)
			out[k] = kv
			dropped = dropped || d
		}
		return out, dropped
	case reflect.Map:
		o, ok := v.(map[string]any)
		if !ok {
			return v, false
		}
		out := make(map[string]any, len(o))
		dropped := false
		for k, e := range o {
			kv, d := knownOnly(e, t.Elem())
			out[k] = kv
			dropped = dropped || d
		}
		return out, dropped
	case reflect.Slice, reflect.Array:
		o, ok := v.([]any)
		if !ok {
			return v, false
		}
		out := make([]any, len(o))
		dropped := false
		for i, e := range o {
			kv, d := knownOnly(e, t.Elem())
			out[i] = kv
			dropped = dropped || d
		}
		return out, dropped
	}
	return v, false
}

// splitExtra is knownOnly for a document: the part the Go type decodes,
// and whether the document has more.
func splitExtra(tree any, t reflect.Type) (any, bool) {
	return knownOnly(tree, t)
}

// visitExtras calls fn for every field of v (JSON data of Go type t) that
// t has no Go field for, with its path and table entry (nil when the
// table does not know it either).
func visitExtras(v any, t reflect.Type, path string, fn func(path string, f *Field, val any)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		o, ok := v.(map[string]any)
		if !ok {
			return
		}
		fields := fieldsOf(t)
		for _, k := range slices.Sorted(mapKeys(o)) {
			if ft, ok := fields[k]; ok {
				visitExtras(o[k], ft, join(path, k), fn)
				continue
			}
			fn(join(path, k), extraField(t, k), o[k])
		}
	case reflect.Map:
		if o, ok := v.(map[string]any); ok {
			for _, k := range slices.Sorted(mapKeys(o)) {
				visitExtras(o[k], t.Elem(), join(path, k), fn)
			}
		}
	case reflect.Slice, reflect.Array:
		if o, ok := v.([]any); ok {
			for i, e := range o {
				visitExtras(e, t.Elem(), idx(path, i), fn)
			}
		}
	}
}

// ExtraFields lists the paths of r's fields that have no Go field here
// (stored and returned unchanged), sorted.
func ExtraFields(r Resource) []string {
	x := r.GetObjectMeta().extra
	if x == nil {
		return nil
	}
	var out []string
	visitExtras(x.tree, reflect.TypeOf(r).Elem(), "", func(path string, _ *Field, _ any) {
		out = append(out, path)
	})
	return out
}

// extraWarnings returns one warning per field of r that is stored without
// effect here and set to something (false, "" and empty lists ask for
// nothing and are not warned about).
func extraWarnings(r Resource) []string {
	x := r.GetObjectMeta().extra
	if x == nil {
		return nil
	}
	var out []string
	visitExtras(x.tree, reflect.TypeOf(r).Elem(), "", func(path string, f *Field, v any) {
		if f != nil && f.Status == NoEffect && !isEmptyValue(v) {
			out = append(out, noEffectMessage(path, f.Why))
		}
	})
	return out
}

func noEffectMessage(path, why string) string {
	return fmt.Sprintf("%s: stored, but has no effect here: %s", path, why)
}

// MarshalResource is the JSON of r as a client sees it: its Go fields and
// every field it was decoded with that has no Go field here, unchanged.
func MarshalResource(r Resource) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	x := r.GetObjectMeta().extra
	if x == nil {
		return b, nil
	}
	nv, err := parseAny(b)
	if err != nil {
		return nil, err
	}
	// What the extra tree has for the Go fields is stale (r may have been
	// changed since); only the fields the Go type does not know are taken.
	return json.Marshal(mergeUnknown(nv, deepCopy(x.tree), reflect.TypeOf(r).Elem(), false))
}

// deepCopy copies JSON data so that merging never aliases a resource's
// extra tree into another value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// keepExtraFrom gives r the extra fields of a stored value (its JSON), so
// that they are shown and kept.
func keepExtraFrom(r Resource, value []byte) {
	tree, err := parseAny(value)
	if err != nil {
		return
	}
	if _, extra := splitExtra(tree, reflect.TypeOf(r).Elem()); !extra {
		return
	}
	if m, ok := tree.(map[string]any); ok {
		r.GetObjectMeta().extra = &extraData{tree: m}
	}
}

// extraSpec returns the "spec" object of r's extra tree (nil without one).
func extraSpec(r Resource) map[string]any {
	x := r.GetObjectMeta().extra
	if x == nil {
		return nil
	}
	spec, _ := x.tree["spec"].(map[string]any)
	return spec
}

// validateExtras applies Calico's rules that involve fields without a Go
// field (the rules on one value are in each field's check).
func validateExtras(c *errs, r Resource) {
	spec := extraSpec(r)
	switch v := r.(type) {
	case *BGPPeer:
		s := &v.Spec
		lws := strOf(spec["localWorkloadSelector"])
		if lws != "" {
			if s.ASNumber == 0 {
				c.add("spec.asNumber", "asNumber must not be empty when localWorkloadSelector is specified")
			}
			if s.PeerIP != "" {
				c.add("spec.peerIP", "peerIP must be empty when localWorkloadSelector is specified")
			}
			if s.PeerSelector != "" {
				c.add("spec.peerSelector", "peerSelector must be empty when localWorkloadSelector is specified")
			}
		}
		if rb := strOf(spec["reachableBy"]); rb != "" {
			if s.PeerIP == "" {
				c.add("spec.reachableBy", "reachableBy must be empty when peerIP is empty")
			} else if peer, _, err := ParsePeerIP(s.PeerIP); err == nil {
				if a, err := ParseAddrOrNet(rb); err == nil && a.Addr().Is4() != peer.Is4() {
					c.add("spec.reachableBy", "reachableBy and peerIP address family mismatched")
				}
			}
		}
		if s.KeepOriginalNextHop && spec["nextHopMode"] != nil {
			c.add("spec.keepOriginalNextHop", "keepOriginalNextHop is deprecated: it must not be true when nextHopMode is set")
		}
	case *BGPConfiguration:
		comms, _ := spec["communities"].([]any)
		defined := map[string]bool{}
		for i, e := range comms {
			m, _ := e.(map[string]any)
			defined[strOf(m["name"])] = true
			val := strOf(m["value"])
			p := join(idx("spec.communities", i), "value")
			if ok, err := checkCommunity(val, p); !ok {
				c.add(p, "invalid community value or format used: want aa:nn or aa:nn:mm")
			} else if err != nil {
				c.list = append(c.list, err)
			}
		}
		pas, _ := spec["prefixAdvertisements"].([]any)
		if len(pas) == 0 && len(comms) != 0 {
			c.add("spec.communities", "communities are defined but not used in spec.prefixAdvertisements")
		}
		for i, e := range pas {
			m, _ := e.(map[string]any)
			list, _ := m["communities"].([]any)
			for j, cv := range list {
				p := idx(join(idx("spec.prefixAdvertisements", i), "communities"), j)
				ok, err := checkCommunity(strOf(cv), p)
				switch {
				case err != nil:
					c.list = append(c.list, err)
				case !ok && !defined[strOf(cv)]:
					c.add(p, "community %q is invalid or not defined in spec.communities", strOf(cv))
				}
			}
		}
		if spec["nodeMeshPassword"] != nil && v.Spec.NodeToNodeMeshEnabled != nil && !*v.Spec.NodeToNodeMeshEnabled {
			c.add("spec.nodeMeshPassword", "cannot be set when nodeToNodeMeshEnabled is false")
		}
	case *FelixConfiguration:
		if spec["routeTableRange"] != nil && spec["routeTableRanges"] != nil {
			c.add("spec.routeTableRange", "cannot be set when routeTableRanges is also set")
		}
		if list, ok := spec["routeTableRanges"].([]any); ok {
			var n int64
			for _, e := range list {
				m, _ := e.(map[string]any)
				n += intOf(m["max"]) - intOf(m["min"]) + 1
			}
			if n > 0xffff {
				c.add("spec.routeTableRanges", "targets too many tables (%d, at most %d)", n, 0xffff)
			}
		}
	case *WorkloadEndpoint:
		validateIPNATs(c, &v.Spec)
	case *IPPool:
		if strings.Contains(v.Spec.NodeSelector, "global(") {
			c.add("spec.nodeSelector", "global() selector is not valid for IPPool nodeSelector: use all() instead")
		}
		if ns := strOf(spec["namespaceSelector"]); ns != "" {
			if strings.Contains(ns, "global(") {
				c.add("spec.namespaceSelector", "global() selector is not valid for IPPool namespaceSelector: use all() instead")
			}
			uses := v.Spec.AllowedUses
			if len(uses) == 0 {
				uses = []string{AllowedUseWorkload, AllowedUseTunnel}
			}
			if slices.Contains(uses, AllowedUseTunnel) {
				c.add("spec.namespaceSelector", "an IP pool with allowedUses Tunnel (the default) cannot have a namespaceSelector: tunnel addresses belong to no namespace; set allowedUses: [Workload]")
			}
		}
	case *Profile:
		validateCalicoRules(c, v.Spec.Ingress, v.Spec.Egress)
	case *NetworkPolicy:
		validateGlobalSelector(c, &v.Spec)
		validateCalicoRules(c, v.Spec.Ingress, v.Spec.Egress)
	case *GlobalNetworkPolicy:
		validateGlobalSelector(c, &v.Spec)
		validateCalicoRules(c, v.Spec.Ingress, v.Spec.Egress)
	}
}

const globalOnlyInNamespaceSelector = "global() can only be used in an EntityRule namespaceSelector"

func validateGlobalSelector(c *errs, s *PolicySpec) {
	if strings.Contains(s.Selector, "global()") {
		c.add("spec.selector", globalOnlyInNamespaceSelector)
	}
	if strings.Contains(s.ServiceAccountSelector, "global()") {
		c.add("spec.serviceAccountSelector", globalOnlyInNamespaceSelector)
	}
}

// validateCalicoRules applies Calico's rule checks that validate.go does
// not: global() only in a namespaceSelector, and no catch-all CIDR in
// notNets (it would match no traffic).
func validateCalicoRules(c *errs, ingress, egress []Rule) {
	for _, dir := range []struct {
		path  string
		rules []Rule
	}{{"spec.ingress", ingress}, {"spec.egress", egress}} {
		for i, r := range dir.rules {
			rp := idx(dir.path, i)
			for _, side := range []struct {
				name string
				e    *EntityRule
			}{{"source", &r.Source}, {"destination", &r.Destination}} {
				sp := join(rp, side.name)
				for _, f := range []struct{ name, sel string }{{"selector", side.e.Selector}, {"notSelector", side.e.NotSelector}} {
					if strings.Contains(f.sel, "global()") {
						c.add(join(sp, f.name), globalOnlyInNamespaceSelector)
					}
				}
				for j, n := range side.e.NotNets {
					if p, err := ParseNet(n); err == nil && p.Bits() == 0 && p.Addr().IsUnspecified() {
						c.add(idx(join(sp, "notNets"), j), "catch-all CIDR %s in notNets matches no traffic: remove it", n)
					}
				}
			}
		}
	}
}

// validateIPNATs: each NAT's internal IP must be one of the endpoint's
// networks, as Calico requires.
func validateIPNATs(c *errs, s *WorkloadEndpointSpec) {
	for i, n := range s.IPNATs {
		p := idx("spec.ipNATs", i)
		in, err := ParseAddrOrNet(n.InternalIP)
		if err != nil {
			c.add(join(p, "internalIP"), "%v", err)
			continue
		}
		if n.ExternalIP != "" {
			if _, err := ParseAddrOrNet(n.ExternalIP); err != nil {
				c.add(join(p, "externalIP"), "%v", err)
			}
		}
		inside := false
		for _, w := range s.IPNetworks {
			if net, err := ParseAddrOrNet(w); err == nil && net.Contains(in.Addr()) {
				inside = true
			}
		}
		if !inside {
			c.add(join(p, "internalIP"), "NAT is not in the endpoint networks (%s)", strings.Join(s.IPNetworks, ", "))
		}
	}
}

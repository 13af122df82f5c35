package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Stored form. Resources are stored as Calico's libcalico-go etcdv3 backend
// stores them, so that the real calicoctl and this project read each
// other's data. This file is the one place that maps between what a user
// names and sees (the client form) and what is in the datastore (the stored
// form); every reader and writer of resources goes through EncodeStored and
// DecodeStored, and key names come from StoredName.
//
// NetworkPolicy and GlobalNetworkPolicy (Calico: also the staged kinds) are
// stored under their tiered name: a name without a dot gets the prefix
// "default." ("allow-web" is stored as "default.allow-web"), both in the key
// and in metadata.name, and the name the client gave is kept in the
// annotation projectcalico.org/metadata as {"name":"allow-web"}. Reading
// reverses this: the name comes from that annotation (which is removed),
// or, without it (Calico before 3.30), the stored name with "default."
// trimmed. "allow-web" and "default.allow-web" therefore name the same
// stored policy, as in calicoctl.
//
// Other kinds are stored under their own name.

// Policy storage annotations and labels, as Calico's.
const (
	// MetadataAnnotation keeps the client's policy name.
	MetadataAnnotation = "projectcalico.org/metadata"
	// LabelTier is the tier label calicoctl shows on every policy.
	LabelTier = "projectcalico.org/tier"
)

// IsTiered reports whether a kind is stored under a tiered name.
func IsTiered(kind string) bool {
	return kind == KindNetworkPolicy || kind == KindGlobalNetworkPolicy || isStagedPolicyKind(kind)
}

// StoredName is the name a resource of kind is stored under (the last
// segment of its key, and metadata.name in the stored value) when a user
// names it name: for policies "default.<name>" unless the name already has
// a tier prefix; other kinds unchanged.
func StoredName(kind, name string) string {
	if !IsTiered(kind) || name == "" || strings.Contains(name, ".") {
		return name
	}
	return DefaultTier + "." + name
}

// ClientName is the name a user sees for a resource stored under stored
// with the given annotations (Calico's determinePolicyName).
func ClientName(kind, stored string, annotations map[string]string) string {
	if !IsTiered(kind) {
		return stored
	}
	if n := annotatedName(annotations); n != "" {
		return n
	}
	return strings.TrimPrefix(stored, DefaultTier+".")
}

func annotatedName(annotations map[string]string) string {
	raw := annotations[MetadataAnnotation]
	if raw == "" {
		return ""
	}
	var md struct {
		Name string `json:"name"`
	}
	if json.Unmarshal([]byte(raw), &md) != nil {
		return ""
	}
	return md.Name
}

// EncodeStored is the value to write for r: r as Calico stores it (tiered
// policy name and its annotation; no resourceVersion, which is the key's
// mod revision). prev, when not nil, is the value stored now: every field
// of it this project does not know is kept (see PreserveUnknown), so an
// update never drops what a newer Calico wrote. r is not modified.
func EncodeStored(r Resource, prev []byte) ([]byte, error) {
	x := r.GetObjectMeta().extra
	return encodeStored(r, prev, x != nil && x.manifest)
}

// EncodeStoredApply is EncodeStored for a resource a user wrote in full
// (apply, create, replace, patch): the fields of Calico's schema that have
// no Go field here (fields.go) come from r only, so leaving one out of a
// manifest removes it. Fields this project does not know at all are still
// kept from prev.
func EncodeStoredApply(r Resource, prev []byte) ([]byte, error) {
	return encodeStored(r, prev, true)
}

func encodeStored(r Resource, prev []byte, replaceTable bool) ([]byte, error) {
	b, err := MarshalResource(r)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", Ident(r), err)
	}
	obj, err := parseObject(b)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", Ident(r), err)
	}
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		obj["metadata"] = md
	}
	delete(md, "resourceVersion")
	if _, ok := obj["status"]; !ok && r.Kind() == KindNode {
		// Calico's Node has a status that is not a pointer: calicoctl
		// always writes "status": {}.
		obj["status"] = map[string]any{}
	}
	if IsTiered(r.Kind()) {
		name := r.GetObjectMeta().Name
		ann, _ := md["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
			md["annotations"] = ann
		}
		nb, _ := json.Marshal(map[string]string{"name": name})
		ann[MetadataAnnotation] = string(nb)
		md["name"] = StoredName(r.Kind(), name)
		if spec := PolicySpecOf(r); spec != nil && spec.Tier != "" && spec.Tier != DefaultTier {
			// calicoctl labels the policies of other tiers with their tier.
			labels, _ := md["labels"].(map[string]any)
			if labels == nil {
				labels = map[string]any{}
				md["labels"] = labels
			}
			labels[LabelTier] = spec.Tier
		}
	}
	if prev != nil {
		if old, err := parseObject(prev); err == nil {
			mergeUnknown(obj, old, reflect.TypeOf(r).Elem(), replaceTable)
		}
	}
	if r.Kind() == KindFelixConfiguration {
		defaultFelixStored(obj)
	}
	return json.Marshal(obj)
}

// defaultFelixStored fills in what Calico's client fills in on every
// FelixConfiguration create and update with the etcd datastore (recorded
// from calicoctl v3.31.7, internal/compat/testdata): floatingIPs Disabled,
// bpfConnectTimeLoadBalancing TCP and bpfHostNetworkedNATWithoutCTLB
// Enabled when unset, both derived from the deprecated
// bpfConnectTimeLoadBalancingEnabled when that is set, and bpfLogLevel,
// which Calico always writes ("" when unset). None of them acts here.
func defaultFelixStored(obj map[string]any) {
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		obj["spec"] = spec
	}
	setIfAbsent := func(k string, v any) {
		if _, ok := spec[k]; !ok {
			spec[k] = v
		}
	}
	setIfAbsent("floatingIPs", "Disabled")
	setIfAbsent("bpfConnectTimeLoadBalancing", "TCP")
	setIfAbsent("bpfHostNetworkedNATWithoutCTLB", "Enabled")
	setIfAbsent("bpfLogLevel", "")
	if on, ok := spec["bpfConnectTimeLoadBalancingEnabled"].(bool); ok {
		spec["bpfHostNetworkedNATWithoutCTLB"] = "Disabled"
		spec["bpfConnectTimeLoadBalancing"] = "Disabled"
		if on {
			spec["bpfConnectTimeLoadBalancing"] = "Enabled"
		}
	}
}

// DecodeStored reads a stored value of kind stored under storedName (the
// last segment of its key) at revision rev, into the client form, as
// calicoctl shows it: policies get their client name back, spec.tier and
// the tier label when missing, and every resource its resourceVersion. Fields it does not know are ignored here
// (EncodeStored keeps them on update).
func DecodeStored(kind, storedName string, value []byte, rev int64) (Resource, error) {
	r, err := Unmarshal(kind, value)
	if err != nil {
		return nil, err
	}
	keepExtraFrom(r, value)
	m := r.GetObjectMeta()
	if m.Name == "" {
		m.Name = storedName
	}
	if IsTiered(kind) {
		m.Name = ClientName(kind, m.Name, m.Annotations)
		delete(m.Annotations, MetadataAnnotation)
		if len(m.Annotations) == 0 {
			m.Annotations = nil
		}
		// calicoctl shows the tier in spec.tier and as a label, though
		// neither is stored for the default tier.
		spec := PolicySpecOf(r)
		if spec.Tier == "" {
			spec.Tier = DefaultTier
		}
		if _, ok := m.Labels[LabelTier]; !ok {
			if m.Labels == nil {
				m.Labels = map[string]string{}
			}
			m.Labels[LabelTier] = spec.Tier
		}
	}
	if rev > 0 {
		m.ResourceVersion = strconv.FormatInt(rev, 10)
	}
	return r, nil
}

// SameStored reports whether two stored values of kind hold the same data
// (key order and number spelling aside; for a policy of the default tier,
// spec.tier "default" and the label projectcalico.org/tier=default count as
// absent, since reading shows them anyway), so that a write that would
// change nothing can be skipped.
func SameStored(kind string, a, b []byte) bool {
	x, err1 := parseAny(a)
	y, err2 := parseAny(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if IsTiered(kind) {
		dropDefaultTier(x)
		dropDefaultTier(y)
	}
	return reflect.DeepEqual(normalizeNumbers(x), normalizeNumbers(y))
}

func dropDefaultTier(v any) {
	obj, _ := v.(map[string]any)
	if spec, ok := obj["spec"].(map[string]any); ok && spec["tier"] == DefaultTier {
		delete(spec, "tier")
	}
	md, _ := obj["metadata"].(map[string]any)
	if labels, ok := md["labels"].(map[string]any); ok && labels[LabelTier] == DefaultTier {
		delete(labels, LabelTier)
		if len(labels) == 0 {
			delete(md, "labels")
		}
	}
}

// PreserveUnknown returns encoded (the JSON of a value of Go type t, as
// this project writes it) with every field of prev (the JSON stored now)
// that t does not know added back, at any depth. Known fields take
// encoded's value, including their absence. List elements keep their
// unknown fields only where the stored element is, in its known fields,
// identical to the new one at the same position: an edited rule may lose
// fields this project does not know, but never gains another rule's.
// It is for data other than resources (IPAM blocks and handles).
func PreserveUnknown(t reflect.Type, prev, encoded []byte) ([]byte, error) {
	if prev == nil {
		return encoded, nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	nv, err := parseAny(encoded)
	if err != nil {
		return nil, err
	}
	ov, err := parseAny(prev)
	if err != nil {
		// What is stored is not JSON: nothing to keep.
		return encoded, nil
	}
	return json.Marshal(mergeUnknown(nv, ov, t, false))
}

func parseAny(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func parseObject(b []byte) (map[string]any, error) {
	v, err := parseAny(b)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("stored value is not a JSON object")
	}
	return obj, nil
}

// normalizeNumbers returns a copy of v with json.Numbers turned into
// float64 where that works, so that 1 and 1.0 compare equal.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeNumbers(e)
		}
		return out
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
	}
	return v
}

var marshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()

// mergeUnknown adds to nv (new JSON data of Go type t) what ov (the stored
// JSON data) has and t does not know, recursively; it returns the result.
// With skipTable, fields of the field table (fields.go) are not taken from
// ov: nv has them all.
func mergeUnknown(nv, ov any, t reflect.Type, skipTable bool) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		// A value with its own JSON form (ports, protocols, durations).
		return nv
	}
	switch t.Kind() {
	case reflect.Struct:
		n, ok1 := nv.(map[string]any)
		o, ok2 := ov.(map[string]any)
		if !ok1 || !ok2 {
			return nv
		}
		fields := fieldsOf(t)
		for k, v := range o {
			ft, known := fields[k]
			if !known {
				if skipTable && extraField(t, k) != nil {
					continue
				}
				if _, set := n[k]; !set && v != nil {
					n[k] = v
				}
				continue
			}
			if cur, set := n[k]; set {
				n[k] = mergeUnknown(cur, v, ft, skipTable)
			}
		}
		return n
	case reflect.Map:
		n, ok1 := nv.(map[string]any)
		o, ok2 := ov.(map[string]any)
		if !ok1 || !ok2 {
			return nv
		}
		for k, cur := range n {
			if v, ok := o[k]; ok {
				n[k] = mergeUnknown(cur, v, t.Elem(), skipTable)
			}
		}
		return n
	case reflect.Slice, reflect.Array:
		n, ok1 := nv.([]any)
		o, ok2 := ov.([]any)
		if !ok1 || !ok2 {
			return nv
		}
		for i := 0; i < len(n) && i < len(o); i++ {
			if reflect.DeepEqual(normalizeNumbers(known(o[i], t.Elem())), normalizeNumbers(known(n[i], t.Elem()))) {
				n[i] = mergeUnknown(n[i], o[i], t.Elem(), skipTable)
			}
		}
		return n
	}
	return nv
}

// known returns a copy of v (JSON data of Go type t) with only the fields t
// knows.
func known(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return v
	}
	switch t.Kind() {
	case reflect.Struct:
		o, ok := v.(map[string]any)
		if !ok {
			return v
		}
		fields := fieldsOf(t)
		out := map[string]any{}
		for k, e := range o {
			if ft, ok := fields[k]; ok {
				out[k] = known(e, ft)
			}
		}
		return out
	case reflect.Map:
		o, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := map[string]any{}
		for k, e := range o {
			out[k] = known(e, t.Elem())
		}
		return out
	case reflect.Slice, reflect.Array:
		o, ok := v.([]any)
		if !ok {
			return v
		}
		out := make([]any, len(o))
		for i, e := range o {
			out[i] = known(e, t.Elem())
		}
		return out
	}
	return v
}

// DefaultAllowProfile is the profile Calico's datastore always returns
// (never stored): it allows everything both ways.
const DefaultAllowProfile = "projectcalico-default-allow"

// NewDefaultAllowProfile returns Calico's built-in profile as calicoctl
// shows it (resourceVersion 1).
func NewDefaultAllowProfile() *Profile {
	p := &Profile{
		TypeMeta:   TypeMeta{Kind: KindProfile, APIVersion: APIVersion},
		ObjectMeta: ObjectMeta{Name: DefaultAllowProfile, ResourceVersion: "1"},
	}
	p.Spec.Ingress = []Rule{{Action: "Allow"}}
	p.Spec.Egress = []Rule{{Action: "Allow"}}
	return p
}

package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/selector"
)

// The field table. Calico's v3 schema has many more fields than this
// project acts on. Every field is accepted, checked the way Calico's
// validator checks it, stored and returned unchanged; the table says, per
// field, whether it acts here, is stored without effect (a write warns), or
// is refused. Fields this project acts on are Go struct fields (see
// types.go) and are validated by validate.go; the others have no Go field
// and are described here by a check on their JSON value. docs/resources.md
// is generated from this table (see FieldDocs).

// Status is what a field does here.
type Status int

const (
	// Acts: the field has its effect here.
	Acts Status = iota
	// NoEffect: the field is stored and returned unchanged but has no
	// effect here; writing it prints a warning.
	NoEffect
	// Refused: a value Calico accepts that this project refuses, because
	// ignoring it would make policy match more than written.
	Refused
)

func (s Status) String() string {
	return [...]string{"acts", "stored, no effect", "refused"}[s]
}

// A check validates one JSON value (as parsed with UseNumber) of a field
// without a Go field; path names the value.
// desc says in words what values it takes (for docs/resources.md).
type check struct {
	fn   func(v any, path string) *FieldError
	desc string
}

func (c check) run(v any, path string) *FieldError { return c.fn(v, path) }

// Field is one entry of the table.
type Field struct {
	// Name is the JSON name of the field in its parent object.
	Name string
	// Check validates the value of a field that has no Go field; nil for a
	// Go field (the entry then only documents its status).
	Check check
	// Status and Why say what the field does here and why.
	Status Status
	Why    string
}

type fieldKey struct {
	parent reflect.Type
	name   string
}

var fieldTable = map[fieldKey]*Field{}

// extraFields registers the fields of parent (a Go struct type) that have
// no Go field, or documents the status of ones that have.
func extraFields(parent any, fields ...Field) {
	t := reflect.TypeOf(parent)
	for i := range fields {
		f := &fields[i]
		k := fieldKey{t, f.Name}
		if _, dup := fieldTable[k]; dup {
			panic("duplicate field table entry " + t.Name() + "." + f.Name)
		}
		_, isGo := fieldsOf(t)[f.Name]
		if isGo != (f.Check.fn == nil) {
			panic("field table entry " + t.Name() + "." + f.Name + ": a Go field has no check, any other field needs one")
		}
		fieldTable[k] = f
	}
}

// lookupField returns the table entry of field name of Go struct type t.
func lookupField(t reflect.Type, name string) *Field {
	return fieldTable[fieldKey{t, name}]
}

// extraField returns the entry of a field of t that has no Go field.
func extraField(t reflect.Type, name string) *Field {
	f := lookupField(t, name)
	if f == nil || f.Check.fn == nil {
		return nil
	}
	return f
}

// ---- checks ----

func fe(path, format string, args ...any) *FieldError {
	return &FieldError{Field: path, Reason: fmt.Sprintf(format, args...)}
}

func isBool(v any, path string) *FieldError {
	if _, ok := v.(bool); !ok {
		return typeError(path, "true or false", v)
	}
	return nil
}

var cBool = check{isBool, "boolean"}

func isString(v any, path string) *FieldError {
	if _, ok := v.(string); !ok {
		return typeError(path, "a string", v)
	}
	return nil
}

var cString = check{isString, "string"}

const (
	minI64 = math.MinInt64
	maxI64 = math.MaxInt64
)

func intDesc(lo, hi int64) string {
	switch {
	case lo == minI64 && hi == maxI64:
		return "integer"
	case hi == maxI64:
		return fmt.Sprintf("integer, at least %d", lo)
	}
	return fmt.Sprintf("integer %d-%d", lo, hi)
}

func cInt(lo, hi int64) check {
	return check{desc: intDesc(lo, hi), fn: func(v any, path string) *FieldError {
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "an integer", v)
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return fe(path, "invalid value %s: expected an integer", n)
		}
		if i < lo || i > hi {
			switch {
			case hi == maxI64:
				return fe(path, "must be at least %d (got %d)", lo, i)
			case lo == minI64:
				return fe(path, "must be at most %d (got %d)", hi, i)
			}
			return fe(path, "must be %d-%d (got %d)", lo, hi, i)
		}
		return nil
	}}
}

// cDuration is a Kubernetes metav1.Duration: a Go duration string.
func isDuration(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a duration string such as \"90s\"", v)
	}
	if _, err := time.ParseDuration(s); err != nil {
		return fe(path, "invalid duration %q: want a Go duration such as \"90s\" or \"1m30s\"", s)
	}
	return nil
}

var cDuration = check{isDuration, "duration (\"90s\")"}

func cEnum(vals ...string) check {
	return check{desc: "one of " + strings.Join(vals, ", "), fn: func(v any, path string) *FieldError {
		s, ok := v.(string)
		if !ok {
			return typeError(path, "a string", v)
		}
		if s == "" || slices.Contains(vals, s) {
			return nil
		}
		for _, w := range vals {
			if strings.EqualFold(w, s) {
				return fe(path, "invalid value %q (did you mean %q?): want %s", s, w, strings.Join(vals, ", "))
			}
		}
		return fe(path, "invalid value %q: want %s", s, strings.Join(vals, ", "))
	}}
}

var cLogLevel = cEnum("Trace", "Debug", "Info", "Warning", "Error", "Fatal")

func cMatch(re *regexp.Regexp, what string) check {
	return check{desc: what, fn: func(v any, path string) *FieldError {
		s, ok := v.(string)
		if !ok {
			return typeError(path, "a string", v)
		}
		if s != "" && !re.MatchString(s) {
			return fe(path, "invalid value %q: want %s", s, what)
		}
		return nil
	}}
}

func isRegexp(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	if _, err := regexp.Compile(s); err != nil {
		return fe(path, "invalid regular expression %q: %v", s, err)
	}
	return nil
}

var cRegexp = check{isRegexp, "regular expression"}

var kvItemRe = regexp.MustCompile(`^\s*(\w+)=(.*)$`)

// cKeyValueList is a comma-separated list of key=value.
func isKeyValueList(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	if strings.TrimSpace(s) == "" {
		return nil
	}
	for _, item := range strings.Split(s, ",") {
		if item != "" && !kvItemRe.MatchString(item) {
			return fe(path, "invalid item %q: want a comma-separated list of key=value", item)
		}
	}
	return nil
}

var cKeyValueList = check{isKeyValueList, "comma-separated key=value list"}

func isCIDR(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	if _, err := ParseNet(s); err != nil {
		return fe(path, "%v", err)
	}
	return nil
}

var cCIDR = check{isCIDR, "CIDR"}

// cNet is Calico's "net": an address or a CIDR.
func isNet(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	if _, err := ParseAddrOrNet(s); err != nil {
		return fe(path, "%v", err)
	}
	return nil
}

var cNet = check{isNet, "address or CIDR"}

func cIP(family int) check {
	return check{desc: fmt.Sprintf("IPv%d address", family), fn: func(v any, path string) *FieldError {
		s, ok := v.(string)
		if !ok {
			return typeError(path, "a string", v)
		}
		if s == "" {
			return nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || (family == 4 && !a.Is4()) || (family == 6 && (!a.Is6() || a.Is4In6())) {
			return fe(path, "invalid IPv%d address %q", family, s)
		}
		return nil
	}}
}

func isAnyIP(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
		return fe(path, "invalid IP address %q", s)
	}
	return nil
}

var cAnyIP = check{isAnyIP, "IP address"}

func isSelector(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	if s == "" {
		return nil
	}
	if _, err := selector.Parse(s); err != nil {
		return fe(path, "invalid selector: %v", err)
	}
	return nil
}

var cSelector = check{isSelector, "selector"}

func isName(v any, path string) *FieldError {
	s, ok := v.(string)
	if !ok {
		return typeError(path, "a string", v)
	}
	if s == "" {
		return nil
	}
	if err := checkName(s); err != nil {
		return fe(path, "%v", err)
	}
	return nil
}

var cName = check{isName, "name"}

// cPort is a numorstring.Port: a number, "min:max" or a name.
func isPort(v any, path string) *FieldError {
	var p Port
	b, _ := json.Marshal(v)
	if err := p.UnmarshalJSON(b); err != nil {
		return fe(path, "%v", err)
	}
	return nil
}

var cPort = check{isPort, "port (number, \"min:max\" or name)"}

func isASNumber(v any, path string) *FieldError {
	var a ASNumber
	b, _ := json.Marshal(v)
	if err := a.UnmarshalJSON(b); err != nil {
		return fe(path, "%v", err)
	}
	return nil
}

var cASNumber = check{isASNumber, "AS number"}

func cList(elem check) check {
	return check{desc: "list of " + elem.desc, fn: func(v any, path string) *FieldError {
		list, ok := v.([]any)
		if !ok {
			return typeError(path, "a list", v)
		}
		for i, e := range list {
			if e == nil {
				continue
			}
			if err := elem.run(e, idx(path, i)); err != nil {
				return err
			}
		}
		return nil
	}}
}

func cStringMap(key check) check {
	return check{desc: "map of string (keys: " + key.desc + ")", fn: func(v any, path string) *FieldError {
		m, ok := v.(map[string]any)
		if !ok {
			return typeError(path, "an object", v)
		}
		for _, k := range slices.Sorted(mapKeys(m)) {
			if err := key.run(k, join(path, k)); err != nil {
				return err
			}
			if err := cString.run(m[k], join(path, k)); err != nil {
				return err
			}
		}
		return nil
	}}
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// obj describes an object: its fields (unknown ones are refused), the
// ones that must be set, and an optional check of the whole.
type obj struct {
	fields   map[string]check
	required []string
	whole    func(m map[string]any, path string) *FieldError
}

// c is o as a check described by desc.
func (o obj) c(desc string) check { return check{o.validate, desc} }

func (o obj) validate(v any, path string) *FieldError {
	m, ok := v.(map[string]any)
	if !ok {
		return typeError(path, "an object", v)
	}
	for _, k := range slices.Sorted(mapKeys(m)) {
		c, ok := o.fields[k]
		if !ok {
			reason := fmt.Sprintf("unknown field %q", k)
			for name := range o.fields {
				if strings.EqualFold(name, k) {
					reason += fmt.Sprintf(" (did you mean %q?)", name)
				}
			}
			return &FieldError{Field: join(path, k), Reason: reason}
		}
		if m[k] == nil {
			continue
		}
		if err := c.run(m[k], join(path, k)); err != nil {
			return err
		}
	}
	for _, r := range o.required {
		if isEmptyValue(m[r]) {
			return fe(join(path, r), "%s is required", r)
		}
	}
	if o.whole != nil {
		return o.whole(m, path)
	}
	return nil
}

// isEmptyValue is JSON's zero: absent, null, false, 0, "", [] or {}.
func isEmptyValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// intOf reads an integer JSON value (0 when absent or not an integer).
func intOf(v any) int64 {
	n, _ := v.(json.Number)
	i, _ := strconv.ParseInt(string(n), 10, 64)
	return i
}

func strOf(v any) string { s, _ := v.(string); return s }

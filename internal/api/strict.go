package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Strict decoding. encoding/json matches field names case-insensitively and
// reports errors from custom unmarshalers without saying where they were. A
// manifest error must name its field path, so every document is first read
// into a generic tree and walked against the Go type: the walk refuses
// unknown (or wrongly cased) fields and wrong value types, and runs each
// custom unmarshaler on its own value to attribute its error to a path.
// Only then is the document decoded into the typed struct.

var unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// parseTree reads JSON into a generic tree, numbers kept as json.Number.
func parseTree(data []byte) (any, error) {
	var tree any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// decodeStrict decodes one JSON object into v (a pointer to a struct);
// tree is the same JSON as parsed by parseTree.
func decodeStrict(data []byte, tree any, v any) error {
	t := reflect.TypeOf(v).Elem()
	if fe := walk(tree, t, ""); fe != nil {
		return fe
	}
	known, extra := splitExtra(tree, t)
	if extra {
		// Fields of Calico's schema without a Go field: decode the rest,
		// and keep the whole document to return them unchanged.
		b, err := json.Marshal(known)
		if err != nil {
			return &FieldError{Reason: err.Error()}
		}
		data = b
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		// The walk accepts everything encoding/json accepts, so this is a
		// gap in the walk rather than in the manifest; report it as is.
		return &FieldError{Reason: err.Error()}
	}
	if r, ok := v.(Resource); ok && extra {
		if m, ok := tree.(map[string]any); ok {
			r.GetObjectMeta().extra = &extraData{tree: m, manifest: true}
		}
	}
	return nil
}

// walk checks the generic value v against Go type t at path.
func walk(v any, t reflect.Type, path string) *FieldError {
	if v == nil {
		// JSON null leaves the field at its zero value, as encoding/json does.
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		raw, err := json.Marshal(v)
		if err != nil {
			return &FieldError{Field: path, Reason: err.Error()}
		}
		target := reflect.New(t).Interface().(json.Unmarshaler)
		if err := target.UnmarshalJSON(raw); err != nil {
			return &FieldError{Field: path, Reason: err.Error()}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return walk(v, t.Elem(), path)
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return typeError(path, "an object", v)
		}
		fields := fieldsOf(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				if f := extraField(t, k); f != nil {
					if obj[k] == nil {
						continue
					}
					if fe := f.Check.run(obj[k], join(path, k)); fe != nil {
						return fe
					}
					continue
				}
				return unknownField(path, k, fields)
			}
			if fe := walk(obj[k], ft, join(path, k)); fe != nil {
				return fe
			}
		}
		return nil
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return typeError(path, "a list", v)
		}
		for i, e := range list {
			if fe := walk(e, t.Elem(), idx(path, i)); fe != nil {
				return fe
			}
		}
		return nil
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return typeError(path, "an object", v)
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if fe := walk(obj[k], t.Elem(), join(path, k)); fe != nil {
				return fe
			}
		}
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return typeError(path, "a string", v)
		}
		return nil
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return typeError(path, "true or false", v)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "an integer", v)
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return &FieldError{Field: path, Reason: fmt.Sprintf("invalid value %s: expected an integer in range %d to %d", n, minInt(t.Bits()), maxInt(t.Bits()))}
		}
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "an integer", v)
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			return &FieldError{Field: path, Reason: fmt.Sprintf("invalid value %s: expected an integer in range 0 to %d", n, uint64(math.MaxUint64)>>(64-t.Bits()))}
		}
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "a number", v)
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			return &FieldError{Field: path, Reason: fmt.Sprintf("invalid number %s", n)}
		}
		return nil
	case reflect.Interface:
		return nil
	}
	return &FieldError{Field: path, Reason: fmt.Sprintf("cannot decode into %s", t)}
}

func minInt(bits int) int64 { return -1 << (bits - 1) }
func maxInt(bits int) int64 { return 1<<(bits-1) - 1 }

func typeError(path, want string, got any) *FieldError {
	return &FieldError{Field: path, Reason: fmt.Sprintf("expected %s, got %s", want, describe(got))}
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case json.Number:
		return "number " + string(x)
	case bool:
		return fmt.Sprintf("%t", x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func unknownField(path, key string, fields map[string]reflect.Type) *FieldError {
	reason := fmt.Sprintf("unknown field %q", key)
	for name := range fields {
		if strings.EqualFold(name, key) {
			reason += fmt.Sprintf(" (did you mean %q?)", name)
			break
		}
	}
	return &FieldError{Field: join(path, key), Reason: reason}
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf maps the JSON names of a struct's fields to their types,
// following encoding/json's rules for tags and embedded structs.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	collectFields(t, m)
	fieldCache.Store(t, m)
	return m
}

func collectFields(t reflect.Type, m map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, m)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup {
			m[name] = f.Type
		}
	}
}

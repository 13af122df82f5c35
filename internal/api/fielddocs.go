package api

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// FieldSection documents the fields of one object of the schema: a kind's
// spec, or an object that several kinds share (Rule, EntityRule, ...).
type FieldSection struct {
	Title string
	Rows  []FieldDoc
}

// FieldDoc is one field: its JSON name, what value it takes, its status
// here and why.
type FieldDoc struct {
	Field  string
	Value  string
	Status Status
	Why    string
}

// FieldDocs lists every field of every kind, from the Go types and the
// field table: first each kind's spec (and Node's status), then the
// objects they share.
func FieldDocs() []FieldSection {
	var out []FieldSection
	seen := map[reflect.Type]bool{}
	var queue []reflect.Type
	add := func(title string, t reflect.Type) {
		sec := FieldSection{Title: title}
		fields := fieldsOf(t)
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		for k := range fieldTable {
			if k.parent == t && fields[k.name] == nil {
				names = append(names, k.name)
			}
		}
		slices.Sort(names)
		for _, n := range names {
			row := FieldDoc{Field: n, Status: Acts}
			if ft, ok := fields[n]; ok {
				row.Value = valueOf(ft, func(st reflect.Type) string {
					if !seen[st] {
						seen[st] = true
						queue = append(queue, st)
					}
					return sectionTitle(st)
				})
			} else if f := lookupField(t, n); f != nil {
				row.Value = f.Check.desc
			}
			if f := lookupField(t, n); f != nil {
				row.Status, row.Why = f.Status, f.Why
			}
			sec.Rows = append(sec.Rows, row)
		}
		out = append(out, sec)
	}
	for _, ki := range kinds {
		rt := reflect.TypeOf(ki.new()).Elem()
		spec, ok := rt.FieldByName("Spec")
		if !ok {
			continue
		}
		seen[spec.Type] = true
		add(ki.Kind+" spec", spec.Type)
		if st, ok := rt.FieldByName("Status"); ok {
			t := st.Type
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			seen[t] = true
			add(ki.Kind+" status", t)
		}
	}
	for i := 0; i < len(queue); i++ {
		add(sectionTitle(queue[i]), queue[i])
	}
	return out
}

func sectionTitle(t reflect.Type) string { return t.Name() }

// valueOf describes the JSON value of Go type t; struct types are named
// and reported to sub so that they get a section.
func valueOf(t reflect.Type, sub func(reflect.Type) string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeOf(Duration{}):
		return "duration"
	case reflect.TypeOf(Protocol{}):
		return "protocol (name or number)"
	case reflect.TypeOf(Port{}):
		return "port (number, \"min:max\" or name)"
	case reflect.TypeOf(ASNumber(0)):
		return "AS number"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of " + valueOf(t.Elem(), sub)
	case reflect.Map:
		return "map of " + valueOf(t.Elem(), sub)
	case reflect.Struct:
		return sub(t)
	}
	return t.String()
}

// FieldTableMarkdown renders FieldDocs as the Markdown that
// docs/resources.md carries between its field table markers.
func FieldTableMarkdown() string {
	var b strings.Builder
	for i, sec := range FieldDocs() {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "#### %s\n\n", sec.Title)
		b.WriteString("| field | value | here | why |\n|---|---|---|---|\n")
		for _, r := range sec.Rows {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Field, mdEscape(r.Value), r.Status, mdEscape(r.Why))
		}
	}
	return b.String()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

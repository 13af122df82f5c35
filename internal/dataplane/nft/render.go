package nft

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Render returns the ruleset the driver programs for d, in a readable form
// close to `nft list table inet calico`, with the IDs behind hashed names as
// comments. It is deterministic (for golden tests) and does no I/O. Each
// rule's text is exactly what its kernel comment hashes.
func Render(d *dataplane.Desired) string {
	return compile(d, nil).render()
}

func (m *model) render() string {
	var sb strings.Builder
	sb.WriteString("table inet " + tableName + " {\n")
	names := make([]string, 0, len(m.sets))
	for n := range m.sets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s := m.sets[n]
		kind := "set"
		if s.typ.isMap() {
			kind = "map"
		}
		fmt.Fprintf(&sb, "\t%s %s { # %s\n", kind, s.name, s.comment)
		fmt.Fprintf(&sb, "\t\ttype %s\n", strings.TrimSuffix(s.typ.name, " (interval)"))
		if s.typ.interval {
			sb.WriteString("\t\tflags interval\n")
		}
		if es := s.typ.sortedElemTexts(s.content.elems); len(es) > 0 {
			sb.WriteString("\t\telements = {\n")
			for _, e := range es {
				sb.WriteString("\t\t\t" + e + ",\n")
			}
			sb.WriteString("\t\t}\n")
		}
		sb.WriteString("\t}\n")
	}
	for _, n := range m.order {
		c := m.chains[n]
		fmt.Fprintf(&sb, "\tchain %s { # %s\n", c.name, c.comment)
		if c.base != nil {
			fmt.Fprintf(&sb, "\t\ttype %s hook %s priority %d; policy accept;\n", c.base.typ, c.base.hookName, c.base.prio)
		}
		for _, r := range c.compiled() {
			sb.WriteString("\t\t" + r.text + "\n")
		}
		sb.WriteString("\t}\n")
	}
	sb.WriteString("}\n")
	for _, p := range m.problems {
		sb.WriteString("# problem: " + p + "\n")
	}
	return sb.String()
}

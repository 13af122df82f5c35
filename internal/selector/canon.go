package selector

import (
	"slices"
	"strings"
)

// normalise returns the canonical tree equivalent to n, each node carrying
// its rendering in str. It builds new nodes and leaves n untouched. Every
// rewrite is an exact equivalence for all label sets, absent labels included:
//
//   - k in {v} is k == v, and k not in {v} is k != v.
//   - !(k == v) is k != v, !(k in S) is k not in S, and the reverse, because
//     == and in are false on an absent label while != and not in are true.
//   - !!x is x.
//   - Nested chains of the same operator are flattened; operands are sorted
//     by their canonical string and repeats dropped (evaluation has no side
//     effects, so && and || are commutative and idempotent).
//   - all() is dropped from && chains, and an || chain containing it is all().
func normalise(n *node) *node {
	switch n.op {
	case opIn, opNotIn:
		c := &node{op: n.op, key: n.key, values: n.values}
		if len(c.values) == 1 {
			c.op = opEq
			if n.op == opNotIn {
				c.op = opNe
			}
			c.value, c.values = c.values[0], nil
		}
		return finish(c)
	case opNot:
		k := normalise(n.kids[0])
		switch k.op {
		case opNot:
			return k.kids[0]
		case opEq:
			return finish(&node{op: opNe, key: k.key, value: k.value})
		case opNe:
			return finish(&node{op: opEq, key: k.key, value: k.value})
		case opIn:
			return finish(&node{op: opNotIn, key: k.key, values: k.values})
		case opNotIn:
			return finish(&node{op: opIn, key: k.key, values: k.values})
		}
		return finish(&node{op: opNot, kids: []*node{k}})
	case opAnd, opOr:
		var kids []*node
		for _, raw := range n.kids {
			k := normalise(raw)
			switch {
			case k.op == n.op:
				kids = append(kids, k.kids...)
			case k.op == opAll && n.op == opAnd:
				// all() && x is x.
			case k.op == opAll && n.op == opOr:
				return finish(&node{op: opAll})
			default:
				kids = append(kids, k)
			}
		}
		slices.SortFunc(kids, func(a, b *node) int { return strings.Compare(a.str, b.str) })
		kids = slices.CompactFunc(kids, func(a, b *node) bool { return a.str == b.str })
		switch len(kids) {
		case 0:
			return finish(&node{op: opAll})
		case 1:
			return kids[0]
		}
		return finish(&node{op: n.op, kids: kids})
	default:
		c := *n
		return finish(&c)
	}
}

func finish(n *node) *node {
	n.str = render(n)
	return n
}

// render writes n in canonical syntax from its children's renderings.
// Parentheses appear only where needed, plus around an && chain inside an
// || chain, which the grammar does not need but readers do.
func render(n *node) string {
	var b strings.Builder
	switch n.op {
	case opAll:
		return "all()"
	case opHas:
		return "has(" + n.key + ")"
	case opEq, opNe, opContains, opStartsWith, opEndsWith:
		b.WriteString(n.key)
		b.WriteString(opText[n.op])
		writeQuoted(&b, n.value)
	case opIn, opNotIn:
		b.WriteString(n.key)
		b.WriteString(opText[n.op])
		b.WriteByte('{')
		for i, v := range n.values {
			if i > 0 {
				b.WriteString(", ")
			}
			writeQuoted(&b, v)
		}
		b.WriteByte('}')
	case opNot:
		k := n.kids[0]
		b.WriteByte('!')
		if k.op == opHas || k.op == opAll {
			b.WriteString(k.str)
		} else {
			b.WriteString("(" + k.str + ")")
		}
	case opAnd, opOr:
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(opText[n.op])
			}
			if k.op == opAnd || k.op == opOr {
				b.WriteString("(" + k.str + ")")
			} else {
				b.WriteString(k.str)
			}
		}
	}
	return b.String()
}

var opText = map[opKind]string{
	opEq:         " == ",
	opNe:         " != ",
	opContains:   " contains ",
	opStartsWith: " starts with ",
	opEndsWith:   " ends with ",
	opIn:         " in ",
	opNotIn:      " not in ",
	opAnd:        " && ",
	opOr:         " || ",
}

// writeQuoted quotes v with double quotes, or single quotes when v contains
// a double quote. No value contains both: the grammar has no escapes.
func writeQuoted(b *strings.Builder, v string) {
	q := byte('"')
	if strings.IndexByte(v, '"') >= 0 {
		q = '\''
	}
	b.WriteByte(q)
	b.WriteString(v)
	b.WriteByte(q)
}

package selector

import (
	"fmt"
	"slices"
	"strings"
)

// Selector is a parsed, canonicalised label selector. The zero value and a
// nil *Selector both select everything, like all().
type Selector struct {
	root *node
	keys []string // sorted, unique label keys the canonical tree refers to
}

// ParseError describes why a selector did not parse. Pos is the byte offset
// into Input where the problem was found.
type ParseError struct {
	Input string
	Pos   int
	Msg   string
}

func (e *ParseError) Error() string {
	in := e.Input
	if len(in) > maxQuoted {
		// A long (perhaps hostile) selector is shown around the problem
		// only, so the message stays readable.
		from := max(0, min(e.Pos-maxQuoted/2, len(in)-maxQuoted))
		in = in[from : from+maxQuoted]
		return fmt.Sprintf("selector of %d bytes, at position %d (near %q): %s", len(e.Input), e.Pos, in, e.Msg)
	}
	return fmt.Sprintf("selector %q: at position %d: %s", in, e.Pos, e.Msg)
}

// maxQuoted is how much of a selector an error message quotes.
const maxQuoted = 80

var allSelector = &Selector{root: &node{op: opAll, str: "all()"}}

// All returns a selector that matches every set of labels.
func All() *Selector { return allSelector }

// Parse parses s into a canonicalised selector. An empty or all-whitespace
// string parses to all(). Errors are of type *ParseError.
func Parse(s string) (*Selector, error) {
	raw, err := parseRaw(s)
	if err != nil {
		return nil, err
	}
	root := normalise(raw)
	return &Selector{root: root, keys: collectKeys(root)}, nil
}

// MustParse is Parse for selectors known to be valid (tests, constants); it
// panics on error.
func MustParse(s string) *Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// Canonical returns the canonical form of selector s (see Selector.String).
func Canonical(s string) (string, error) {
	sel, err := Parse(s)
	if err != nil {
		return "", err
	}
	return sel.String(), nil
}

// Evaluate reports whether labels satisfy the selector. A nil map is a set of
// no labels. It does not allocate.
func (s *Selector) Evaluate(labels map[string]string) bool {
	if s == nil || s.root == nil {
		return true
	}
	return s.root.eval(labels)
}

// String returns the canonical form of the selector.
func (s *Selector) String() string {
	if s == nil || s.root == nil {
		return "all()"
	}
	return s.root.str
}

// LabelKeys returns the sorted, de-duplicated label keys the selector's
// result can depend on: a label not listed here never changes Evaluate's
// answer. The caller owns the returned slice.
func (s *Selector) LabelKeys() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.keys)
}

// IsAll reports whether the selector is all() after canonicalisation (which
// includes "", global(), and chains such as "all() || x").
func (s *Selector) IsAll() bool {
	return s == nil || s.root == nil || s.root.op == opAll
}

type opKind uint8

const (
	opAll opKind = iota
	opEq
	opNe
	opIn
	opNotIn
	opContains
	opStartsWith
	opEndsWith
	opHas
	opNot
	opAnd
	opOr
)

// node is one vertex of a selector tree. A single struct type rather than an
// interface per operator keeps evaluation a switch over a byte, with no
// dynamic dispatch and no allocation.
type node struct {
	op     opKind
	key    string   // comparisons and has()
	value  string   // ==, !=, contains, starts with, ends with
	values []string // in, not in: sorted and unique
	kids   []*node  // !: exactly one; && and ||: two or more
	str    string   // canonical rendering; set by normalise
}

func (n *node) eval(labels map[string]string) bool {
	switch n.op {
	case opAll:
		return true
	case opEq:
		v, ok := labels[n.key]
		return ok && v == n.value
	case opNe:
		v, ok := labels[n.key]
		return !ok || v != n.value
	case opIn:
		v, ok := labels[n.key]
		return ok && inSorted(n.values, v)
	case opNotIn:
		v, ok := labels[n.key]
		return !ok || !inSorted(n.values, v)
	case opContains:
		v, ok := labels[n.key]
		return ok && strings.Contains(v, n.value)
	case opStartsWith:
		v, ok := labels[n.key]
		return ok && strings.HasPrefix(v, n.value)
	case opEndsWith:
		v, ok := labels[n.key]
		return ok && strings.HasSuffix(v, n.value)
	case opHas:
		_, ok := labels[n.key]
		return ok
	case opNot:
		return !n.kids[0].eval(labels)
	case opAnd:
		for _, k := range n.kids {
			if !k.eval(labels) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if k.eval(labels) {
				return true
			}
		}
		return false
	}
	return false
}

// inSorted reports whether v is in the sorted slice vs. Short sets (the
// common case) are scanned; longer ones are binary searched.
func inSorted(vs []string, v string) bool {
	if len(vs) <= 8 {
		for _, x := range vs {
			if x == v {
				return true
			}
		}
		return false
	}
	_, found := slices.BinarySearch(vs, v)
	return found
}

func collectKeys(n *node) []string {
	var keys []string
	var walk func(*node)
	walk = func(n *node) {
		switch n.op {
		case opAll:
		case opNot, opAnd, opOr:
			for _, k := range n.kids {
				walk(k)
			}
		default:
			keys = append(keys, n.key)
		}
	}
	walk(n)
	slices.Sort(keys)
	return slices.Compact(keys)
}

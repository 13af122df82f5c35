// Package selector parses and evaluates Calico label selectors, the
// expressions that policies, IP pools and BGP peers use to pick endpoints and
// nodes by their labels (for example `role == 'db' && has(tier)`).
//
// The grammar is Calico's (projectcalico.org/v3):
//
//	expr      = and { "||" and }
//	and       = unary { "&&" unary }
//	unary     = { "!" } primary
//	primary   = "(" expr ")" | "all()" | "global()" | "has(" key ")"
//	          | key ( "==" | "!=" | "contains" | "starts with" | "ends with" ) string
//	          | key ( "in" | "not in" ) "{" [ string { "," string } [ "," ] ] "}"
//	string    = "'" chars "'" | '"' chars '"'     (no escapes)
//	key       = 1*( A-Z a-z 0-9 _ . / - )         (e.g. projectcalico.org/namespace)
//
// Like Calico, the parser also accepts "notin", "startswith" and "endswith"
// written as one word, and a trailing comma in a set. Whitespace is spaces and
// tabs, and (beyond Calico) newlines, so YAML block scalars work.
//
// "&&" binds tighter than "||"; "!" applies to one primary. The empty string
// (or only whitespace) selects everything, like all(). A label that is absent
// makes "!=" and "not in" true and every other comparison false. global() is
// evaluated as all(), which is what Calico's own evaluator does; the special
// meaning Calico gives global() inside a rule's namespaceSelector (select
// non-namespaced endpoints) is the caller's business, not this package's.
//
// Invariants:
//   - The package is pure: no I/O, no clock, no global mutable state.
//   - A *Selector is immutable once parsed and safe for concurrent use.
//   - Evaluate never panics and does not allocate.
//   - String returns a canonical form: selectors that differ only in
//     whitespace, quote style, redundant parentheses, double negation, the
//     order or repetition of operands of an && or || chain, or the order or
//     repetition of set members, render identically, and
//     Parse(s.String()).String() == s.String(). Every rewrite made on the way
//     is an exact equivalence (for example !(a == 'x') becomes a != 'x', which
//     agrees also when a is absent), so the canonical string can key shared
//     dataplane sets.
//   - Parse errors are *ParseError values carrying the byte offset of the
//     problem.
package selector

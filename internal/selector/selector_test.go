package selector

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

type labels = map[string]string

func TestEvaluate(t *testing.T) {
	web := labels{"role": "web", "tier": "frontend", "env": "prod", "projectcalico.org/namespace": "default", "empty": ""}
	none := labels{}
	tests := []struct {
		sel    string
		labels labels
		want   bool
	}{
		// all(), global() and the empty selector.
		{"", none, true},
		{"   \t", web, true},
		{"all()", none, true},
		{"all( )", web, true},
		{"global()", web, true},
		{"!all()", web, false},

		// ==
		{"role == 'web'", web, true},
		{`role == "web"`, web, true},
		{"role == 'db'", web, false},
		{"role == 'web'", none, false},
		{"empty == ''", web, true},
		{"empty == ''", none, false},
		{"role=='web'", web, true},

		// !=
		{"role != 'db'", web, true},
		{"role != 'web'", web, false},
		{"role != 'web'", none, true}, // absent label: != is true
		{"empty != ''", web, false},

		// in / not in
		{"role in {'web', 'db'}", web, true},
		{"role in {'db','cache'}", web, false},
		{"role in {'web'}", none, false},
		{"role in {}", web, false},
		{"role in {'a','b','c','d','e','f','g','h','i','j','web'}", web, true}, // long set: binary search
		{"role in {'a','b','c','d','e','f','g','h','i','j','k'}", web, false},
		{"role not in {'db', 'cache'}", web, true},
		{"role not in {'web', 'db'}", web, false},
		{"role not in {'web'}", none, true}, // absent label: not in is true
		{"role not in {}", none, true},
		{"role notin {'db'}", web, true},
		{"role in {'web',}", web, true}, // trailing comma, as Calico accepts

		// contains / starts with / ends with
		{"tier contains 'ont'", web, true},
		{"tier contains 'back'", web, false},
		{"tier contains ''", web, true},
		{"tier contains ''", none, false}, // absent label: false even for ''
		{"tier starts with 'front'", web, true},
		{"tier starts with 'end'", web, false},
		{"tier starts with 'front'", none, false},
		{"tier startswith 'front'", web, true},
		{"tier ends with 'end'", web, true},
		{"tier ends with 'front'", web, false},
		{"tier ends  with 'end'", none, false},
		{"tier endswith 'end'", web, true},

		// has / !has
		{"has(role)", web, true},
		{"has( role )", web, true},
		{"has(empty)", web, true},
		{"has(role)", none, false},
		{"!has(role)", web, false},
		{"!has(role)", none, true},
		{"has(projectcalico.org/namespace)", web, true},
		{"projectcalico.org/namespace == 'default'", web, true},

		// ! on comparisons and groups.
		{"!role == 'web'", web, false}, // ! binds to the whole comparison
		{"!role == 'db'", web, true},
		{"!role == 'web'", none, true},
		{"!!role == 'web'", web, true},
		{"!!!role == 'web'", web, false},
		{"!(role == 'web' && env == 'prod')", web, false},
		{"!(tier contains 'x')", none, true},

		// && binds tighter than ||.
		{"role == 'db' && env == 'prod' || tier == 'frontend'", web, true},
		{"role == 'db' && (env == 'prod' || tier == 'frontend')", web, false},
		{"tier == 'frontend' || role == 'db' && env == 'dev'", web, true},
		{"(tier == 'frontend' || role == 'db') && env == 'dev'", web, false},
		{"role == 'web' && env == 'prod' && has(tier)", web, true},
		{"role == 'web' && env == 'prod' && has(x)", web, false},
		{"role == 'x' || env == 'y' || has(tier)", web, true},
		{"role == 'x' || env == 'y' || has(z)", web, false},
		{"((((role == 'web'))))", web, true},

		// Quotes: each style may contain the other quote character.
		{`q == 'say "hi"'`, labels{"q": `say "hi"`}, true},
		{`q == "it's"`, labels{"q": "it's"}, true},
		{`q in {"it's", 'a"b'}`, labels{"q": `a"b`}, true},

		// Keys that look like keywords are just keys.
		{"in == 'x'", labels{"in": "x"}, true},
		{"has == 'x'", labels{"has": "x"}, true},
		{"all != 'x'", labels{"all": "x"}, false},
		{"not in {'x'}", labels{"not": "y"}, false}, // the key "not", operator in
		{"not not in {'x'}", labels{"not": "y"}, true},
		{"contains contains 'x'", labels{"contains": "axb"}, true},

		// Whitespace variants, including newlines from YAML block scalars.
		{"role == 'web'\n  && env == 'prod'", web, true},
		{"\trole\t==\t'web'\t", web, true},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.sel, err)
			continue
		}
		if got := sel.Evaluate(tt.labels); got != tt.want {
			t.Errorf("Parse(%q).Evaluate(%v) = %v, want %v (canonical %q)", tt.sel, tt.labels, got, tt.want, sel.String())
		}
		// The raw tree must agree with the canonical one.
		raw, _ := parseRaw(tt.sel)
		if got := raw.eval(tt.labels); got != tt.want {
			t.Errorf("raw %q evaluated to %v, want %v", tt.sel, got, tt.want)
		}
	}
}

func TestNilLabelsAndZeroSelector(t *testing.T) {
	if !MustParse("role != 'x'").Evaluate(nil) {
		t.Error("!= on nil labels should be true")
	}
	if MustParse("has(role)").Evaluate(nil) {
		t.Error("has() on nil labels should be false")
	}
	var nilSel *Selector
	var zero Selector
	for _, s := range []*Selector{nilSel, &zero, All()} {
		if !s.Evaluate(labels{"a": "b"}) || s.String() != "all()" || !s.IsAll() || len(s.LabelKeys()) != 0 {
			t.Errorf("%#v should behave as all()", s)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "all()"},
		{"global()", "all()"},
		{"role=='db'", `role == "db"`},
		{`x == 'a"b'`, `x == 'a"b'`},
		{`x == "it's"`, `x == "it's"`},
		{"a in {'y','x','y'}", `a in {"x", "y"}`},
		{"a in {'x'}", `a == "x"`},
		{"a not in {'x'}", `a != "x"`},
		{"a not in {'b', 'a'}", `a not in {"a", "b"}`},
		{"a in {}", "a in {}"},
		{"!a == 'x'", `a != "x"`},
		{"!a != 'x'", `a == "x"`},
		{"!(a in {'x','y'})", `a not in {"x", "y"}`},
		{"!(a not in {'x','y'})", `a in {"x", "y"}`},
		{"!!has(a)", "has(a)"},
		{"!has(a)", "!has(a)"},
		{"!(a contains 'x')", `!(a contains "x")`},
		{"a starts  with 'x'", `a starts with "x"`},
		{"a endswith 'x'", `a ends with "x"`},
		{"b == 'x' && a == 'y'", `a == "y" && b == "x"`},
		{"b == 'x' || a == 'y'", `a == "y" || b == "x"`},
		{"(b == 'y' || c == 'z') && a == 'x'", `a == "x" && (b == "y" || c == "z")`},
		{"c == 'z' && b == 'y' || a == 'x'", `a == "x" || (b == "y" && c == "z")`},
		{"(a == 'x' && b == 'y') && c == 'z'", `a == "x" && b == "y" && c == "z"`},
		{"a == 'x' && a == 'x'", `a == "x"`},
		{"all() && has(a)", "has(a)"},
		{"all() || has(a)", "all()"},
		{"all() && all()", "all()"},
		{"!(has(a) && has(b))", "!(has(a) && has(b))"},
		{"!!(has(a) || has(b))", "has(a) || has(b)"},
		{"!all()", "!all()"},
	}
	for _, tt := range tests {
		got, err := Canonical(tt.in)
		if err != nil {
			t.Errorf("Canonical(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
		}
		again, err := Canonical(got)
		if err != nil || again != got {
			t.Errorf("Canonical(%q) = %q, %v; not a fixed point", got, again, err)
		}
	}
}

// TestCanonicalEqualities checks that each group, written differently,
// shares one canonical string, and that different groups do not collide.
func TestCanonicalEqualities(t *testing.T) {
	groups := [][]string{
		{"role == 'db'", `role=="db"`, "(role == 'db')", "((role=='db'))", " role  ==  'db' ", "role in {'db'}", "!(role != 'db')", "!!role == 'db'"},
		{"role == 'db' && tier == 'x'", "tier == 'x' && role == 'db'", "(tier=='x')&&(role=='db')", "role == 'db' && tier == 'x' && role == 'db'", "all() && tier == 'x' && role == 'db'"},
		{"a == '1' || b == '2' || c == '3'", "c == '3' || (b == '2' || a == '1')", "(a == '1' || b == '2') || c == '3'"},
		{"a in {'x', 'y'}", `a in {"y","x"}`, "a in {'y', 'x', 'x',}", "!(a not in {'x','y'})"},
		{"has(a) && (b == '1' || c == '2')", "(c == '2' || b == '1') && has(a)", "((b == '1') || (c == '2')) && has(a)"},
		{"", "all()", "global()", "has(a) || all()", "( all() )"},
		{"!has(a)", "!!!has(a)", "!(has(a))"},
		// Different from the first group: the same labels and values but a
		// different operator.
		{"role != 'db'"},
		{"role contains 'db'"},
	}
	seen := map[string]int{}
	for gi, g := range groups {
		want, err := Canonical(g[0])
		if err != nil {
			t.Fatalf("Canonical(%q): %v", g[0], err)
		}
		if other, ok := seen[want]; ok {
			t.Errorf("groups %d and %d share canonical form %q", other, gi, want)
		}
		seen[want] = gi
		for _, s := range g[1:] {
			got, err := Canonical(s)
			if err != nil {
				t.Errorf("Canonical(%q): %v", s, err)
			} else if got != want {
				t.Errorf("Canonical(%q) = %q, want %q (same as %q)", s, got, want, g[0])
			}
		}
	}
}

func TestLabelKeys(t *testing.T) {
	tests := []struct {
		sel  string
		want []string
	}{
		{"", nil},
		{"has(b) && a == 'x' || !(c contains 'y') || b in {'z'}", []string{"a", "b", "c"}},
		{"has(x.io/b) && x.io/a != 'x'", []string{"x.io/a", "x.io/b"}},
		{"has(a) || all()", nil}, // the result cannot depend on a
	}
	for _, tt := range tests {
		got := MustParse(tt.sel).LabelKeys()
		if !slices.Equal(got, tt.want) {
			t.Errorf("LabelKeys(%q) = %q, want %q", tt.sel, got, tt.want)
		}
	}
	// The caller owns the slice.
	s := MustParse("has(a) && has(b)")
	s.LabelKeys()[0] = "zzz"
	if got := s.LabelKeys(); got[0] != "a" {
		t.Errorf("LabelKeys shares its slice: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat("(", maxDepth+1) + "has(a)" + strings.Repeat(")", maxDepth+1)
	tests := []struct {
		in  string
		pos int
		msg string
	}{
		{"role = 'x'", 5, "expected '==' or '!=' after label \"role\", found a single '='"},
		{"role == x", 8, `expected a quoted string after '==', found "x" (quote the value: 'x')`},
		{"role ==", 7, "expected a quoted string after '==', found end of selector"},
		{"role", 4, "expected an operator ('==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with') after label \"role\", found end of selector"},
		{"role is 'x'", 5, `found "is"`},
		{"role starts 'x'", 12, `expected "with" after "starts", found quoted string "x"`},
		{"role not 'x'", 9, `expected "in" after "not"`},
		{"role in 'x'", 8, "expected '{' to start the set of values, found quoted string \"x\""},
		{"role in {'x' 'y'}", 13, "expected ',' or '}' in the set"},
		{"role in {'x',,}", 13, "expected a quoted string or '}' in the set, found ','"},
		{"role in {'x'", 12, "found end of selector"},
		{"role in {x}", 9, "expected a quoted string or '}' in the set, found \"x\""},
		{"role contains", 13, "expected a quoted string after 'contains'"},
		{"role == 'x", 8, "unterminated string: no closing '"},
		{`role == "x`, 8, `unterminated string: no closing "`},
		{"a == 'x' & b == 'y'", 9, "expected '&&', found a single '&'"},
		{"a == 'x' | b == 'y'", 9, "expected '||', found a single '|'"},
		{"a == 'x' b == 'y'", 9, `expected '&&', '||' or end of selector, found "b"`},
		{"a == 'x')", 8, "unexpected ')' with no matching '('"},
		{"(a == 'x'", 9, "'&&', '||' or ')' to close the '(' at position 0, found end of selector"},
		{"a == 'x' &&", 11, "expected a label, has(), all(), '!' or '(', found end of selector"},
		{"&& a == 'x'", 0, "expected a label, has(), all(), '!' or '(', found '&&'"},
		{"()", 1, "found ')'"},
		{"!", 1, "found end of selector"},
		{"has()", 4, "expected a label key inside has(), found ')'"},
		{"has(a", 5, "expected ')' to close has(, found end of selector"},
		{"has('a')", 4, "expected a label key inside has(), found quoted string"},
		{"all(x)", 4, "expected ')' to close all(, found \"x\""},
		{"any()", 0, `unknown function "any()": the functions are has(), all() and global()`},
		{"role == 'x' && tiér == 'y'", 17, "unexpected character 'é'"},
		{"role == 'x' && $x == 'y'", 15, "unexpected character '$'"},
		{"a == 'x' && b = 'y'", 14, "expected '==' or '!='"},
		{deep, maxDepth, "parentheses nested more than 100 deep"},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want error", tt.in, sel)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error %T, want *ParseError", tt.in, err)
			continue
		}
		if pe.Pos != tt.pos || !strings.Contains(pe.Msg, tt.msg) || pe.Input != tt.in {
			t.Errorf("Parse(%q) error = pos %d %q, want pos %d containing %q", tt.in, pe.Pos, pe.Msg, tt.pos, tt.msg)
		}
		if _, err := Canonical(tt.in); err == nil {
			t.Errorf("Canonical(%q) succeeded", tt.in)
		}
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := Parse("role = 'x'")
	want := `selector "role = 'x'": at position 5: expected '==' or '!=' after label "role", found a single '='`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestLongChainsDoNotRecurse(t *testing.T) {
	// A long run of '!' and a long && chain are iterative in the parser.
	s := strings.Repeat("!", MaxLen-7) + "has(a)"
	if got := MustParse(s).String(); got != "!has(a)" {
		t.Errorf("got %q", got)
	}
	parts := make([]string, 5000)
	for i := range parts {
		parts[i] = "has(a)"
	}
	if got := MustParse(strings.Join(parts, " && ")).String(); got != "has(a)" {
		t.Errorf("got %q", got)
	}
	nested := strings.Repeat("(", maxDepth) + "has(a)" + strings.Repeat(")", maxDepth)
	if got := MustParse(nested).String(); got != "has(a)" {
		t.Errorf("got %q", got)
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	sel := MustParse("role == 'web' && tier in {'a','b','frontend'} && !has(quarantine) && (env starts with 'pro' || env ends with 'dev' || name contains 'x') && zone not in {'z1','z2','z3','z4','z5','z6','z7','z8','z9','z10'}")
	lbls := labels{"role": "web", "tier": "frontend", "env": "prod", "zone": "z11"}
	if !sel.Evaluate(lbls) {
		t.Fatalf("%q should match %v", sel, lbls)
	}
	if n := testing.AllocsPerRun(1000, func() { sel.Evaluate(lbls) }); n != 0 {
		t.Errorf("Evaluate allocates %v times per call", n)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse of a bad selector did not panic")
		}
	}()
	MustParse("a = 'b'")
}

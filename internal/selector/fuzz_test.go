package selector

import (
	"errors"
	"slices"
	"testing"
)

// FuzzParseEvaluate checks, for any input, that Parse never panics, that
// errors are well-formed *ParseErrors, and that for a valid selector:
//   - the canonical string re-parses to itself (a fixed point);
//   - the canonical tree, the re-parsed tree and the raw (unrewritten) tree
//     evaluate alike on label sets built from the selector's own keys and
//     literals, so canonicalisation never changes meaning;
//   - labels outside LabelKeys never change the answer.
//
// choice picks, for each key, whether it is absent or which of the
// selector's literals (or a variant) it carries.
func FuzzParseEvaluate(f *testing.F) {
	for _, s := range []string{
		"",
		"all()",
		"global()",
		"role == 'db'",
		`role != "db"`,
		"role in {'a', 'b'}",
		"role not in {'a'}",
		"role in {}",
		"name contains 'x'",
		"name starts with 'ab'",
		"name ends with 'yz'",
		"has(projectcalico.org/namespace)",
		"!has(a) || a == ''",
		"!(a == 'x' && b != 'y') || c in {'1','2','3'}",
		"a == 'x' && (b == 'y' || !c contains 'z') && has(d)",
		"((a == 'x'))",
		"!!!a in {'x','y',}",
		`q == 'say "hi"' || q == "it's"`,
		"role = 'x'",
		"a == 'x' & b",
		"has(a",
		"(((",
		"all() || has(x)",
		"a notin {'x'} && b startswith 'y' && c endswith 'z'",
	} {
		f.Add(s, []byte{0, 1, 2, 3, 4, 5, 6, 7})
		f.Add(s, []byte{3, 0, 7, 1})
	}
	f.Fuzz(func(t *testing.T, s string, choice []byte) {
		sel, err := Parse(s)
		raw, rawErr := parseRaw(s)
		if (err == nil) != (rawErr == nil) {
			t.Fatalf("Parse and parseRaw disagree on %q: %v / %v", s, err, rawErr)
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) returned %T, want *ParseError", s, err)
			}
			if pe.Pos < 0 || pe.Pos > len(s) || pe.Input != s || pe.Msg == "" {
				t.Fatalf("Parse(%q): malformed error %+v", s, pe)
			}
			return
		}

		c := sel.String()
		sel2, err := Parse(c)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", c, s, err)
		}
		if c2 := sel2.String(); c2 != c {
			t.Fatalf("canonical form of %q is not stable: %q then %q", s, c, c2)
		}
		keys := sel.LabelKeys()
		if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
			t.Fatalf("LabelKeys(%q) not sorted and unique: %q", s, keys)
		}
		if !slices.Equal(keys, sel2.LabelKeys()) {
			t.Fatalf("LabelKeys differ after round trip of %q: %q vs %q", s, keys, sel2.LabelKeys())
		}

		lbls := labelsFor(raw, choice)
		want := raw.eval(lbls)
		if got := sel.Evaluate(lbls); got != want {
			t.Fatalf("%q: canonical %q evaluates to %v on %v, raw tree to %v", s, c, got, lbls, want)
		}
		if got := sel2.Evaluate(lbls); got != want {
			t.Fatalf("%q: re-parsed %q evaluates to %v on %v, want %v", s, c, got, lbls, want)
		}
		only := map[string]string{}
		for _, k := range keys {
			if v, ok := lbls[k]; ok {
				only[k] = v
			}
		}
		if got := sel.Evaluate(only); got != want {
			t.Fatalf("%q: result depends on a label outside LabelKeys %q: %v vs %v on %v", s, keys, got, want, lbls)
		}
	})
}

// labelsFor builds a label set over the keys raw mentions, giving each key
// (as choice directs) no value or one of the literals in raw or a variant
// of one, so that comparisons are exercised both ways.
func labelsFor(raw *node, choice []byte) map[string]string {
	var keys, lits []string
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
			if n.op != opHas {
				lits = append(lits, n.value)
				lits = append(lits, n.values...)
			}
		}
	}
	walk(raw)
	cands := []string{""}
	for _, l := range lits {
		cands = append(cands, l, l+"x", "x"+l, l[:len(l)/2])
	}
	out := map[string]string{}
	for i, k := range keys {
		var b byte
		if len(choice) > 0 {
			b = choice[i%len(choice)]
		}
		if _, seen := out[k]; seen || b%4 == 0 { // the first value for a key wins; 0 means absent
			continue
		}
		out[k] = cands[int(b/4)%len(cands)]
	}
	return out
}

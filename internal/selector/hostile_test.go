package selector

import (
	"strings"
	"testing"
)

// Hostile selectors are refused with a short, clear error.
func TestHostileSelectors(t *testing.T) {
	for _, c := range []struct{ name, sel, want string }{
		{"too deep", strings.Repeat("(", maxDepth+1) + "has(a)" + strings.Repeat(")", maxDepth+1), "parentheses nested more than 100 deep"},
		{"too long", strings.Repeat("has(a) && ", MaxLen/10+1) + "all()", "selector is too long"},
		{"control character", "a == 'x' \x00 && b", "position 9"},
		{"unterminated", "a == '" + strings.Repeat("x", 1000), "position 5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.sel)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error %q does not contain %q", msg, c.want)
			}
			if len(msg) > 400 {
				t.Fatalf("error is %d bytes: %q", len(msg), msg)
			}
		})
	}
}

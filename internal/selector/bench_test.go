package selector

import "testing"

var benchLabels = map[string]string{
	"role":                        "web",
	"tier":                        "frontend",
	"env":                         "prod",
	"zone":                        "z11",
	"app.kubernetes.io/name":      "shop",
	"projectcalico.org/namespace": "default",
}

// BenchmarkEvaluate measures Evaluate on selectors typical of policies, from
// a single comparison to a compound one touching every operator kind.
func BenchmarkEvaluate(b *testing.B) {
	for _, bc := range []struct{ name, sel string }{
		{"eq", "role == 'web'"},
		{"has", "has(role)"},
		{"in-small", "tier in {'frontend', 'backend', 'cache'}"},
		{"in-large", "zone in {'z1','z2','z3','z4','z5','z6','z7','z8','z9','z10','z11','z12','z13','z14','z15','z16'}"},
		{"compound", "role == 'web' && tier in {'a','b','frontend'} && !has(quarantine) && " +
			"(env starts with 'pro' || env ends with 'dev' || app.kubernetes.io/name contains 'x') && " +
			"projectcalico.org/namespace != 'kube-system'"},
	} {
		sel := MustParse(bc.sel)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sel.Evaluate(benchLabels)
			}
		})
	}
}

// BenchmarkParse measures parsing and canonicalising a compound selector,
// which the calculation layer does once per policy change, not per packet.
func BenchmarkParse(b *testing.B) {
	const s = "role == 'web' && tier in {'a','b','frontend'} && !has(quarantine) && " +
		"(env starts with 'pro' || env ends with 'dev') && projectcalico.org/namespace != 'kube-system'"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

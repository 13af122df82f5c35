package api

import (
	"fmt"
	"strings"
	"testing"
)

// Hostile values are refused by `calico apply`'s decode path with an error
// that names the field and the reason. Each case is one manifest; want is a
// piece of the error.
func TestHostileValuesRefused(t *testing.T) {
	profile := func(name string) string {
		return fmt.Sprintf("apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: %q\n", name)
	}
	pool := func(spec string) string {
		return "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n" + spec
	}
	gnp := func(spec string) string {
		return "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p\nspec:\n" + spec
	}
	labels := func(n int, key func(int) string) string {
		var b strings.Builder
		b.WriteString("apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: big\n  labels:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "    %q: v\n", key(i))
		}
		return b.String()
	}
	deep := strings.Repeat("(", 200) + "a == 'b'" + strings.Repeat(")", 200)
	cases := []struct {
		name, manifest, want string
	}{
		{"name with slash", profile("a/b"), `metadata.name: invalid name "a/b"`},
		{"name with dot-dot path", profile("../../etc/passwd"), `metadata.name: invalid name "../../etc/passwd"`},
		{"name with NUL", profile("a\x00b"), `metadata.name: invalid name "a\x00b"`},
		{"name with newline", profile("a\nb"), `metadata.name: invalid name "a\nb"`},
		{"name with escape", profile("a\x1b[31mred"), `metadata.name: invalid name "a\x1b[31mred"`},
		{"name too long", profile(strings.Repeat("a", 300)), "metadata.name: name is too long (300 characters, at most 253)"},
		{"namespace with slash", "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: a/b\n",
			`metadata.namespace: invalid namespace "a/b"`},
		{"label key with control char", labels(1, func(int) string { return "k\x07" }), `metadata.labels: invalid key "k\a"`},
		{"label value with newline", "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: x\n  labels:\n    k: \"a\\nb\"\n",
			`metadata.labels.k: invalid label value "a\nb"`},
		{"huge label set", labels(20000, func(i int) string { return fmt.Sprintf("key-%06d-%s", i, strings.Repeat("x", 40)) }),
			"metadata.labels: labels are too large"},
		{"huge set of bad labels", labels(5000, func(i int) string { return fmt.Sprintf("bad key %d", i) }),
			"and 4980 more invalid labels"},
		{"deeply nested selector", gnp("  selector: \"" + deep + "\"\n"), "parentheses nested more than 100 deep"},
		{"huge selector", gnp("  selector: \"" + strings.Repeat("a == 'b' && ", 20000) + "all()\"\n"), "spec.selector: invalid selector: selector of 240005 bytes"},
		{"pool CIDR prefix out of range", pool("  cidr: 10.0.0.0/33\n"), "spec.cidr"},
		{"pool CIDR octet out of range", pool("  cidr: 300.0.0.0/8\n"), "spec.cidr"},
		{"pool IPv6 prefix out of range", pool("  cidr: fd00::/129\n"), "spec.cidr"},
		{"pool block size out of range", pool("  cidr: 10.0.0.0/16\n  blockSize: 33\n"), "spec.blockSize"},
		{"pool negative block size", pool("  cidr: 10.0.0.0/16\n  blockSize: -1\n"), "spec.blockSize"},
		{"rule net prefix out of range", gnp("  ingress:\n  - action: Allow\n    source:\n      nets: [\"10.0.0.0/40\"]\n"), "spec.ingress[0].source.nets[0]"},
		{"rule net garbage", gnp("  ingress:\n  - action: Allow\n    source:\n      nets: [\"10.0.0.0/8/8\"]\n"), "spec.ingress[0].source.nets[0]"},
		{"port out of range", gnp("  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [70000]\n"), "spec.ingress[0].destination.ports"},
		{"wrong type", pool("  cidr: [1, 2]\n"), "spec.cidr"},
		{"integer overflow", pool("  cidr: 10.0.0.0/16\n  blockSize: 99999999999999999999\n"), "spec.blockSize"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			docs, err := DecodeAndValidate([]byte(c.manifest))
			if err == nil {
				t.Fatalf("accepted: %v", docs)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				if len(msg) > 600 {
					msg = msg[:600] + "..."
				}
				t.Fatalf("error does not contain %q:\n%s", c.want, msg)
			}
			if len(msg) > 8<<10 {
				t.Fatalf("error is %d bytes long: a refusal must stay readable", len(msg))
			}
		})
	}
}

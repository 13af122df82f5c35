package trace

import (
	"net/netip"
	"strings"
	"testing"
)

// TestHTTPRulesFailClosed traces rules with an http match, which nothing
// here can check: an Allow rule with http admits nothing, while a Deny (or
// Pass) rule with http denies its whole L3/L4 match. Each case has a
// control that allows the packet: the rule without http (Allow, Pass), or
// the rule left out (Deny, as if http made it match nothing), so the test
// fails if http is ignored or the rule dropped.
func TestHTTPRulesFailClosed(t *testing.T) {
	web, apiW, db := netip.MustParseAddr("10.66.0.1"), netip.MustParseAddr("10.66.0.2"), netip.MustParseAddr("10.66.0.3")
	tcp := func(src, dst netip.Addr, port uint16) Packet {
		return Packet{Src: src, Dst: dst, Protocol: 6, DstPort: port}
	}
	for _, tt := range []struct {
		name   string
		policy string // a GlobalNetworkPolicy spec; HTTP is replaced
		pkt    Packet
		noRule bool // the control leaves the rule out instead of http
	}{
		// api is not in db's profile: only the Allow rule admits it.
		{"Allow with http matches nothing", `{order: 1, selector: "role == 'db'", ingress: [{action: Allow, protocol: TCP, source: {selector: "role == 'api'"}, destination: {ports: [5432]}HTTP}]}`, tcp(apiW, db, 5432), false},
		// db-from-web allows web to db:5432 later on.
		{"Deny with http denies its L3/L4 match", `{order: 1, selector: "role == 'db'", ingress: [{action: Deny, protocol: TCP, destination: {ports: [5432]}HTTP}]}`, tcp(web, db, 5432), true},
		// Without http, Pass hands api->web to the profile, which allows it.
		{"Pass with http denies its L3/L4 match", `{order: 1, selector: "role == 'web'", ingress: [{action: Pass, protocol: TCP, destination: {ports: [80]}HTTP}, {action: Deny}]}`, tcp(apiW, web, 80), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, withHTTP := range []bool{false, true} {
				h := ""
				if withHTTP {
					h = `, http: {methods: [GET], paths: [{prefix: /api}]}`
				}
				spec := strings.Replace(tt.policy, "HTTP", h, 1)
				if !withHTTP && tt.noRule {
					spec = `{order: 1, selector: "role == 'db'"}`
				}
				doc := "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: h28-http}\nspec: " + spec + "\n"
				r := New(decodeSnapshot(t, snapshotYAML, policyYAML, doc), nil).Trace(tt.pkt)
				wantAllowed := !withHTTP
				if r.Allowed != wantAllowed {
					var b strings.Builder
					r.WriteText(&b)
					t.Errorf("http=%v: allowed=%v, want %v:\n%s", withHTTP, r.Allowed, wantAllowed, b.String())
				}
			}
		})
	}
}

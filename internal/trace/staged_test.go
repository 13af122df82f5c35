package trace

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
)

// decodeWithStaged is decodeSnapshot that also collects staged policies.
func decodeWithStaged(t *testing.T, docs ...string) (*calc.Snapshot, *Staged) {
	t.Helper()
	s, st := &calc.Snapshot{}, &Staged{}
	for _, d := range docs {
		rs, err := api.Decode([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			api.Default(r)
			if api.PolicySpecOf(r) != nil {
				if err := api.Validate(r); err != nil {
					t.Fatal(err)
				}
			}
			switch o := r.(type) {
			case *api.Profile:
				s.Profiles = append(s.Profiles, *o)
			case *api.WorkloadEndpoint:
				s.WorkloadEndpoints = append(s.WorkloadEndpoints, *o)
			case *api.GlobalNetworkPolicy:
				s.GlobalNetworkPolicies = append(s.GlobalNetworkPolicies, *o)
			case *api.NetworkPolicy:
				s.NetworkPolicies = append(s.NetworkPolicies, *o)
			case *api.StagedGlobalNetworkPolicy:
				st.Global = append(st.Global, *o)
			case *api.StagedNetworkPolicy:
				st.Namespaced = append(st.Namespaced, *o)
			default:
				t.Fatalf("unexpected %T", o)
			}
		}
	}
	s.Node = "h1"
	return s, st
}

// replaceDBFromWeb stages a new version of policyYAML's db-from-web.
const replaceDBFromWeb = `
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: db-from-web}
spec:
  order: 100
  selector: role == 'db'
  ingress: [{action: Allow, protocol: TCP, source: {selector: "role == 'web'"}, destination: {ports: [8080]}}]
`

// TestStagedPolicies checks the staged evaluation next to the enforced
// one: a staged policy replaces the enforced one of its name, Delete
// removes it, Learn and Ignore take no part, and the enforced verdict and
// the calculation the host programs do not change.
func TestStagedPolicies(t *testing.T) {
	web, db, apiW := netip.MustParseAddr("10.66.0.1"), netip.MustParseAddr("10.66.0.3"), netip.MustParseAddr("10.66.0.2")
	tcp := func(src, dst netip.Addr, port uint16) Packet {
		return Packet{Src: src, Dst: dst, Protocol: 6, DstPort: port}
	}
	for _, tt := range []struct {
		name         string
		staged       string
		pkt          Packet
		wantAllowed  bool // enforced
		wantStaged   bool
		wantChanged  bool
		wantSummary  string // substring of Staged.Summary
		wantStepText string // substring of the text output ("" to skip)
	}{
		{"staged deny before the allow", `
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: lockdown}
spec:
  order: 1
  selector: role == 'db'
  ingress: [{action: Deny, protocol: TCP, destination: {ports: [5432]}}]
`, tcp(web, db, 5432), true, false, true, "staged: would deny on ingress of docker/db: gnp:staged:lockdown rule 0", "policy gnp:staged:lockdown rule 0"},
		{"staged replaces the enforced policy of its name", replaceDBFromWeb, tcp(web, db, 5432), true, false, true, "staged: would deny on ingress of docker/db: no policy allowed it", ""},
		{"replacement allows its new port", replaceDBFromWeb, tcp(web, db, 8080), false, true, true, "staged: would allow", "policy gnp:staged:db-from-web rule 0"},
		{"stagedAction Delete removes the enforced policy", `
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: no-admin-port}
spec: {stagedAction: Delete}
`, tcp(web, apiW, 9090), false, true, true, "staged: would allow", ""},
		{"staged namespaced policy", `
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: api-closed, namespace: docker}
spec:
  selector: role == 'api'
  egress: [{action: Deny}]
`, tcp(apiW, web, 8080), true, false, true, "staged: would deny on egress of docker/api: policy:docker/staged:api-closed rule 0", ""},
		{"Learn takes no part", `
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: learnt}
spec:
  stagedAction: Learn
  selector: all()
  ingress: [{action: Deny}]
`, tcp(web, db, 5432), true, true, false, "staged: would allow", ""},
		{"staged policy for other endpoints: same verdict", `
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: elsewhere}
spec:
  selector: role == 'nobody'
  ingress: [{action: Deny}]
`, tcp(web, db, 5432), true, true, false, "as enforced", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, st := decodeWithStaged(t, snapshotYAML, policyYAML, tt.staged)
			plain := New(s, nil)
			tr := NewWithStaged(s, nil, st)
			r := tr.Trace(tt.pkt)
			var b strings.Builder
			r.WriteText(&b)
			if r.Allowed != tt.wantAllowed {
				t.Errorf("enforced allowed=%v, want %v:\n%s", r.Allowed, tt.wantAllowed, b.String())
			}
			if r.Staged == nil {
				t.Fatalf("no staged verdict:\n%s", b.String())
			}
			if r.Staged.Allowed != tt.wantStaged || r.Staged.Changed != tt.wantChanged {
				t.Errorf("staged allowed=%v changed=%v, want %v %v:\n%s", r.Staged.Allowed, r.Staged.Changed, tt.wantStaged, tt.wantChanged, b.String())
			}
			if !strings.Contains(r.Staged.Summary, tt.wantSummary) || !strings.Contains(b.String(), r.Staged.Summary) {
				t.Errorf("staged summary %q does not say %q:\n%s", r.Staged.Summary, tt.wantSummary, b.String())
			}
			if tt.wantStepText != "" && !strings.Contains(b.String(), tt.wantStepText) {
				t.Errorf("text does not show %q:\n%s", tt.wantStepText, b.String())
			}
			// The enforced side is what the tracer without staged policies
			// says, and the host programs exactly what it did before.
			want := plain.Trace(tt.pkt)
			if want.Staged != nil {
				t.Errorf("staged verdict without staged policies: %+v", want.Staged)
			}
			r.Staged = nil
			if !reflect.DeepEqual(r, want) {
				t.Errorf("enforced trace changed by staged policies:\n got %+v\nwant %+v", r, want)
			}
			if !reflect.DeepEqual(tr.Desired("h1"), calc.Compute(s)) {
				t.Error("staged policies changed the calculated dataplane")
			}
		})
	}
}

// TestStagedMatrix shows a staged change in the matrix cells.
func TestStagedMatrix(t *testing.T) {
	s, st := decodeWithStaged(t, snapshotYAML, `
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: web-closed}
spec:
  selector: role == 'web'
  ingress: [{action: Deny}]
`)
	m := NewWithStaged(s, nil, st).Matrix("", 6, 80)
	var b strings.Builder
	if err := m.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	// api -> web is allowed by profile front now and denied staged.
	var cell *Cell
	for i := range m.Cells {
		for j := range m.Cells[i] {
			if c := &m.Cells[i][j]; c.From == "docker/api" && c.To == "docker/web" {
				cell = c
			}
		}
	}
	if cell == nil || !cell.Allowed || cell.StagedAllowed == nil || *cell.StagedAllowed {
		t.Fatalf("api->web cell %+v, want allowed now and denied staged:\n%s", cell, b.String())
	}
	if !strings.Contains(b.String(), "ok>DENY") {
		t.Errorf("table does not show the staged change:\n%s", b.String())
	}
	if m2 := New(s, nil).Matrix("", 6, 80); m2.Cells[0][1].StagedAllowed != nil {
		t.Error("staged verdict without staged policies")
	}
}

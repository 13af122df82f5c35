package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
)

// TestPolicyTraceAndMatrix reads real datastore state: a trace names the
// deciding policy rule and the matrix shows the same verdicts.
func TestPolicyTraceAndMatrix(t *testing.T) {
	eps := etcdtest.Start(t)
	st := etcdtest.Store(t, eps)
	for _, w := range []*api.WorkloadEndpoint{
		{ObjectMeta: api.ObjectMeta{Name: "n1-libnetwork-libnetwork-aa", Labels: map[string]string{"docker.container": "web", "role": "web"}},
			Spec: api.WorkloadEndpointSpec{Orchestrator: "libnetwork", Node: "n1", IPNetworks: []string{"10.0.0.1/32"}, InterfaceName: "caliaa", Profiles: []string{"net1"}}},
		{ObjectMeta: api.ObjectMeta{Name: "n2-libnetwork-libnetwork-bb", Labels: map[string]string{"docker.container": "db", "role": "db"}},
			Spec: api.WorkloadEndpointSpec{Orchestrator: "libnetwork", Node: "n2", IPNetworks: []string{"10.0.1.1/32"}, InterfaceName: "calibb", Profiles: []string{"net1"}}},
	} {
		api.Default(w)
		b, _ := json.Marshal(w)
		if _, err := st.Create(context.Background(), datastore.ResourceKey("workloadendpoints", w.Namespace, w.Name), b); err != nil {
			t.Fatal(err)
		}
	}
	manifest := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(manifest, []byte(`
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: net1}
spec:
  ingress: [{action: Allow, source: {selector: "has(role)"}}]
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db}
spec:
  selector: role == 'db'
  ingress: [{action: Deny, protocol: TCP, destination: {ports: [22]}}, {action: Allow}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runRoot(t, "apply", "-f", manifest, "--etcd-endpoints", eps[0]); err != nil {
		t.Fatal(err)
	}
	out, _, err := runRoot(t, "policy", "trace", "--src", "web", "--dst", "db", "--port", "22", "--etcd-endpoints", eps[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "verdict: denied on ingress of db: gnp:db rule 0") || !strings.Contains(out, "egress of web") {
		t.Fatalf("trace:\n%s", out)
	}
	out, _, err = runRoot(t, "policy", "trace", "--src", "10.0.0.1", "--dst", "db", "-o", "json", "--etcd-endpoints", eps[0])
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Allowed bool
		Ingress struct{ Chain string }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || !r.Allowed || r.Ingress.Chain != "gnp:db" {
		t.Fatalf("json trace %v:\n%s", err, out)
	}
	out, _, err = runRoot(t, "policy", "matrix", "--port", "22", "--etcd-endpoints", eps[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Fields(lines[1])[0] != "web" || strings.Fields(lines[1])[2] != "DENY" || strings.Fields(lines[2])[1] != "ok" {
		t.Fatalf("matrix:\n%s", out)
	}
	// A staged Delete of the policy: the enforced verdict stays, the
	// staged one shows what removing it would do.
	if err := os.WriteFile(manifest, []byte(`
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: db}
spec: {stagedAction: Delete}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runRoot(t, "apply", "-f", manifest, "--etcd-endpoints", eps[0]); err != nil {
		t.Fatal(err)
	}
	out, _, err = runRoot(t, "policy", "trace", "--src", "web", "--dst", "db", "--port", "22", "--etcd-endpoints", eps[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "verdict: denied on ingress of db: gnp:db rule 0") || !strings.Contains(out, "staged: would allow: egress of web by profile:net1 rule 0; ingress of db by profile:net1 rule 0") {
		t.Fatalf("trace with a staged delete:\n%s", out)
	}
	out, _, err = runRoot(t, "policy", "matrix", "--port", "22", "--etcd-endpoints", eps[0])
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || strings.Fields(lines[1])[2] != "DENY>ok" {
		t.Fatalf("matrix with a staged delete:\n%s", out)
	}
	for _, bad := range [][]string{
		{"policy", "trace", "--src", "web"},
		{"policy", "trace", "--src", "web", "--dst", "nosuch"},
		{"policy", "trace", "--src", "web", "--dst", "db", "--protocol", "icmp", "--port", "1"},
	} {
		if _, _, err := runRoot(t, append(bad, "--etcd-endpoints", eps[0])...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

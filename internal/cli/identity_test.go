package cli

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/testutil"
)

// A value written with etcdctl under one policy's key but naming another
// policy is refused by `calico get`, with the key named; deleting the key
// still works, so the operator can remove it.
func TestGetRefusesBodyThatDisagreesWithKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts etcd; skipped with -short")
	}
	testutil.RequireCmd(t, "/usr/bin/etcdctl")
	c := resCLI{t: t, bin: testutil.CalicoBin(t), endpoints: strings.Join(etcdtest.Start(t), ",")}
	// Calico's key for policy "harmless" of the default tier.
	key := datastore.ResourceKey("globalnetworkpolicies", "", "default.harmless")
	cmd := exec.Command("/usr/bin/etcdctl", "--endpoints", c.endpoints, "put", key,
		`{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"default.allow-all"},"spec":{"selector":"all()"}}`)
	cmd.Env = []string{"ETCDCTL_API=3", "PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("etcdctl put: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"get", "globalnetworkpolicy"}, {"get", "globalnetworkpolicy", "harmless"}} {
		stderr := c.fail(args...)
		if !strings.Contains(stderr, key) || !strings.Contains(stderr, `named "default.allow-all"`) {
			t.Errorf("calico %v: %s", args, stderr)
		}
	}
	c.fail("get", "globalnetworkpolicy", "allow-all") // not found: no such key
	c.ok("delete", "globalnetworkpolicy", "harmless")
	if out := c.ok("get", "globalnetworkpolicy"); strings.Contains(out, "allow-all") || strings.Contains(out, "harmless") {
		t.Errorf("after delete: %s", out)
	}
}

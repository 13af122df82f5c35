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

// calico container: argument checks and list against a real etcd (add and
// remove with a real dockerd are in internal/plugin/docker's lab tests).

func TestContainerArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"container", "add", "x", "--ip", "banana"}, `--ip "banana" is not an IP address`},
		{[]string{"container", "add", "x", "--labels", "novalue"}, "want key=value"},
		{[]string{"container", "add", "x", "--labels", "k=bad value"}, "invalid label value"},
		{[]string{"container", "add"}, "accepts 1 arg"},
		{[]string{"container", "list", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"container", "list", "--node", ""}, "no node name"},
	} {
		_, _, err := runRoot(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestContainerList(t *testing.T) {
	eps := etcdtest.Start(t)
	st := etcdtest.Store(t, eps)
	put := func(w *api.WorkloadEndpoint) {
		t.Helper()
		api.Default(w)
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Create(context.Background(), datastore.ResourceKey("workloadendpoints", w.Namespace, w.Name), b); err != nil {
			t.Fatal(err)
		}
	}
	put(&api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Name: "n1-docker-0123456789ab-eth0", Labels: map[string]string{"role": "legacy"}},
		Spec: api.WorkloadEndpointSpec{Orchestrator: "docker", Node: "n1", Workload: "legacy", ContainerID: strings.Repeat("0123456789ab", 5),
			IPNetworks: []string{"192.168.0.9/32"}, InterfaceName: "cali0123456789a", Profiles: []string{"frontend"}}})
	put(&api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Name: "n1-libnetwork-libnetwork-ab"},
		Spec: api.WorkloadEndpointSpec{Orchestrator: "libnetwork", Node: "n1", Workload: "web1", IPNetworks: []string{"192.168.0.2/32"}}})
	put(&api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Name: "n2-libnetwork-libnetwork-cd"},
		Spec: api.WorkloadEndpointSpec{Orchestrator: "libnetwork", Node: "n2", Workload: "elsewhere"}})
	out, _, err := runRoot(t, "container", "list", "--node", "n1", "--etcd-endpoints", eps[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "legacy ") || !strings.Contains(lines[1], "container add") ||
		!strings.Contains(lines[1], "role=legacy") || !strings.HasPrefix(lines[2], "web1 ") || !strings.Contains(lines[2], "network plugin") {
		t.Fatalf("list:\n%s", out)
	}
	out, _, err = runRoot(t, "container", "list", "--node", "n1", "-o", "json", "--etcd-endpoints", eps[0])
	if err != nil {
		t.Fatal(err)
	}
	var got []api.WorkloadEndpoint
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 2 {
		t.Fatalf("json list: %v\n%s", err, out)
	}
	out, _, err = runRoot(t, "container", "list", "--node", "n3", "-o", "json", "--etcd-endpoints", eps[0])
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty list: %q %v", out, err)
	}
}

func TestContainerNodeName(t *testing.T) {
	t.Setenv("NODENAME", "from-env")
	if got := containerNodeName(); got != "from-env" {
		t.Fatalf("containerNodeName = %q", got)
	}
	t.Setenv("NODENAME", "")
	want := defaultNodeName()
	if b, err := os.ReadFile(filepath.Clean(nodenameFile)); err == nil && strings.TrimSpace(string(b)) != "" {
		want = strings.TrimSpace(string(b))
	}
	if got := containerNodeName(); got != want {
		t.Fatalf("containerNodeName = %q, want %q", got, want)
	}
}

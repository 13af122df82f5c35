package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/plugin/docker"
)

// node remove --datastore deletes the Node, gives up its block affinities
// (addresses still in use stay assigned) and forgets its network records;
// another node's records stay; a second run succeeds.
func TestRemoveFromDatastore(t *testing.T) {
	ep, st := ipamEnv(t, map[string][2]any{"p4": {"10.65.0.0/24", 28}}, "gone", "stays")
	ctx := context.Background()
	a := ipam.New(st)
	for _, n := range []string{"gone", "stays"} {
		if _, err := a.AutoAssign(ctx, ipam.AssignArgs{Handle: "h-" + n, Node: n, Num4: 1, Attrs: ipam.Attrs{Kind: "manual"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Update(ctx, docker.NetworksPrefix+n+"/net1", []byte(`{"name":"frontend"}`), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Update(ctx, docker.SwarmPrefix+n+"/10.65.0.1", []byte(`{"handle":"docker-swarm.1"}`), 0); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &datastore.Config{Endpoints: strings.Split(strings.TrimPrefix(ep, "--etcd-endpoints="), ",")}
	var out bytes.Buffer
	if err := removeFromDatastore(ctx, &out, cfg, "gone"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "deleted Node gone") || !strings.Contains(out.String(), "released 1 IPAM block affinities") {
		t.Errorf("output:\n%s", out.String())
	}
	if _, err := st.Get(ctx, datastore.ResourceKey("nodes", "", "gone")); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("Node gone still there: %v", err)
	}
	if _, err := st.Get(ctx, datastore.ResourceKey("nodes", "", "stays")); err != nil {
		t.Errorf("Node stays: %v", err)
	}
	for node, want := range map[string]int{"gone": 0, "stays": 1} {
		kvs, _, err := st.List(ctx, ipam.AffinitiesPrefix(node, 4))
		if err != nil || len(kvs) != want {
			t.Errorf("affinities of %s: %d (%v), want %d", node, len(kvs), err, want)
		}
		kvs, _, err = st.List(ctx, docker.NetworksPrefix+node+"/")
		if err != nil || len(kvs) != want {
			t.Errorf("network records of %s: %d (%v), want %d", node, len(kvs), err, want)
		}
		kvs, _, err = st.List(ctx, docker.SwarmPrefix+node+"/")
		if err != nil || len(kvs) != want {
			t.Errorf("swarm records of %s: %d (%v), want %d", node, len(kvs), err, want)
		}
	}
	// The address gone's container held is still assigned (ipam check repairs leaks).
	if addrs, err := a.HandleAddrs(ctx, "h-gone"); err != nil || len(addrs) != 1 {
		t.Errorf("addresses of h-gone: %v %v", addrs, err)
	}
	out.Reset()
	if err := removeFromDatastore(ctx, &out, cfg, "gone"); err != nil || !strings.Contains(out.String(), "no Node gone") {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
}

package docker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// The reconcile drops this node's memory of a swarm address whose task's
// endpoint never came or is gone (a host restarted: dockerd dropped the
// task without its release reaching the node). Kept, it would make this
// node (the manager here) take the allocator's release for its own local
// one, and the address would leak.
func TestReconcileStaleSwarmRecords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pool := e.requestPool(GlobalAddressSpace, false)
	alloc := func() string {
		out := e.ok("/IpamDriver.RequestAddress", map[string]any{"PoolID": pool, "Options": map[string]string{optSerialAlloc: "true"}})
		return strings.TrimSuffix(out["Address"].(string), "/32")
	}
	takeUp := func(ip, mac string) {
		e.ok("/IpamDriver.RequestAddress", map[string]any{"PoolID": pool, "Address": ip, "Options": map[string]string{optMAC: mac}})
	}
	stale, live := alloc(), alloc()
	takeUp(stale, macA) // its task's endpoint never comes
	takeUp(live, macB)
	e.networkCreated(testNetID, "front")
	e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epB,
		"Interface": map[string]any{"Address": live + "/32", "MacAddress": macB}})

	res, err := e.srv.Reconcile(ctx)
	if err != nil || len(res.SwarmRecords) != 0 {
		t.Fatalf("within the grace period: %+v %v", res, err)
	}
	e.clock.Add(DefaultGracePeriod + time.Second)
	res, err = e.srv.Reconcile(ctx)
	if err != nil || !slices.Equal(res.SwarmRecords, []string{stale}) {
		t.Fatalf("after the grace period: %+v %v (want only %s dropped)", res, err, stale)
	}
	if _, err := e.st.Get(ctx, swarmKey(testNode, netip.MustParseAddr(live))); err != nil {
		t.Fatalf("the live task's record was dropped: %v", err)
	}
	// The allocator's release now frees the stale address.
	e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": pool, "Address": stale})
	if n := e.inUse(); n != 1 {
		t.Fatalf("%d addresses in use after the allocator released the stale task's, want 1", n)
	}
	// A record that is not understood is never dropped.
	if _, err := e.st.Update(ctx, SwarmPrefix+testNode+"/10.65.9.9", []byte("??"), 0); err != nil {
		t.Fatal(err)
	}
	if res, err := e.srv.Reconcile(ctx); err != nil || len(res.SwarmRecords) != 0 {
		t.Fatalf("unknown record: %+v %v", res, err)
	}
}

func TestVIPNetworks(t *testing.T) {
	ours := func(id string) bool { return id == "netcalico000000000000000a" }
	resolve := func(target string) string {
		if target == "front" {
			return "netcalico000000000000000a"
		}
		return ""
	}
	svc := func(mode swarm.ResolutionMode, targets ...string) swarm.Service {
		var s swarm.Service
		if mode != "-" {
			s.Spec.EndpointSpec = &swarm.EndpointSpec{Mode: mode}
		}
		for _, tg := range targets {
			s.Spec.TaskTemplate.Networks = append(s.Spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: tg})
		}
		return s
	}
	for _, c := range []struct {
		name string
		svc  swarm.Service
		want []string
	}{
		{"vip by id", svc(swarm.ResolutionModeVIP, "netcalico000000000000000a"), []string{"netcalico000000000000000a"}},
		{"default mode is vip", svc("-", "front"), []string{"front"}},
		{"empty mode is vip", svc("", "front", "other"), []string{"front"}},
		{"dnsrr", svc(swarm.ResolutionModeDNSRR, "front"), nil},
		{"not ours", svc(swarm.ResolutionModeVIP, "other"), nil},
	} {
		if got := vipNetworks(c.svc, ours, resolve); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// fakeDocker answers the two calls the reconcile makes: the containers
// (one exited, one running with its endpoint) and the networks.
func fakeDocker(t *testing.T, containers string) *client.Client {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.47")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/containers/json"):
			_, _ = w.Write([]byte(containers))
		case strings.HasSuffix(r.URL.Path, "/networks"):
			_, _ = w.Write([]byte(`[{"Id":"` + testNetID + `","Name":"front"}]`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(hs.Close)
	dc, err := client.New(client.WithHost("tcp://" + strings.TrimPrefix(hs.URL, "http://")))
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// An endpoint whose container Docker reports as exited, or no longer
// lists (it existed: the endpoint was labelled from it), is gone at once,
// without waiting for the grace period (a host reboot: dockerd stopped the
// container while the node was down); a running container's endpoint that
// Docker does not list yet is given the grace period.
func TestReconcileStoppedContainerAtOnce(t *testing.T) {
	const exited, running = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000001", "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000002"
	e := newEnv(t, func(c *Config) {
		c.Docker = fakeDocker(t, `[{"Id":"`+exited+`","State":"exited","NetworkSettings":{"Networks":{}}},`+
			`{"Id":"`+running+`","State":"running","NetworkSettings":{"Networks":{}}}]`)
	})
	ctx := context.Background()
	e.networkCreated(testNetID, "front")
	const epC, removed = "cccccccccccc1111111111112222222222223333333333334444444444445555", "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000003"
	for _, c := range []struct{ ep, mac, ctr string }{{epA, macA, exited}, {epB, macB, running}, {epC, "02:42:0a:00:00:03", removed}} {
		a := e.requestAddress(PoolIDv4, "", c.mac)
		e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": c.ep,
			"Interface": map[string]any{"Address": a, "MacAddress": c.mac}})
		if err := updateWEP(ctx, e.st, libnetworkWEPName(testNode, c.ep), func(w *api.WorkloadEndpoint) bool {
			w.Spec.ContainerID = c.ctr
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.srv.Reconcile(ctx)
	slices.Sort(res.Endpoints)
	if err != nil || !res.DockerChecked || len(res.Endpoints) != 2 || !strings.Contains(res.Endpoints[0], epA[:12]) || !strings.Contains(res.Endpoints[1], epC[:12]) {
		t.Fatalf("reconcile: %+v %v (want the exited and the removed container's endpoints removed)", res, err)
	}
	e.wep(epB)
	if n := e.inUse(); n != 1 {
		t.Fatalf("%d addresses in use, want 1", n)
	}
}

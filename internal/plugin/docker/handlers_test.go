package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/moby/moby/api/types/events"
)

// Handler tests: the real handlers over httptest, an in-memory datastore
// and a real IPAM allocator on it. Join/Leave (veths) are in veth_test.go.

const (
	testNode  = "node1"
	testNetID = "4e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c"
	epA       = "aaaaaaaaaaaa1111111111112222222222223333333333334444444444445555"
	epB       = "bbbbbbbbbbbb1111111111112222222222223333333333334444444444445555"
	macA      = "02:42:0a:00:00:01"
	macB      = "02:42:0a:00:00:02"
)

// fakeClock is a settable clock shared by the server and its allocator.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	st    datastore.Store
	alloc *ipam.Allocator
	srv   *Server
	http  *httptest.Server
	clock *fakeClock
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func putPool(t *testing.T, st datastore.Store, name, cidr string, mutate ...func(*api.IPPool)) {
	t.Helper()
	p := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.IPPoolSpec{CIDR: cidr}}
	for _, m := range mutate {
		m(p)
	}
	b, err := encode(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(context.Background(), datastore.ResourceKey(plIPPool, "", name), b, 0); err != nil {
		t.Fatal(err)
	}
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	st := datastore.NewMemory()
	t.Cleanup(func() { st.Close() })
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	alloc := ipam.New(st, ipam.WithClock(clock.Now), ipam.WithLogger(quietLogger()))
	putPool(t, st, "pool4", "10.65.0.0/16")
	putPool(t, st, "pool6", "fd00:65::/64")
	cfg := Config{Store: st, IPAM: alloc, Node: testNode, PluginDir: t.TempDir(), MTU: 1440, Logger: quietLogger()}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.nowFunc = clock.Now
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, st: st, alloc: alloc, srv: srv, http: hs, clock: clock}
}

// call posts body (a string is sent as is, anything else as JSON) and
// returns the status and the decoded reply.
func (e *env) call(path string, body any) (int, map[string]any) {
	e.t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case nil:
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			e.t.Fatal(err)
		}
	}
	resp, err := http.Post(e.http.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != contentType {
		e.t.Errorf("%s: content type %q", path, ct)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatalf("%s: reply is not JSON: %v", path, err)
	}
	return resp.StatusCode, out
}

// ok calls and fails the test unless the reply is 200.
func (e *env) ok(path string, body any) map[string]any {
	e.t.Helper()
	code, out := e.call(path, body)
	if code != http.StatusOK {
		e.t.Fatalf("%s: status %d: %v", path, code, out)
	}
	return out
}

// fails calls and checks the status and that Err contains want.
func (e *env) fails(path string, body any, status int, want string) {
	e.t.Helper()
	code, out := e.call(path, body)
	if code != status {
		e.t.Fatalf("%s: status %d, want %d: %v", path, code, status, out)
	}
	msg, _ := out["Err"].(string)
	if !strings.Contains(msg, want) {
		e.t.Fatalf("%s: error %q does not contain %q", path, msg, want)
	}
	if strings.Contains(msg, "\n") {
		e.t.Fatalf("%s: error is not one line: %q", path, msg)
	}
}

// networkCreated feeds the network's "create" event, as Docker sends it
// right after CreateNetwork.
func (e *env) networkCreated(id, name string) {
	e.t.Helper()
	e.ok("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": id,
		"IPv4Data": []map[string]any{{"AddressSpace": LocalAddressSpace, "Pool": "0.0.0.0/0", "Gateway": "169.254.1.1/32"}}})
	e.srv.handleEvent(context.Background(), events.Message{Type: events.NetworkEventType, Action: events.ActionCreate,
		Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name, "type": NetworkDriverName}}})
}

func (e *env) requestAddress(pool, addr, mac string) string {
	e.t.Helper()
	opts := map[string]string{}
	if mac != "" {
		opts[optMAC] = mac
	}
	out := e.ok("/IpamDriver.RequestAddress", map[string]any{"PoolID": pool, "Address": addr, "Options": opts})
	return out["Address"].(string)
}

func (e *env) inUse() int {
	e.t.Helper()
	u, err := e.alloc.Usage(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, p := range u.Pools {
		n += p.InUse
	}
	return n
}

func (e *env) wep(endpointID string) *api.WorkloadEndpoint {
	e.t.Helper()
	w, _, err := getWEP(context.Background(), e.st, libnetworkWEPName(testNode, endpointID))
	if err != nil {
		e.t.Fatalf("endpoint %s: %v", endpointID[:12], err)
	}
	return w
}

func TestActivateAndCapabilities(t *testing.T) {
	e := newEnv(t)
	out := e.ok("/Plugin.Activate", nil)
	if got := out["Implements"]; len(got.([]any)) != 2 {
		t.Fatalf("Implements = %v", got)
	}
	out = e.ok("/NetworkDriver.GetCapabilities", nil)
	if out["Scope"] != "local" || out["ConnectivityScope"] != "global" {
		t.Fatalf("network capabilities = %v", out)
	}
	out = e.ok("/IpamDriver.GetCapabilities", nil)
	if out["RequiresMACAddress"] != true {
		t.Fatalf("ipam capabilities = %v", out)
	}
	out = e.ok("/IpamDriver.GetDefaultAddressSpaces", nil)
	if out["LocalDefaultAddressSpace"] != LocalAddressSpace || out["GlobalDefaultAddressSpace"] != GlobalAddressSpace {
		t.Fatalf("address spaces = %v", out)
	}
	for _, m := range []string{"DiscoverNew", "DiscoverDelete", "ProgramExternalConnectivity", "RevokeExternalConnectivity", "EndpointOperInfo"} {
		e.ok("/NetworkDriver."+m, map[string]any{"NetworkID": testNetID, "EndpointID": epA})
	}
	// AllocateNetwork is a swarm manager's (the managed plugin forwards it).
	e.fails("/NetworkDriver.AllocateNetwork", "{}", http.StatusBadRequest, "is not a Docker ID")
	e.fails("/NetworkDriver.Bogus", "{}", http.StatusNotFound, "is not a method of the calico plugin")

	// Each socket's handler activates only its own driver.
	for _, c := range []struct {
		h    http.Handler
		want string
	}{{e.srv.NetworkHandler(), "NetworkDriver"}, {e.srv.IPAMHandler(), "IpamDriver"}} {
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/Plugin.Activate", nil))
		if !strings.Contains(rec.Body.String(), `["`+c.want+`"]`) {
			t.Errorf("activate = %s, want only %s", rec.Body.String(), c.want)
		}
	}
}

func TestRequestPool(t *testing.T) {
	e := newEnv(t)
	putPool(t, e.st, "off", "10.70.0.0/16", func(p *api.IPPool) { p.Spec.Disabled = true })
	for _, c := range []struct {
		name   string
		req    map[string]any
		poolID string
		pool   string
		gw     string
	}{
		{"any v4", map[string]any{"AddressSpace": LocalAddressSpace}, PoolIDv4, "0.0.0.0/0", "169.254.1.1/32"},
		{"any v6", map[string]any{"AddressSpace": LocalAddressSpace, "V6": true}, PoolIDv6, "::/0", "fe80::1/128"},
		{"subnet v4", map[string]any{"Pool": "10.65.0.0/16"}, "10.65.0.0/16", "10.65.0.0/16", "169.254.1.1/32"},
		{"subnet v6", map[string]any{"Pool": "fd00:65::/64", "V6": true}, "fd00:65::/64", "fd00:65::/64", "fe80::1/128"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := e.ok("/IpamDriver.RequestPool", c.req)
			data, _ := out["Data"].(map[string]any)
			id, _ := out["PoolID"].(string)
			if c.pool == "0.0.0.0/0" || c.pool == "::/0" {
				// A token of its own, for -o pool (poolopt.go).
				id, _, _ = strings.Cut(id, swarmPoolSep)
			}
			if id != c.poolID || out["Pool"] != c.pool || data[dataGateway] != c.gw {
				t.Fatalf("reply %v", out)
			}
		})
	}
	for _, c := range []struct {
		name string
		req  any
		want string
	}{
		{"not a pool", map[string]any{"Pool": "10.66.0.0/16"}, "10.66.0.0/16 is not the CIDR of an IPPool; the IPv4 pools are: 10.65.0.0/16 (pool4)"},
		{"inside a pool", map[string]any{"Pool": "10.65.1.0/24"}, "is not the CIDR of an IPPool"},
		{"host bits", map[string]any{"Pool": "10.65.0.1/16"}, "is not the CIDR of an IPPool"},
		{"disabled pool", map[string]any{"Pool": "10.70.0.0/16"}, "which is disabled"},
		{"wrong family", map[string]any{"Pool": "10.65.0.0/16", "V6": true}, "is not an IPv6 subnet"},
		{"no v6 pool matches", map[string]any{"Pool": "fd00:99::/64", "V6": true}, "the IPv6 pools are: fd00:65::/64 (pool6)"},
		{"not a CIDR", map[string]any{"Pool": "banana"}, "is not a CIDR"},
		{"sub pool", map[string]any{"Pool": "10.65.0.0/16", "SubPool": "10.65.1.0/24"}, "--ip-range is not supported"},
		{"options", map[string]any{"Options": map[string]string{"foo": "bar"}}, "takes no --ipam-opt options"},
		{"malformed", `{"Pool": `, "not valid JSON"},
		{"wrong types", `{"Pool": 7}`, "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) { e.fails("/IpamDriver.RequestPool", c.req, http.StatusBadRequest, c.want) })
	}
	e.ok("/IpamDriver.ReleasePool", map[string]any{"PoolID": PoolIDv4})
}

func TestRequestAddress(t *testing.T) {
	e := newEnv(t)
	a := e.requestAddress(PoolIDv4, "", macA)
	ip := netip.MustParsePrefix(a)
	if ip.Bits() != 32 || !netip.MustParsePrefix("10.65.0.0/16").Contains(ip.Addr()) {
		t.Fatalf("address %s", a)
	}
	// A retry for the same endpoint (same MAC) is the same address.
	if again := e.requestAddress(PoolIDv4, "", macA); again != a {
		t.Fatalf("retry gave %s, first %s", again, a)
	}
	// Docker's replay of a known address under the same MAC is accepted too.
	if again := e.requestAddress(PoolIDv4, ip.Addr().String(), macA); again != a {
		t.Fatalf("replay gave %s", again)
	}
	b := e.requestAddress(PoolIDv4, "", macB)
	if b == a {
		t.Fatalf("two endpoints got %s", a)
	}
	// The same endpoint's IPv6 address goes under the same handle.
	a6 := e.requestAddress(PoolIDv6, "", macA)
	if p := netip.MustParsePrefix(a6); p.Bits() != 128 || !p.Addr().Is6() {
		t.Fatalf("v6 address %s", a6)
	}
	if n := e.inUse(); n != 3 {
		t.Fatalf("%d addresses in use, want 3", n)
	}
	// --ip: honoured, and refused when another endpoint has it.
	if got := e.requestAddress(PoolIDv4, "10.65.9.9", "02:42:0a:00:00:09"); got != "10.65.9.9/32" {
		t.Fatalf("--ip gave %s", got)
	}
	e.fails("/IpamDriver.RequestAddress", map[string]any{"PoolID": PoolIDv4, "Address": "10.65.9.9",
		"Options": map[string]string{optMAC: "02:42:0a:00:00:0a"}}, http.StatusBadRequest, "10.65.9.9 is already in use")
	e.fails("/IpamDriver.RequestAddress", map[string]any{"PoolID": PoolIDv4, "Address": "10.99.0.1",
		"Options": map[string]string{optMAC: "02:42:0a:00:00:0a"}}, http.StatusInternalServerError, "not in any IPPool")
	// A network with --subnet draws from that pool only.
	putPool(t, e.st, "other", "10.80.0.0/16")
	if got := e.requestAddress("10.80.0.0/16", "", "02:42:0a:00:00:0b"); !strings.HasPrefix(got, "10.80.") {
		t.Fatalf("pool-restricted request gave %s", got)
	}
	before := e.inUse()
	// Gateway requests never use pool addresses.
	for _, c := range []struct{ pool, addr, want string }{
		{PoolIDv4, "", "169.254.1.1/32"},
		{PoolIDv6, "", "fe80::1/128"},
		{"10.65.0.0/16", "10.65.0.1", "10.65.0.1/32"},
	} {
		out := e.ok("/IpamDriver.RequestAddress", map[string]any{"PoolID": c.pool, "Address": c.addr,
			"Options": map[string]string{optAddressType: addrTypeGateway}})
		if out["Address"] != c.want {
			t.Fatalf("gateway %v: got %v", c, out)
		}
	}
	if n := e.inUse(); n != before {
		t.Fatalf("gateway requests changed the addresses in use: %d -> %d", before, n)
	}
	for _, c := range []struct {
		name string
		req  any
		want string
	}{
		{"unknown pool", map[string]any{"PoolID": "bogus"}, "unknown pool ID"},
		{"bad address", map[string]any{"PoolID": PoolIDv4, "Address": "x"}, "is not an IP address"},
		{"wrong family", map[string]any{"PoolID": PoolIDv6, "Address": "10.65.0.9"}, "is not an IPv6 address"},
		{"malformed", `[1,2`, "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) { e.fails("/IpamDriver.RequestAddress", c.req, http.StatusBadRequest, c.want) })
	}
}

func TestRequestAddressErrors(t *testing.T) {
	e := newEnv(t)
	putPool(t, e.st, "pool4", "10.65.0.0/16", func(p *api.IPPool) { p.Spec.Disabled = true })
	e.fails("/IpamDriver.RequestAddress", map[string]any{"PoolID": PoolIDv4, "Options": map[string]string{optMAC: macA}},
		http.StatusInternalServerError, "no enabled IPv4 IPPool applies to node node1")
	putPool(t, e.st, "tiny", "10.66.0.0/30", func(p *api.IPPool) { p.Spec.BlockSize = 30 })
	for i := 0; i < 4; i++ {
		e.requestAddress(PoolIDv4, "", "02:42:0a:00:01:0"+string(rune('0'+i)))
	}
	e.fails("/IpamDriver.RequestAddress", map[string]any{"PoolID": PoolIDv4, "Options": map[string]string{optMAC: macB}},
		http.StatusInternalServerError, "no free IPv4 address is left")
}

func TestReleaseAddress(t *testing.T) {
	e := newEnv(t)
	a := e.requestAddress(PoolIDv4, "", macA)
	ip := netip.MustParsePrefix(a).Addr()
	e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": PoolIDv4, "Address": ip.String()})
	if n := e.inUse(); n != 0 {
		t.Fatalf("%d addresses in use after release", n)
	}
	// Repeated, and of addresses nobody holds or the gateway: success.
	e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": PoolIDv4, "Address": ip.String()})
	e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": PoolIDv4, "Address": "169.254.1.1"})
	e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": PoolIDv4, "Address": "10.99.0.1"})
	// A late release never frees an address another owner holds now.
	ctx := context.Background()
	if err := e.alloc.AssignIP(ctx, ip, "manual-hold", testNode, ipam.Attrs{Kind: ipam.KindManual}); err != nil {
		t.Fatal(err)
	}
	e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": PoolIDv4, "Address": ip.String()})
	if n := e.inUse(); n != 1 {
		t.Fatalf("a manual reservation was released by Docker's late release")
	}
	e.fails("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": PoolIDv4, "Address": "nope"}, http.StatusBadRequest, "is not an IP address")
	e.fails("/IpamDriver.ReleaseAddress", `{`, http.StatusBadRequest, "not valid JSON")
}

func TestCreateNetwork(t *testing.T) {
	e := newEnv(t)
	v4 := []map[string]any{{"AddressSpace": LocalAddressSpace, "Pool": "0.0.0.0/0", "Gateway": "169.254.1.1/32"}}
	e.ok("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": testNetID, "IPv4Data": v4,
		"Options": map[string]any{optGeneric: map[string]any{"mtu": "1400"}, optEnableIPv6: false}})
	if got := e.srv.networks[testNetID].mtu; got != 1400 {
		t.Fatalf("mtu %d", got)
	}
	for _, c := range []struct {
		name string
		req  any
		want string
	}{
		{"unknown option", map[string]any{"NetworkID": testNetID, "IPv4Data": v4, "Options": map[string]any{optGeneric: map[string]any{"foo": "bar"}}}, "unknown network option -o foo"},
		{"bad mtu", map[string]any{"NetworkID": testNetID, "IPv4Data": v4, "Options": map[string]any{optGeneric: map[string]any{"mtu": "9x"}}}, "-o mtu=9x is not valid"},
		{"tiny mtu", map[string]any{"NetworkID": testNetID, "IPv4Data": v4, "Options": map[string]any{optGeneric: map[string]any{"mtu": "10"}}}, "is not valid"},
		{"internal", map[string]any{"NetworkID": testNetID, "IPv4Data": v4, "Options": map[string]any{optInternal: true}}, "--internal is not supported"},
		{"other ipam", map[string]any{"NetworkID": testNetID, "IPv4Data": []map[string]any{{"AddressSpace": "LocalDefault", "Pool": "172.18.0.0/16"}}}, "--ipam-driver calico-ipam"},
		{"no pools", map[string]any{"NetworkID": testNetID}, "no address pool"},
		{"bad id", map[string]any{"NetworkID": "../x", "IPv4Data": v4}, "is not a Docker ID"},
		{"malformed", `{"NetworkID": [}`, "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) { e.fails("/NetworkDriver.CreateNetwork", c.req, http.StatusBadRequest, c.want) })
	}
	e.ok("/NetworkDriver.DeleteNetwork", map[string]any{"NetworkID": testNetID})
}

func TestEndpointLifecycle(t *testing.T) {
	e := newEnv(t)
	e.networkCreated(testNetID, "frontend")
	// The network's "create" event made the profile.
	kv, err := e.st.Get(context.Background(), datastore.ResourceKey(plProfile, "", "frontend"))
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	var prof api.Profile
	_ = json.Unmarshal(kv.Value, &prof)
	if prof.Spec.LabelsToApply[LabelNetwork] != "frontend" || len(prof.Spec.Ingress) != 1 ||
		prof.Spec.Ingress[0].Source.Selector != "docker.network == 'frontend'" || len(prof.Spec.Egress) != 1 {
		t.Fatalf("profile %+v", prof.Spec)
	}

	a := e.requestAddress(PoolIDv4, "", macA)
	a6 := e.requestAddress(PoolIDv6, "", macA)
	req := map[string]any{"NetworkID": testNetID, "EndpointID": epA,
		"Interface": map[string]any{"Address": a, "AddressIPv6": a6, "MacAddress": macA}}
	out := e.ok("/NetworkDriver.CreateEndpoint", req)
	if _, set := out["Interface"]; set {
		t.Fatalf("CreateEndpoint echoed the interface Docker set: %v", out)
	}
	w := e.wep(epA)
	if w.Namespace != "default" || w.Spec.Orchestrator != "libnetwork" || w.Spec.Node != testNode || w.Spec.Endpoint != epA ||
		w.Spec.InterfaceName != "cali"+epA[:11] || w.Spec.MAC != macA || len(w.Spec.Profiles) != 1 || w.Spec.Profiles[0] != "frontend" ||
		len(w.Spec.IPNetworks) != 2 || w.Spec.IPNetworks[0] != a || w.Spec.IPNetworks[1] != a6 {
		t.Fatalf("endpoint %+v", w)
	}
	handle := w.Annotations[HandleAnnotation]
	if handle != "libnetwork.node1.02420a000001" {
		t.Fatalf("handle %q", handle)
	}
	info, err := e.alloc.ShowIP(context.Background(), netip.MustParsePrefix(a).Addr())
	if err != nil || info.Handle != handle || info.Attrs.Endpoint != "default/"+w.Name {
		t.Fatalf("ipam attrs %+v %v", info, err)
	}
	// A retried CreateEndpoint is success and changes nothing.
	e.ok("/NetworkDriver.CreateEndpoint", req)
	if again := e.wep(epA); again.ResourceVersion != w.ResourceVersion {
		t.Fatalf("retry rewrote the endpoint")
	}
	// Another endpoint claiming the same addresses (a shared MAC) is refused.
	e.fails("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epB,
		"Interface": map[string]any{"Address": a, "MacAddress": macA}}, http.StatusBadRequest, "already belongs to endpoint")

	e.ok("/NetworkDriver.DeleteEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epA})
	e.ok("/NetworkDriver.DeleteEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epA})
	if _, _, err := getWEP(context.Background(), e.st, libnetworkWEPName(testNode, epA)); err == nil {
		t.Fatal("endpoint still there after DeleteEndpoint")
	}
	for _, ad := range []string{a, a6} {
		e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": PoolIDv4, "Address": strings.Split(ad, "/")[0]})
	}
	if n := e.inUse(); n != 0 {
		t.Fatalf("%d addresses still in use", n)
	}
	if _, err := e.st.Get(context.Background(), ipam.HandleKey(handle)); err == nil {
		t.Fatalf("handle %s still recorded", handle)
	}
}

func TestCreateEndpointErrors(t *testing.T) {
	e := newEnv(t)
	e.networkCreated(testNetID, "frontend")
	a := e.requestAddress(PoolIDv4, "", macA)
	for _, c := range []struct {
		name   string
		req    any
		status int
		want   string
	}{
		{"no address", map[string]any{"NetworkID": testNetID, "EndpointID": epA, "Interface": map[string]any{}}, 400, "has no address"},
		{"no interface", map[string]any{"NetworkID": testNetID, "EndpointID": epA}, 400, "has no address"},
		{"bad address", map[string]any{"NetworkID": testNetID, "EndpointID": epA, "Interface": map[string]any{"Address": "x"}}, 400, "is not an IP address"},
		{"bad mac", map[string]any{"NetworkID": testNetID, "EndpointID": epA, "Interface": map[string]any{"Address": a, "MacAddress": "zz"}}, 400, "is not a MAC address"},
		{"bad endpoint id", map[string]any{"NetworkID": testNetID, "EndpointID": "x/y", "Interface": map[string]any{"Address": a}}, 400, "is not a Docker ID"},
		{"unassigned address", map[string]any{"NetworkID": testNetID, "EndpointID": epA, "Interface": map[string]any{"Address": "10.65.77.1/32", "MacAddress": macA}}, 400, "was not assigned by calico-ipam"},
		{"unknown network", map[string]any{"NetworkID": strings.Repeat("c", 64), "EndpointID": epA, "Interface": map[string]any{"Address": a, "MacAddress": macA}}, 500, "no Docker client configured"},
		{"malformed", `{"EndpointID": 5}`, 400, "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) { e.fails("/NetworkDriver.CreateEndpoint", c.req, c.status, c.want) })
	}
	// A network whose name cannot name a profile: refused with the fix.
	other := strings.Repeat("d", 64)
	e.networkCreated(other, "Bad_Name")
	e.fails("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": other, "EndpointID": epA,
		"Interface": map[string]any{"Address": a, "MacAddress": macA}}, 400, `docker network name "Bad_Name" cannot name a Calico profile`)
	// Without a MAC from Docker, the driver picks one and returns it.
	b := e.requestAddress(PoolIDv4, "", "")
	out := e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epB,
		"Interface": map[string]any{"Address": b}})
	iface, _ := out["Interface"].(map[string]any)
	if mac, _ := iface["MacAddress"].(string); mac == "" || e.wep(epB).Spec.MAC != mac {
		t.Fatalf("reply %v, endpoint MAC %q", out, e.wep(epB).Spec.MAC)
	}
}

// Malformed requests never take the server down: every route answers 400,
// and the server serves the next request.
func TestMalformedJSONEverywhere(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/NetworkDriver.CreateNetwork", "/NetworkDriver.DeleteNetwork", "/NetworkDriver.CreateEndpoint",
		"/NetworkDriver.DeleteEndpoint", "/NetworkDriver.Join", "/NetworkDriver.Leave", "/NetworkDriver.EndpointOperInfo",
		"/IpamDriver.RequestPool", "/IpamDriver.ReleasePool", "/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress"} {
		e.fails(p, `{"broken`, http.StatusBadRequest, "not valid JSON")
		e.fails(p, strings.Repeat("[", 10000), http.StatusBadRequest, "not valid JSON")
	}
	resp, err := http.Get(e.http.URL + "/IpamDriver.RequestPool")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: status %d", resp.StatusCode)
	}
	e.ok("/IpamDriver.GetCapabilities", nil)
}

func TestReleaseOfUndeletedEndpoint(t *testing.T) {
	// Docker's start-up cleanup can release an endpoint's address without
	// calling DeleteEndpoint; the endpoint goes with its address.
	e := newEnv(t)
	e.networkCreated(testNetID, "frontend")
	a := e.requestAddress(PoolIDv4, "", macA)
	e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epA,
		"Interface": map[string]any{"Address": a, "MacAddress": macA}})
	e.ok("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": PoolIDv4, "Address": strings.TrimSuffix(a, "/32")})
	if _, _, err := getWEP(context.Background(), e.st, libnetworkWEPName(testNode, epA)); err == nil {
		t.Fatal("endpoint kept after its address was released")
	}
}

func TestReconcilePendingHandles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A container died between RequestAddress and CreateEndpoint.
	e.requestAddress(PoolIDv4, "", macA)
	// Another one is fully set up.
	e.networkCreated(testNetID, "frontend")
	b := e.requestAddress(PoolIDv4, "", macB)
	e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epB,
		"Interface": map[string]any{"Address": b, "MacAddress": macB}})
	// Another node's handle is never touched.
	if _, err := e.alloc.AutoAssign(ctx, ipam.AssignArgs{Handle: "libnetwork.node2.02420a0000ff", Node: "node2", Num4: 1,
		Attrs: ipam.Attrs{Kind: ipam.KindWorkload}}); err != nil {
		t.Fatal(err)
	}
	res, err := e.srv.Reconcile(ctx)
	if err != nil || len(res.Handles) != 0 || len(res.Endpoints) != 0 {
		t.Fatalf("within the grace period: %+v %v", res, err)
	}
	e.clock.Add(DefaultGracePeriod + time.Second)
	res, err = e.srv.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Handles) != 1 || res.Handles[0] != "libnetwork.node1.02420a000001" || len(res.Endpoints) != 0 || res.DockerChecked {
		t.Fatalf("after the grace period: %+v", res)
	}
	if n := e.inUse(); n != 2 {
		t.Fatalf("%d addresses in use, want 2 (the endpoint's and node2's)", n)
	}
	e.wep(epB) // never removed without asking Docker
}

func TestOwnHandle(t *testing.T) {
	for _, c := range []struct {
		h    string
		want bool
	}{
		{"libnetwork.n1.02420a000001", true},
		{"container.n1." + strings.Repeat("a", 64), true},
		{"libnetwork.n1.r0011223344556677", true},
		{"libnetwork.n1.b.02420a000001", false}, // node "n1.b"
		{"libnetwork.n1.", false},
		{"libnetwork.n2.02420a000001", false},
		{"k8s-pod-network.x", false},
	} {
		if got := ownHandle("n1", c.h); got != c.want {
			t.Errorf("ownHandle(n1, %q) = %v", c.h, got)
		}
	}
	if got := WEPName("my-host", "libnetwork", "libnetwork", "ab"); got != "my--host-libnetwork-libnetwork-ab" {
		t.Errorf("WEPName = %q", got)
	}
}

func TestLabels(t *testing.T) {
	e := newEnv(t)
	e.networkCreated(testNetID, "frontend")
	a := e.requestAddress(PoolIDv4, "", macA)
	e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epA,
		"Interface": map[string]any{"Address": a, "MacAddress": macA}})
	cid := strings.Repeat("e", 64)
	err := e.srv.applyLabels(context.Background(), cid, "/web_1", map[string]string{
		"role": "web", "com.example/tier": "front", "bad key!": "x", "path": "/not/valid", LabelNetwork: "spoofed"}, []string{epA})
	if err != nil {
		t.Fatal(err)
	}
	w := e.wep(epA)
	want := map[string]string{"role": "web", "com.example/tier": "front", LabelContainer: "web_1",
		api.LabelNamespace: Namespace, api.LabelOrchestrator: OrchestratorLibnetwork} // the last two: Calico's, on every endpoint
	if len(w.Labels) != len(want) {
		t.Fatalf("labels %v, want %v", w.Labels, want)
	}
	for k, v := range want {
		if w.Labels[k] != v {
			t.Fatalf("labels %v, want %v", w.Labels, want)
		}
	}
	if w.Spec.Workload != "web_1" || w.Spec.ContainerID != cid {
		t.Fatalf("workload %q container %q", w.Spec.Workload, w.Spec.ContainerID)
	}
	rv := w.ResourceVersion
	if err := e.srv.applyLabels(context.Background(), cid, "/web_1", map[string]string{"role": "web", "com.example/tier": "front"}, []string{epA}); err != nil {
		t.Fatal(err)
	}
	if e.wep(epA).ResourceVersion != rv {
		t.Fatal("unchanged labels were rewritten")
	}
}

func TestNetworkNameSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	e.networkCreated(testNetID, "frontend")
	// A restarted server (no Docker to ask) knows the network from the datastore.
	srv2, err := NewServer(e.srv.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ni, err := srv2.network(context.Background(), testNetID)
	if err != nil || ni.name != "frontend" {
		t.Fatalf("after restart: %+v %v", ni, err)
	}
	e.ok("/NetworkDriver.DeleteNetwork", map[string]any{"NetworkID": testNetID})
	srv3, _ := NewServer(e.srv.cfg)
	if _, err := srv3.network(context.Background(), testNetID); err == nil {
		t.Fatal("a deleted network is still known")
	}
}

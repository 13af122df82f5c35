package docker

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
)

const (
	netID2 = "5e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c"
	netID3 = "6e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c3a0b7d2f4e1c"
)

// requestPool asks for a whole-space pool and returns its ID.
func (e *env) requestPool(space string, v6 bool) string {
	e.t.Helper()
	out := e.ok("/IpamDriver.RequestPool", map[string]any{"AddressSpace": space, "V6": v6})
	id, _ := out["PoolID"].(string)
	return id
}

func wholeV4() []map[string]any {
	return []map[string]any{{"AddressSpace": LocalAddressSpace, "Pool": "0.0.0.0/0", "Gateway": "169.254.1.1/32"}}
}

// -o pool=NAME on a local network: RequestPool, then CreateNetwork binds
// the pool ID to the pool, and every address comes from it.
func TestPoolOptionLocal(t *testing.T) {
	e := newEnv(t)
	putPool(t, e.st, "blue", "10.80.0.0/16")
	putPool(t, e.st, "off", "10.81.0.0/16", func(p *api.IPPool) { p.Spec.Disabled = true })
	ctx := context.Background()

	id := e.requestPool(LocalAddressSpace, false)
	e.ok("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": testNetID, "IPv4Data": wholeV4(),
		"Options": map[string]any{optGeneric: map[string]any{optPool: "blue"}}})
	blue := netip.MustParsePrefix("10.80.0.0/16")
	for i := range 3 {
		a := netip.MustParsePrefix(e.requestAddress(id, "", "02:42:0a:00:00:1"+string(rune('0'+i))))
		if !blue.Contains(a.Addr()) {
			t.Fatalf("address %s is not from pool blue", a)
		}
	}
	e.fails("/IpamDriver.RequestAddress", map[string]any{"PoolID": id, "Address": "10.65.0.7", "Options": map[string]string{optMAC: "02:42:0a:00:00:21"}},
		http.StatusBadRequest, `address 10.65.0.7 is not in IPPool "blue" (10.80.0.0/16), chosen for the network with -o pool`)
	if got := e.requestAddress(id, "10.80.3.3", "02:42:0a:00:00:22"); got != "10.80.3.3/32" {
		t.Fatalf("--ip in the pool: %s", got)
	}
	// The binding survives a restart of the plugin (a new server, same store).
	srv2, err := NewServer(e.srv.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok, err := srv2.chosenPool(ctx, strings.SplitN(id, swarmPoolSep, 2)[1]); err != nil || !ok || p.Name != "blue" {
		t.Fatalf("after restart: %v %v %v", p, ok, err)
	}
	// A network without the option, created after, gets every pool.
	id2 := e.requestPool(LocalAddressSpace, false)
	e.ok("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": netID2, "IPv4Data": wholeV4()})
	if _, ok, err := e.srv.chosenPool(ctx, strings.SplitN(id2, swarmPoolSep, 2)[1]); ok || err != nil {
		t.Fatalf("a network without -o pool was bound (%v)", err)
	}
	if got := e.requestAddress(id2, "10.65.4.4", "02:42:0a:00:00:31"); got != "10.65.4.4/32" {
		t.Fatalf("unbound network, --ip in pool4: %s", got)
	}
	// The release forgets the binding.
	e.ok("/IpamDriver.ReleasePool", map[string]any{"PoolID": id})
	if _, err := e.st.Get(ctx, poolChoiceKey(strings.SplitN(id, swarmPoolSep, 2)[1])); err == nil {
		t.Fatal("binding left after ReleasePool")
	}

	for _, c := range []struct {
		name string
		pool func() // what precedes CreateNetwork
		opts map[string]any
		v4   []map[string]any
		v6   []map[string]any
		want string
	}{
		{"unknown", func() { e.requestPool(LocalAddressSpace, false) }, map[string]any{optPool: "nope"}, wholeV4(), nil,
			`-o pool=nope: there is no IPPool named "nope"; the enabled pools are: blue, pool4, pool6`},
		{"disabled", func() { e.requestPool(LocalAddressSpace, false) }, map[string]any{optPool: "off"}, wholeV4(), nil, `IPPool "off" is disabled`},
		{"not a name", func() { e.requestPool(LocalAddressSpace, false) }, map[string]any{optPool: "a/b"}, wholeV4(), nil, `-o pool="a/b" is not an IPPool name`},
		{"with subnet", func() { e.requestPool(LocalAddressSpace, false) }, map[string]any{optPool: "blue"},
			[]map[string]any{{"AddressSpace": LocalAddressSpace, "Pool": "10.65.0.0/16"}}, nil, "cannot be combined with --subnet 10.65.0.0/16"},
		{"v6 pool, no v6", func() { e.requestPool(LocalAddressSpace, false) }, map[string]any{optPool: "pool6"}, wholeV4(), nil, "has no IPv6 addresses (add --ipv6)"},
		{"two at once", func() { e.requestPool(LocalAddressSpace, false); e.requestPool(LocalAddressSpace, false) },
			map[string]any{optPool: "blue"}, wholeV4(), nil, "2 networks are being created at the same time"},
		{"no pool asked", func() {}, map[string]any{optPool: "blue"}, wholeV4(), nil, "was not requested from calico-ipam"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.pool()
			e.fails("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": netID3, "IPv4Data": c.v4, "IPv6Data": c.v6,
				"Options": map[string]any{optGeneric: c.opts}}, http.StatusBadRequest, c.want)
			// Nothing bound, nothing pending left behind for the next one.
			e.clock.Add(2 * pendingPoolTTL)
			kvs, _, err := e.st.List(ctx, PoolChoicePrefix)
			if err != nil || len(kvs) != 0 {
				t.Fatalf("bindings: %d %v", len(kvs), err)
			}
		})
	}

	// IPv6: the v6 token binds to a v6 pool, the v4 one stays unbound.
	putPool(t, e.st, "blue6", "fd00:80::/64")
	id4 := e.requestPool(LocalAddressSpace, false)
	id6 := e.requestPool(LocalAddressSpace, true)
	e.ok("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": netID3, "IPv4Data": wholeV4(),
		"IPv6Data": []map[string]any{{"AddressSpace": LocalAddressSpace, "Pool": "::/0"}},
		"Options":  map[string]any{optGeneric: map[string]any{optPool: "blue6"}}})
	if a := netip.MustParsePrefix(e.requestAddress(id6, "", "02:42:0a:00:00:41")); !netip.MustParsePrefix("fd00:80::/64").Contains(a.Addr()) {
		t.Fatalf("v6 address %s not from blue6", a)
	}
	if _, ok, _ := e.srv.chosenPool(ctx, strings.SplitN(id4, swarmPoolSep, 2)[1]); ok {
		t.Fatal("the v4 pool ID was bound to a v6 pool")
	}
}

// A swarm manager: RequestPool in the global space, AllocateNetwork with
// the stack's driver_opts binds it; the swarm allocator's addresses come
// from the pool, and the options go back for every node's CreateNetwork.
func TestPoolOptionSwarm(t *testing.T) {
	e := newEnv(t)
	putPool(t, e.st, "blue", "10.80.0.0/16")
	id := e.requestPool(GlobalAddressSpace, false)
	out := e.ok("/NetworkDriver.AllocateNetwork", map[string]any{"NetworkID": "0123456789abcdefghijklmno",
		"Options":  map[string]string{optPool: "blue", "mtu": "1400"},
		"IPv4Data": []map[string]any{{"Pool": "0.0.0.0/0", "Gateway": "169.254.1.1/0"}}})
	opts, _ := out["Options"].(map[string]any)
	if opts[optPool] != "blue" || opts["mtu"] != "1400" || len(opts) != 2 {
		t.Fatalf("AllocateNetwork options: %v", out)
	}
	o := e.ok("/IpamDriver.RequestAddress", map[string]any{"PoolID": id, "Options": map[string]string{optSerialAlloc: "true"}})
	if a := netip.MustParsePrefix(o["Address"].(string)); !netip.MustParsePrefix("10.80.0.0/16").Contains(a.Addr()) {
		t.Fatalf("swarm task address %s not from blue", a)
	}
	e.fails("/NetworkDriver.AllocateNetwork", map[string]any{"NetworkID": "0123456789abcdefghijklmnp", "Options": map[string]string{"color": "red"}},
		http.StatusBadRequest, "unknown network option -o color")
	e.requestPool(GlobalAddressSpace, false)
	e.fails("/NetworkDriver.AllocateNetwork", map[string]any{"NetworkID": "0123456789abcdefghijklmnq", "Options": map[string]string{optPool: "green"}},
		http.StatusBadRequest, `there is no IPPool named "green"`)
	e.ok("/NetworkDriver.FreeNetwork", map[string]any{"NetworkID": "0123456789abcdefghijklmno"})
	// Removing the network frees its addresses and the binding.
	e.ok("/IpamDriver.ReleasePool", map[string]any{"PoolID": id})
	if n := e.inUse(); n != 0 {
		t.Fatalf("%d addresses in use after the pool's release", n)
	}
}

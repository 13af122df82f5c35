package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
)

// etcdStore starts a fresh embedded etcd and returns a client of it, and a
// function that opens further clients (one per simulated process).
func etcdStore(t testing.TB) (datastore.Store, func() datastore.Store) {
	t.Helper()
	eps := etcdtest.Start(t)
	open := func() datastore.Store {
		t.Helper()
		st, err := datastore.NewEtcd(context.Background(), datastore.Config{Endpoints: eps})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	return open(), open
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func putJSON(t testing.TB, st datastore.Store, key string, v any) {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(context.Background(), key, raw, 0); err != nil {
		t.Fatal(err)
	}
}

func putPool(t testing.TB, st datastore.Store, name, cidr string, blockSize int, mod ...func(*api.IPPool)) {
	t.Helper()
	p := api.IPPool{TypeMeta: api.TypeMeta{Kind: api.KindIPPool, APIVersion: api.APIVersion}, ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.IPPoolSpec{CIDR: cidr, BlockSize: blockSize}}
	for _, m := range mod {
		m(&p)
	}
	putJSON(t, st, datastore.ResourceKey("ippools", "", name), p)
}

func putNode(t testing.TB, st datastore.Store, name string, labels map[string]string) {
	t.Helper()
	putJSON(t, st, datastore.ResourceKey("nodes", "", name), api.Node{TypeMeta: api.TypeMeta{Kind: api.KindNode, APIVersion: api.APIVersion},
		ObjectMeta: api.ObjectMeta{Name: name, Labels: labels}})
}

func putWEP(t testing.TB, st datastore.Store, ns, name, node string, ips ...netip.Addr) {
	t.Helper()
	putWEPContainer(t, st, ns, name, node, "", ips...)
}

func putWEPContainer(t testing.TB, st datastore.Store, ns, name, node, container string, ips ...netip.Addr) {
	t.Helper()
	w := api.WorkloadEndpoint{TypeMeta: api.TypeMeta{Kind: api.KindWorkloadEndpoint, APIVersion: api.APIVersion},
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: ns}, Spec: api.WorkloadEndpointSpec{Node: node, ContainerID: container}}
	for _, ip := range ips {
		w.Spec.IPNetworks = append(w.Spec.IPNetworks, netip.PrefixFrom(ip, ip.BitLen()).String())
	}
	putJSON(t, st, datastore.ResourceKey("workloadendpoints", ns, name), w)
}

func manual(note string) Attrs { return Attrs{Kind: KindManual, Note: note} }

func mustAssign(t testing.TB, a *Allocator, args AssignArgs) AssignResult {
	t.Helper()
	if args.Attrs.Kind == "" {
		args.Attrs = manual("test")
	}
	r, err := a.AutoAssign(ctxT(t), args)
	if err != nil {
		t.Fatalf("AutoAssign %+v: %v", args, err)
	}
	return r
}

func readBlock(t testing.TB, st datastore.Store, cidr string) *Block {
	t.Helper()
	kv, err := st.Get(context.Background(), BlockKey(netip.MustParsePrefix(cidr)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeBlock(kv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(t testing.TB, st datastore.Store, key string) bool {
	t.Helper()
	_, err := st.Get(context.Background(), key)
	if errors.Is(err, datastore.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// stores runs f against embedded etcd and against the in-memory store.
func stores(t *testing.T, f func(t *testing.T, st datastore.Store)) {
	t.Run("etcd", func(t *testing.T) {
		st, _ := etcdStore(t)
		f(t, st)
	})
	t.Run("memory", func(t *testing.T) { f(t, datastore.NewMemory()) })
}

func TestAssignReleaseReassignIdempotent(t *testing.T) {
	stores(t, func(t *testing.T, st datastore.Store) {
		ctx := ctxT(t)
		putPool(t, st, "p", "10.65.0.0/24", 26)
		a := New(st)
		r := mustAssign(t, a, AssignArgs{Handle: "h1", Node: "n1", Num4: 3})
		if !slices.Equal(r.IPv4, addrs("10.65.0.0", "10.65.0.1", "10.65.0.2")) || r.Existing {
			t.Fatalf("first assign %+v", r)
		}
		if !exists(t, st, "/calico/ipam/v2/host/n1/ipv4/block/10.65.0.0-26") {
			t.Fatal("no affinity key")
		}
		var h Handle
		kv, err := st.Get(ctx, "/calico/ipam/v2/handle/h1")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(kv.Value, &h); err != nil || h.Block["10.65.0.0/26"] != 3 {
			t.Fatalf("handle %s %v", kv.Value, err)
		}
		// Same handle again: the same addresses, nothing new.
		r2 := mustAssign(t, a, AssignArgs{Handle: "h1", Node: "n1", Num4: 3})
		if !slices.Equal(r2.IPv4, r.IPv4) || !r2.Existing {
			t.Fatalf("repeat %+v", r2)
		}
		if b := readBlock(t, st, "10.65.0.0/26"); b.InUse() != 3 {
			t.Fatalf("repeat assigned more: %d in use", b.InUse())
		}
		rel, err := a.ReleaseByHandle(ctx, "h1")
		if err != nil || len(rel) != 3 {
			t.Fatalf("release %v %v", rel, err)
		}
		if exists(t, st, HandleKey("h1")) {
			t.Fatal("handle not deleted")
		}
		if rel, err := a.ReleaseByHandle(ctx, "h1"); err != nil || len(rel) != 0 {
			t.Fatalf("release of an unknown handle: %v %v", rel, err)
		}
		// Released addresses go to the back of the free list.
		r3 := mustAssign(t, a, AssignArgs{Handle: "h2", Node: "n1", Num4: 1})
		if !slices.Equal(r3.IPv4, addrs("10.65.0.3")) {
			t.Fatalf("reassign %v", r3.IPv4)
		}
		na, err := a.ReleaseIPs(ctx, netip.MustParseAddr("10.65.0.3"), netip.MustParseAddr("10.65.0.9"), netip.MustParseAddr("192.0.2.1"))
		if err != nil || !slices.Equal(na, addrs("192.0.2.1", "10.65.0.9")) {
			t.Fatalf("ReleaseIPs notAssigned %v %v", na, err)
		}
		if exists(t, st, HandleKey("h2")) {
			t.Fatal("handle h2 not deleted after its last address was released by IP")
		}
		// The block stays with the node, empty, until the grace period.
		if b := readBlock(t, st, "10.65.0.0/26"); !b.Empty() || b.Host() != "n1" {
			t.Fatalf("block after release: host %q in use %d", b.Host(), b.InUse())
		}
		if s := a.Stats(); s.Calls != 3 || s.Assigned != 4 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestSameHandleRace: a request repeated at the same moment (Docker retries)
// gets one address, the same for every caller.
func TestSameHandleRace(t *testing.T) {
	stores(t, func(t *testing.T, st datastore.Store) {
		putPool(t, st, "p", "10.65.0.0/24", 26)
		a := New(st)
		const n = 8
		got := make([]AssignResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = a.AutoAssign(context.Background(), AssignArgs{Handle: "same", Node: "n1", Num4: 1, Attrs: manual("")})
			}()
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if !slices.Equal(got[i].IPv4, got[0].IPv4) || len(got[i].IPv4) != 1 {
				t.Fatalf("caller %d got %v, caller 0 %v", i, got[i].IPv4, got[0].IPv4)
			}
			if !got[i].Existing {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d callers say they assigned", fresh)
		}
		if b := readBlock(t, st, "10.65.0.0/26"); b.InUse() != 1 {
			t.Fatalf("%d addresses in use", b.InUse())
		}
	})
}

func TestAssignIP(t *testing.T) {
	stores(t, func(t *testing.T, st datastore.Store) {
		ctx := ctxT(t)
		putPool(t, st, "p", "10.65.0.0/24", 26)
		putPool(t, st, "off", "10.66.0.0/24", 26, func(p *api.IPPool) { p.Spec.Disabled = true })
		a := New(st)
		ip := netip.MustParseAddr("10.65.0.77")
		if err := a.AssignIP(ctx, ip, "r1", "n2", manual("printer")); err != nil {
			t.Fatal(err)
		}
		if b := readBlock(t, st, "10.65.0.64/26"); b.Host() != "n2" || b.InUse() != 1 {
			t.Fatalf("block not claimed for n2: %q %d", b.Host(), b.InUse())
		}
		if err := a.AssignIP(ctx, ip, "r1", "n2", manual("printer")); err != nil {
			t.Fatalf("same handle again: %v", err)
		}
		err := a.AssignIP(ctx, ip, "r2", "n1", manual(""))
		var inUse *InUseError
		if !errors.As(err, &inUse) || inUse.Handle != "r1" || !strings.Contains(err.Error(), `handle "r1" (manual reservation "printer" on node n2)`) {
			t.Fatalf("in use: %v", err)
		}
		if err := a.AssignIP(ctx, netip.MustParseAddr("10.99.0.1"), "r3", "n1", manual("")); err == nil || !strings.Contains(err.Error(), "not in any IPPool") {
			t.Fatalf("outside pools: %v", err)
		}
		if err := a.AssignIP(ctx, netip.MustParseAddr("10.66.0.1"), "r3", "n1", manual("")); err == nil || !strings.Contains(err.Error(), "disabled") {
			t.Fatalf("disabled pool: %v", err)
		}
		// Another node's block: the address is assigned there (borrowed).
		if err := a.AssignIP(ctx, netip.MustParseAddr("10.65.0.78"), "r4", "n1", manual("")); err != nil {
			t.Fatal(err)
		}
		if br := readBlock(t, st, "10.65.0.64/26").Borrowed(); len(br) != 1 || br[0].Handle != "r4" {
			t.Fatalf("borrowed %+v", br)
		}
		info, err := a.ShowIP(ctx, ip)
		if err != nil || !info.Assigned || info.Handle != "r1" || info.Node != "n2" {
			t.Fatalf("ShowIP %+v %v", info, err)
		}
		info, _ = a.ShowIP(ctx, netip.MustParseAddr("10.65.0.5"))
		if info.Assigned || !strings.Contains(info.String(), "is not assigned (pool p)") {
			t.Fatalf("ShowIP free: %s", info)
		}
	})
}

func TestBorrowExhaustStrict(t *testing.T) {
	stores(t, func(t *testing.T, st datastore.Store) {
		ctx := ctxT(t)
		// 16 addresses in 4 blocks of 4.
		putPool(t, st, "small", "10.65.0.0/28", 30)
		a := New(st)
		r := mustAssign(t, a, AssignArgs{Handle: "a1", Node: "n1", Num4: 10}) // 3 blocks, 2 left in the third
		if len(r.IPv4) != 10 {
			t.Fatal(r)
		}
		mustAssign(t, a, AssignArgs{Handle: "b1", Node: "n2", Num4: 4}) // the last free block
		if b := readBlock(t, st, "10.65.0.12/30"); b.Host() != "n2" || b.InUse() != 4 {
			t.Fatalf("n2 block %q %d", b.Host(), b.InUse())
		}
		// No free block left: n2 borrows from n1's third block.
		r = mustAssign(t, a, AssignArgs{Handle: "b2", Node: "n2", Num4: 2})
		if !slices.Equal(r.IPv4, addrs("10.65.0.10", "10.65.0.11")) {
			t.Fatalf("borrowed %v", r.IPv4)
		}
		b := readBlock(t, st, "10.65.0.8/30")
		if b.Host() != "n1" || len(b.Borrowed()) != 2 {
			t.Fatalf("lender block: host %q borrowed %+v", b.Host(), b.Borrowed())
		}
		// Exhausted: a clear error, and nothing partial stays behind.
		_, err := a.AutoAssign(ctx, AssignArgs{Handle: "c1", Node: "n2", Num4: 1, Attrs: manual("")})
		if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "no free addresses in pool 10.65.0.0/28 (16 addresses, 16 in use)") {
			t.Fatalf("exhausted: %v", err)
		}
		if _, err := a.ReleaseByHandle(ctx, "b2"); err != nil {
			t.Fatal(err)
		}
		_, err = a.AutoAssign(ctx, AssignArgs{Handle: "c2", Node: "n2", Num4: 3, Attrs: manual("")})
		if !errors.Is(err, ErrExhausted) {
			t.Fatalf("3 of 2 free: %v", err)
		}
		if exists(t, st, HandleKey("c2")) || readBlock(t, st, "10.65.0.8/30").InUse() != 2 {
			t.Fatal("a failed assignment left addresses behind")
		}
		// Strict affinity: no borrowing.
		if err := a.SetConfig(ctx, Config{StrictAffinity: true, AutoAllocateBlocks: true}); err != nil {
			t.Fatal(err)
		}
		_, err = a.AutoAssign(ctx, AssignArgs{Handle: "c3", Node: "n2", Num4: 1, Attrs: manual("")})
		if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "strictAffinity is on, so the 2 free addresses in other nodes' blocks cannot be borrowed") {
			t.Fatalf("strict: %v", err)
		}
		mustAssign(t, a, AssignArgs{Handle: "c4", Node: "n1", Num4: 2}) // n1 still uses its own
		// No pool at all for IPv6.
		_, err = a.AutoAssign(ctx, AssignArgs{Handle: "c5", Node: "n1", Num6: 1, Attrs: manual("")})
		if !errors.Is(err, ErrNoPool) {
			t.Fatalf("no v6 pool: %v", err)
		}
	})
}

func TestNodeSelectorAndDisabledPools(t *testing.T) {
	st := datastore.NewMemory()
	ctx := ctxT(t)
	putPool(t, st, "rack1", "10.65.0.0/24", 26, func(p *api.IPPool) { p.Spec.NodeSelector = "rack == 'r1'" })
	putPool(t, st, "old", "10.64.0.0/24", 26, func(p *api.IPPool) { p.Spec.Disabled = true })
	putNode(t, st, "n1", map[string]string{"rack": "r1"})
	putNode(t, st, "n2", map[string]string{"rack": "r2"})
	a := New(st)
	r := mustAssign(t, a, AssignArgs{Handle: "h1", Node: "n1", Num4: 1})
	if r.IPv4[0] != netip.MustParseAddr("10.65.0.0") {
		t.Fatal(r)
	}
	_, err := a.AutoAssign(ctx, AssignArgs{Handle: "h2", Node: "n2", Num4: 1, Attrs: manual("")})
	if !errors.Is(err, ErrNoPool) || !strings.Contains(err.Error(), `10.65.0.0/24 has nodeSelector "rack == 'r1'"`) || !strings.Contains(err.Error(), "10.64.0.0/24 is disabled") {
		t.Fatalf("n2: %v", err)
	}
}

func TestEmptyBlockReleasedAfterGrace(t *testing.T) {
	stores(t, func(t *testing.T, st datastore.Store) {
		ctx := ctxT(t)
		putPool(t, st, "p", "10.65.0.0/26", 28) // 4 blocks
		now := t0
		a := New(st, WithClock(func() time.Time { return now }))
		mustAssign(t, a, AssignArgs{Handle: "h1", Node: "n1", Num4: 20}) // 2 blocks
		if _, err := a.ReleaseByHandle(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		// Keep the first block in use.
		if err := a.AssignIP(ctx, netip.MustParseAddr("10.65.0.5"), "h2", "n1", manual("")); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		rel, err := a.ReleaseEmptyBlocks(ctx, "n1", 10*time.Minute)
		if err != nil || len(rel) != 0 {
			t.Fatalf("released within grace: %v %v", rel, err)
		}
		now = now.Add(9*time.Minute + time.Second)
		rel, err = a.ReleaseEmptyBlocks(ctx, "n1", 10*time.Minute)
		if err != nil || len(rel) != 1 || rel[0].String() != "10.65.0.16/28" {
			t.Fatalf("after grace: %v %v", rel, err)
		}
		if exists(t, st, BlockKey(rel[0])) || exists(t, st, AffinityKey("n1", rel[0])) {
			t.Fatal("block or affinity left behind")
		}
		// Another node can claim it now.
		mustAssign(t, a, AssignArgs{Handle: "h3", Node: "n2", Num4: 1})
		if b := readBlock(t, st, "10.65.0.16/28"); b.Host() != "n2" {
			t.Fatalf("freed block went to %q", b.Host())
		}
		// A block that empties later gets its own grace period.
		if _, err := a.ReleaseByHandle(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		if rel, _ := a.ReleaseEmptyBlocks(ctx, "n1", 10*time.Minute); len(rel) != 0 {
			t.Fatalf("released at once: %v", rel)
		}
		if rel, _ := a.ReleaseEmptyBlocks(ctx, "n1", 0); len(rel) != 1 {
			t.Fatalf("olderThan 0: %v", rel)
		}
		// ReleaseHostAffinities keeps addresses in use but drops the affinity.
		mustAssign(t, a, AssignArgs{Handle: "h4", Node: "n3", Num4: 1})
		rel, err = a.ReleaseHostAffinities(ctx, "n3", false)
		if err != nil || len(rel) != 1 {
			t.Fatalf("ReleaseHostAffinities %v %v", rel, err)
		}
		b := readBlock(t, st, rel[0].String())
		if b.Host() != "" || b.InUse() != 1 {
			t.Fatalf("unaffine block %q %d", b.Host(), b.InUse())
		}
		if _, err := a.ReleaseByHandle(ctx, "h4"); err != nil {
			t.Fatal(err)
		}
		if exists(t, st, BlockKey(rel[0])) {
			t.Fatal("empty block with no affinity kept")
		}
	})
}

func TestDualStack(t *testing.T) {
	stores(t, func(t *testing.T, st datastore.Store) {
		ctx := ctxT(t)
		putPool(t, st, "v4", "10.65.0.0/24", 0)
		putPool(t, st, "v6", "fd00:65::/120", 0) // default /122 blocks
		a := New(st)
		r := mustAssign(t, a, AssignArgs{Handle: "h", Node: "n1", Num4: 1, Num6: 2, Attrs: Attrs{Kind: KindWorkload, Endpoint: "ns/w"}})
		if !slices.Equal(r.IPv4, addrs("10.65.0.0")) || !slices.Equal(r.IPv6, addrs("fd00:65::", "fd00:65::1")) {
			t.Fatalf("%+v", r)
		}
		if !exists(t, st, "/calico/ipam/v2/host/n1/ipv6/block/fd00:65::-122") {
			t.Fatal("no v6 affinity")
		}
		// Idempotent per family.
		r2 := mustAssign(t, a, AssignArgs{Handle: "h", Node: "n1", Num4: 1, Num6: 2})
		if !slices.Equal(r2.IPv6, r.IPv6) || !r2.Existing {
			t.Fatalf("%+v", r2)
		}
		all, err := a.HandleAddrs(ctx, "h")
		if err != nil || len(all) != 3 {
			t.Fatalf("HandleAddrs %v %v", all, err)
		}
		u, err := a.Usage(ctx)
		if err != nil || len(u.Pools) != 2 || u.Pools[1].InUse != 2 || u.Pools[1].Size.String() != "256" || u.Pools[1].Blocks[0].Node != "n1" {
			t.Fatalf("usage %+v %v", u, err)
		}
		rel, err := a.ReleaseByHandle(ctx, "h")
		if err != nil || len(rel) != 3 {
			t.Fatalf("release %v %v", rel, err)
		}
		// Fill the v6 pool: 4 blocks of 64.
		mustAssign(t, a, AssignArgs{Handle: "big", Node: "n1", Num6: 253})
		_, err = a.AutoAssign(ctx, AssignArgs{Handle: "more", Node: "n2", Num6: 4, Attrs: manual("")})
		if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "fd00:65::/120 (256 addresses, 253 in use)") {
			t.Fatalf("v6 exhausted: %v", err)
		}
	})
}

// TestConcurrentAssign: 8 clients, each with its own etcd connection (as
// separate processes would be), 4 per node, assign 40 addresses each, one
// per call. No duplicate; every address in a block affine to its node (the
// pool is large, so nothing is borrowed); each node holds the fewest blocks
// its 160 addresses need.
func TestConcurrentAssign(t *testing.T) {
	st, open := etcdStore(t)
	putPool(t, st, "p", "10.65.0.0/20", 26)
	const clients, per = 8, 40
	var wg sync.WaitGroup
	results := make([][]netip.Addr, clients)
	errs := make(chan error, clients)
	allocs := make([]*Allocator, clients)
	for i := range clients {
		allocs[i] = New(open())
	}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("n%d", i%2+1)
			for j := range per {
				r, err := allocs[i].AutoAssign(context.Background(), AssignArgs{Handle: fmt.Sprintf("c%d-%d", i, j), Node: node, Num4: 1,
					Attrs: Attrs{Kind: KindWorkload, Endpoint: fmt.Sprintf("ns/c%d-%d", i, j)}})
				if err != nil {
					errs <- err
					return
				}
				results[i] = append(results[i], r.IPv4...)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[netip.Addr]int{}
	for i, ips := range results {
		if len(ips) != per {
			t.Fatalf("client %d got %d addresses", i, len(ips))
		}
		for _, ip := range ips {
			if prev, dup := seen[ip]; dup {
				t.Fatalf("%s given to clients %d and %d", ip, prev, i)
			}
			seen[ip] = i
		}
	}
	a := New(st)
	blocks, err := a.listBlocks(ctxT(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, bk := range blocks {
		perNode[bk.b.Host()]++
		for _, al := range bk.b.AllocationList() {
			if al.Attrs.Node != bk.b.Host() {
				t.Errorf("%s of %s is in block %s of %s", al.IP, al.Attrs.Node, bk.b.CIDR, bk.b.Host())
			}
			ci := seen[al.IP]
			if want := fmt.Sprintf("n%d", ci%2+1); al.Attrs.Node != want {
				t.Errorf("%s recorded for %s, asked by %s", al.IP, al.Attrs.Node, want)
			}
		}
	}
	// 4 clients x 40 = 160 per node: 3 blocks of 64.
	if perNode["n1"] != 3 || perNode["n2"] != 3 || len(perNode) != 2 {
		t.Fatalf("blocks per node %v", perNode)
	}
	rep, err := a.Check(ctxT(t), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Inconsistencies) != 0 || rep.Summary.Assigned != clients*per {
		t.Fatalf("check after concurrency: %s", rep)
	}
	var total, maxR int64
	for _, al := range allocs {
		s := al.Stats()
		total += s.Retries
		maxR = max(maxR, s.MaxCallRetries)
	}
	t.Logf("retries under contention: total %d, max per call %d (of %d calls)", total, maxR, clients*per)
}

package ipam

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func wl(node string) map[string]string {
	return Attrs{Kind: KindWorkload, Node: node, Endpoint: "ns/" + node}.Secondary()
}

func TestBlockAssignReleaseTable(t *testing.T) {
	type step struct {
		op      string // assign, release, releaseHandle, assignAddr
		n       int
		handle  string
		ips     []netip.Addr
		want    []netip.Addr // assigned / released
		wantErr string
		free    int
	}
	cases := []struct {
		name  string
		cidr  string
		steps []step
	}{
		{"ipv4 in order, release goes to the back", "10.65.0.0/30", []step{
			{op: "assign", n: 2, handle: "a", want: addrs("10.65.0.0", "10.65.0.1"), free: 2},
			{op: "release", ips: addrs("10.65.0.0"), free: 3},
			{op: "assign", n: 2, handle: "b", want: addrs("10.65.0.2", "10.65.0.3"), free: 1},
			{op: "assign", n: 5, handle: "c", want: addrs("10.65.0.0"), free: 0},
			{op: "assign", n: 1, handle: "d", want: nil, free: 0},
			{op: "releaseHandle", handle: "b", want: addrs("10.65.0.2", "10.65.0.3"), free: 2},
		}},
		{"specific address", "10.65.0.64/30", []step{
			{op: "assignAddr", handle: "a", ips: addrs("10.65.0.66"), free: 3},
			{op: "assignAddr", handle: "a", ips: addrs("10.65.0.66"), free: 3}, // same handle: idempotent
			{op: "assignAddr", handle: "b", ips: addrs("10.65.0.66"), wantErr: `already assigned to handle "a"`, free: 3},
			{op: "assignAddr", handle: "b", ips: addrs("10.65.0.70"), wantErr: "not in block", free: 3},
			{op: "assign", n: 3, handle: "c", want: addrs("10.65.0.64", "10.65.0.65", "10.65.0.67"), free: 0},
		}},
		{"ipv6 /126", "fd00:65::/126", []step{
			{op: "assign", n: 3, handle: "a", want: addrs("fd00:65::", "fd00:65::1", "fd00:65::2"), free: 1},
			{op: "release", ips: addrs("fd00:65::1", "fd00:65::3"), free: 2}, // ::3 was free
		}},
		{"ipv4 /32 single address", "10.65.1.7/32", []step{
			{op: "assign", n: 2, handle: "a", want: addrs("10.65.1.7"), free: 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBlock(netip.MustParsePrefix(tc.cidr), "n1")
			for i, s := range tc.steps {
				var got []netip.Addr
				var err error
				switch s.op {
				case "assign":
					got = b.Assign(s.n, s.handle, wl("n1"))
				case "assignAddr":
					_, err = b.AssignAddr(s.ips[0], s.handle, wl("n1"))
				case "release":
					_, _, err = b.Release(s.ips, t0)
				case "releaseHandle":
					got = b.ReleaseHandle(s.handle, t0)
				}
				if s.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), s.wantErr) {
						t.Fatalf("step %d: err %v, want %q", i, err, s.wantErr)
					}
				} else if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if s.want != nil && !slices.Equal(got, s.want) {
					t.Fatalf("step %d: got %v, want %v", i, got, s.want)
				}
				if s.want == nil && (s.op == "assign") && len(got) != 0 {
					t.Fatalf("step %d: got %v, want none", i, got)
				}
				if b.NumFree() != s.free {
					t.Fatalf("step %d: %d free, want %d", i, b.NumFree(), s.free)
				}
				if p := b.Problems(); len(p) != 0 {
					t.Fatalf("step %d: problems %v", i, p)
				}
				if b.InUse()+b.NumFree() != b.Size() {
					t.Fatalf("step %d: in use %d + free %d != size %d", i, b.InUse(), b.NumFree(), b.Size())
				}
			}
		})
	}
}

func TestBlockReleaseCountsHandlesAndCompacts(t *testing.T) {
	b := NewBlock(netip.MustParsePrefix("10.65.0.0/29"), "n1")
	b.Assign(2, "a", wl("n1"))
	b.Assign(3, "b", wl("n1"))
	b.Assign(1, "c", Attrs{Kind: KindManual, Note: "printer"}.Secondary())
	byHandle, notAssigned, err := b.Release(addrs("10.65.0.0", "10.65.0.1", "10.65.0.2", "10.65.0.7", "10.65.0.2"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if byHandle["a"] != 2 || byHandle["b"] != 1 || len(byHandle) != 2 {
		t.Fatalf("byHandle %v", byHandle)
	}
	if !slices.Equal(notAssigned, addrs("10.65.0.7")) {
		t.Fatalf("notAssigned %v", notAssigned)
	}
	if len(b.Attributes) != 2 {
		t.Fatalf("attributes not compacted: %+v", b.Attributes)
	}
	if got := b.HandleCounts(); got["b"] != 2 || got["c"] != 1 || len(got) != 2 {
		t.Fatalf("HandleCounts %v", got)
	}
	if al, ok := b.Holder(netip.MustParseAddr("10.65.0.5")); !ok || al.Handle != "c" || al.Attrs.Note != "printer" {
		t.Fatalf("Holder %+v %v", al, ok)
	}
	if _, _, err := b.Release(addrs("10.65.1.0"), t0); err == nil {
		t.Fatal("release outside the block succeeded")
	}
	if b.EmptySince != nil {
		t.Fatal("EmptySince set on a block in use")
	}
	b.ReleaseHandle("b", t0)
	b.ReleaseHandle("c", t0)
	if !b.Empty() || b.EmptySince == nil || !b.EmptySince.Equal(t0) {
		t.Fatalf("empty %v since %v", b.Empty(), b.EmptySince)
	}
	b.Assign(1, "d", wl("n1"))
	if b.EmptySince != nil {
		t.Fatal("EmptySince kept after an assignment")
	}
}

func TestBlockJSONIsCalicoShaped(t *testing.T) {
	b := NewBlock(netip.MustParsePrefix("10.65.0.0/30"), "node-a")
	b.Assign(1, "h1", map[string]string{"kind": "manual"})
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cidr", "affinity", "strictAffinity", "allocations", "unallocated", "attributes", "sequenceNumber"} {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing from %s", k, raw)
		}
	}
	if m["cidr"] != "10.65.0.0/30" || m["affinity"] != "host:node-a" {
		t.Errorf("cidr/affinity: %s", raw)
	}
	if !strings.Contains(string(raw), `"allocations":[0,null,null,null]`) || !strings.Contains(string(raw), `"handle_id":"h1"`) {
		t.Errorf("allocations/attributes: %s", raw)
	}
	var back Block
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Host() != "node-a" || back.InUse() != 1 || back.CIDR != b.CIDR {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestBlockProblemsAndRepair(t *testing.T) {
	mk := func() *Block {
		b := NewBlock(netip.MustParsePrefix("10.65.0.0/30"), "n1")
		b.Assign(2, "a", wl("n1")) // 0,1 assigned; 2,3 free
		return b
	}
	one := 1
	cases := []struct {
		name   string
		break_ func(b *Block)
		want   BlockProblem
	}{
		{"assigned and free (handed out twice)", func(b *Block) { b.Unallocated = append(b.Unallocated, 1) },
			BlockProblem{Kind: ProblemAllocatedAndFree, Ordinal: 1, IP: netip.MustParseAddr("10.65.0.1")}},
		{"free twice", func(b *Block) { b.Unallocated = append(b.Unallocated, 3) },
			BlockProblem{Kind: ProblemFreeTwice, Ordinal: 3, IP: netip.MustParseAddr("10.65.0.3")}},
		{"lost", func(b *Block) { b.Unallocated = []int{3} },
			BlockProblem{Kind: ProblemLost, Ordinal: 2, IP: netip.MustParseAddr("10.65.0.2")}},
		{"bad ordinal", func(b *Block) { b.Unallocated = append(b.Unallocated, 9) },
			BlockProblem{Kind: ProblemBadOrdinal, Ordinal: 9}},
		{"attribute missing", func(b *Block) { v := 7; b.Allocations[one] = &v },
			BlockProblem{Kind: ProblemAttrMissing, Ordinal: 1, IP: netip.MustParseAddr("10.65.0.1")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mk()
			tc.break_(b)
			ps := b.Problems()
			if len(ps) != 1 || ps[0] != tc.want {
				t.Fatalf("problems %+v, want %+v", ps, tc.want)
			}
			if tc.want.Kind == ProblemAttrMissing {
				if al, _ := b.Holder(tc.want.IP); !al.AttrMissing {
					t.Fatal("holder does not say the attribute is missing")
				}
				if b.Repair(ps[0]) {
					t.Fatal("Repair claims to fix a missing attribute")
				}
				return
			}
			if !b.Repair(ps[0]) {
				t.Fatal("Repair did nothing")
			}
			if ps := b.Problems(); len(ps) != 0 {
				t.Fatalf("after repair: %+v", ps)
			}
			if b.Repair(tc.want) {
				t.Fatal("second Repair changed the block again")
			}
			if b.InUse() != 2 {
				t.Fatalf("repair changed assignments: %d in use", b.InUse())
			}
		})
	}
}

func TestBorrowedAndSetAttrs(t *testing.T) {
	b := NewBlock(netip.MustParsePrefix("10.65.0.0/30"), "n1")
	b.Assign(1, "mine", wl("n1"))
	b.Assign(1, "theirs", wl("n2"))
	br := b.Borrowed()
	if len(br) != 1 || br[0].Handle != "theirs" || br[0].IP != netip.MustParseAddr("10.65.0.1") {
		t.Fatalf("Borrowed %+v", br)
	}
	if n := b.SetAttrs("theirs", Attrs{Kind: KindWorkload, Node: "n2", Endpoint: "ns/x", ContainerID: "abc"}.Secondary()); n != 1 {
		t.Fatalf("SetAttrs touched %d", n)
	}
	al, _ := b.Holder(netip.MustParseAddr("10.65.0.1"))
	if al.Attrs.Endpoint != "ns/x" || al.Attrs.ContainerID != "abc" || len(b.Attributes) != 2 {
		t.Fatalf("after SetAttrs: %+v, %d attributes", al, len(b.Attributes))
	}
}

func TestAddressArithmetic(t *testing.T) {
	cases := []struct {
		base string
		off  uint64
		want string
	}{
		{"10.65.0.0", 63, "10.65.0.63"},
		{"10.65.0.255", 1, "10.65.1.0"},
		{"fd00::ffff", 1, "fd00::1:0"},
		{"fd00::ff:ffff:ffff:ffff", 1, "fd00::100:0:0:0"},
	}
	for _, c := range cases {
		got := addOffset(netip.MustParseAddr(c.base), c.off)
		if got.String() != c.want {
			t.Errorf("%s + %d = %s, want %s", c.base, c.off, got, c.want)
		}
		if o := offset(netip.MustParseAddr(c.base), got); o != c.off {
			t.Errorf("offset(%s, %s) = %d, want %d", c.base, got, o, c.off)
		}
	}
}

func TestAttrs(t *testing.T) {
	cases := []struct {
		a       Attrs
		wantErr string
		desc    string
	}{
		{Attrs{Kind: KindWorkload, Node: "n1", Endpoint: "ns/web", ContainerID: "0123456789abcdef"}, "", "workload ns/web container 0123456789ab on node n1"},
		{Attrs{Kind: KindManual, Node: "n1", Note: "router"}, "", `manual reservation "router" on node n1`},
		{Attrs{}, "kind is required", ""},
		{Attrs{Kind: "other"}, "unknown kind", ""},
		{Attrs{Kind: KindWorkload, Endpoint: "web"}, "namespace/name", ""},
	}
	for _, c := range cases {
		err := c.a.Validate()
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%+v: err %v, want %q", c.a, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", c.a, err)
		}
		if d := c.a.Describe(); d != c.desc {
			t.Errorf("Describe %q, want %q", d, c.desc)
		}
		c.a.Assigned = t0
		if back := AttrsFromSecondary(c.a.Secondary()); back != c.a {
			t.Errorf("round trip %+v != %+v", back, c.a)
		}
	}
}

func pool(name, cidr string, bs int) Pool {
	return Pool{Name: name, CIDR: netip.MustParsePrefix(cidr), BlockSize: bs}
}

func TestFreeBlock(t *testing.T) {
	cases := []struct {
		name     string
		pool     Pool
		existing []string
		want     string // "" = none
	}{
		{"first", pool("p", "10.65.0.0/24", 26), nil, "10.65.0.0/26"},
		{"skips taken", pool("p", "10.65.0.0/24", 26), []string{"10.65.0.0/26", "10.65.0.128/26"}, "10.65.0.64/26"},
		{"full", pool("p", "10.65.0.0/28", 30), []string{"10.65.0.0/30", "10.65.0.4/30", "10.65.0.8/30", "10.65.0.12/30"}, ""},
		{"ignores other pools", pool("p", "10.65.0.0/28", 30), []string{"10.66.0.0/30"}, "10.65.0.0/30"},
		{"overlapping bigger block", pool("p", "10.65.0.0/24", 28), []string{"10.65.0.0/26"}, "10.65.0.64/28"},
		{"ipv6 huge pool", pool("p", "fd00:65::/48", 122), []string{"fd00:65::/122"}, "fd00:65::40/122"},
	}
	for _, c := range cases {
		var ex []netip.Prefix
		for _, e := range c.existing {
			ex = append(ex, netip.MustParsePrefix(e))
		}
		got, ok := FreeBlock(c.pool, ex)
		if c.want == "" {
			if ok {
				t.Errorf("%s: got %s, want none", c.name, got)
			}
			continue
		}
		if !ok || got.String() != c.want {
			t.Errorf("%s: got %s %v, want %s", c.name, got, ok, c.want)
		}
	}
}

func TestSelectPools(t *testing.T) {
	pools := []Pool{
		pool("b", "10.66.0.0/16", 26),
		pool("a", "10.65.0.0/16", 26),
		{Name: "off", CIDR: netip.MustParsePrefix("10.67.0.0/16"), BlockSize: 26, Disabled: true},
		{Name: "rack1", CIDR: netip.MustParsePrefix("10.68.0.0/16"), BlockSize: 26, NodeSelector: "rack == 'r1'"},
		pool("v6", "fd00:65::/48", 122),
	}
	names := func(ps []Pool) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Name)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		name     string
		fam      int
		labels   map[string]string
		restrict []string
		want     string
		wantErr  string
	}{
		{"all enabled matching, by address", 4, nil, nil, "a,b", ""},
		{"selector matches", 4, map[string]string{"rack": "r1"}, nil, "a,b,rack1", ""},
		{"v6", 6, nil, nil, "v6", ""},
		{"restrict", 4, nil, []string{"10.66.0.0/16"}, "b", ""},
		{"restrict disabled", 4, nil, []string{"10.67.0.0/16"}, "", "is disabled"},
		{"restrict unknown", 4, nil, []string{"10.99.0.0/16"}, "", "no IPPool has this cidr"},
		{"restrict selector mismatch", 4, nil, []string{"10.68.0.0/16"}, "", "does not match node"},
		{"restrict wrong family", 4, nil, []string{"fd00:65::/48"}, "", "not an IPv4 pool"},
	}
	for _, c := range cases {
		var r []netip.Prefix
		for _, s := range c.restrict {
			r = append(r, netip.MustParsePrefix(s))
		}
		got, err := SelectPools(pools, c.fam, "n1", c.labels, r)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || names(got) != c.want {
			t.Errorf("%s: got %q %v, want %q", c.name, names(got), err, c.want)
		}
	}
	_, err := SelectPools([]Pool{pools[2]}, 4, "n1", nil, nil)
	if !errors.Is(err, ErrNoPool) || !strings.Contains(err.Error(), "10.67.0.0/16 is disabled") {
		t.Errorf("no pool: %v", err)
	}
}

func TestPoolFromAPIAndOverlap(t *testing.T) {
	mk := func(name, cidr string, bs int) api.IPPool {
		return api.IPPool{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.IPPoolSpec{CIDR: cidr, BlockSize: bs}}
	}
	p, err := PoolFromAPI(mk("p", "10.65.0.0/16", 0))
	if err != nil || p.BlockSize != 26 {
		t.Fatalf("%+v %v", p, err)
	}
	p, err = PoolFromAPI(mk("p6", "fd00::/48", 0))
	if err != nil || p.BlockSize != 122 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []api.IPPool{mk("x", "10.65.0.0/16", 19), mk("x", "10.65.0.0/28", 26), mk("x", "nope", 0), mk("x", "fd00::/48", 26)} {
		if _, err := PoolFromAPI(bad); err == nil {
			t.Errorf("%+v accepted", bad.Spec)
		}
	}
	existing := []api.IPPool{mk("a", "10.65.0.0/16", 0), mk("b", "fd00::/48", 0)}
	if err := CheckPoolOverlap(existing, mk("c", "10.65.3.0/24", 0)); err == nil || !strings.Contains(err.Error(), `overlaps ippool "a"`) {
		t.Errorf("overlap not refused: %v", err)
	}
	if err := CheckPoolOverlap(existing, mk("a", "10.65.0.0/15", 0)); err != nil {
		t.Errorf("update of itself refused: %v", err)
	}
	if err := CheckPoolOverlap(existing, mk("d", "10.66.0.0/16", 0)); err != nil {
		t.Errorf("disjoint refused: %v", err)
	}
	if !PoolsOverlap(netip.MustParsePrefix("fd00::/48"), netip.MustParsePrefix("fd00:0:0:1::/64")) {
		t.Error("v6 overlap missed")
	}
}

func TestKeys(t *testing.T) {
	c := netip.MustParsePrefix("10.65.0.0/26")
	if k := BlockKey(c); k != "/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-26" {
		t.Errorf("BlockKey %s", k)
	}
	if k := AffinityKey("n1", c); k != "/calico/ipam/v2/host/n1/ipv4/block/10.65.0.0-26" {
		t.Errorf("AffinityKey %s", k)
	}
	c6 := netip.MustParsePrefix("fd00:65::40/122")
	if k := BlockKey(c6); k != "/calico/ipam/v2/assignment/ipv6/block/fd00:65::40-122" {
		t.Errorf("BlockKey v6 %s", k)
	}
	for _, p := range []netip.Prefix{c, c6} {
		if got, ok := ParseBlockKey(BlockKey(p)); !ok || got != p {
			t.Errorf("ParseBlockKey(%s) = %s %v", BlockKey(p), got, ok)
		}
		if n, got, ok := ParseAffinityKey(AffinityKey("n1", p)); !ok || got != p || n != "n1" {
			t.Errorf("ParseAffinityKey(%s) = %s %s %v", AffinityKey("n1", p), n, got, ok)
		}
	}
	if HandleKey("h") != "/calico/ipam/v2/handle/h" || ConfigKey != "/calico/ipam/v2/config" {
		t.Error("handle/config keys")
	}
	for _, bad := range []string{"", "a/b", "a b"} {
		if validName("handle", bad) == nil {
			t.Errorf("handle %q accepted", bad)
		}
	}
}

package bgp

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// latest returns the set waiting on the channel, if any.
func latest(t *testing.T, lt *learnedTable) ([]LearnedRoute, bool) {
	t.Helper()
	select {
	case r := <-lt.out:
		return r, true
	default:
		return nil, false
	}
}

func TestLearnedTable(t *testing.T) {
	peerA, peerB := addr("10.0.0.1"), addr("10.0.0.2")
	type step struct {
		name    string
		apply   []bestPath
		own     []netip.Prefix
		setOwn  bool
		want    []LearnedRoute
		publish bool // a new set is expected on the channel
	}
	steps := []step{
		{name: "initial empty set is published", apply: nil, want: []LearnedRoute{}, publish: true},
		{name: "routes from peers, sorted", apply: []bestPath{
			{Prefix: pfx("10.65.1.0/26"), NextHop: peerB, Peer: peerB},
			{Prefix: pfx("10.65.0.0/26"), NextHop: peerA, Peer: peerA},
			{Prefix: pfx("fd00:65::/122"), NextHop: addr("fd00::1"), Peer: addr("fd00::1")},
		}, want: []LearnedRoute{
			{Prefix: pfx("10.65.0.0/26"), NextHop: peerA, Peer: peerA},
			{Prefix: pfx("10.65.1.0/26"), NextHop: peerB, Peer: peerB},
			{Prefix: pfx("fd00:65::/122"), NextHop: addr("fd00::1"), Peer: addr("fd00::1")},
		}, publish: true},
		{name: "same best path again publishes nothing", apply: []bestPath{
			{Prefix: pfx("10.65.1.0/26"), NextHop: peerB, Peer: peerB},
		}, publish: false},
		{name: "withdrawal removes", apply: []bestPath{
			{Prefix: pfx("fd00:65::/122"), Withdrawn: true},
		}, want: []LearnedRoute{
			{Prefix: pfx("10.65.0.0/26"), NextHop: peerA, Peer: peerA},
			{Prefix: pfx("10.65.1.0/26"), NextHop: peerB, Peer: peerB},
		}, publish: true},
		{name: "our own prefix is hidden", setOwn: true, own: []netip.Prefix{pfx("10.65.1.0/26")}, want: []LearnedRoute{
			{Prefix: pfx("10.65.0.0/26"), NextHop: peerA, Peer: peerA},
		}, publish: true},
		{name: "and reappears when we stop advertising it", setOwn: true, own: nil, want: []LearnedRoute{
			{Prefix: pfx("10.65.0.0/26"), NextHop: peerA, Peer: peerA},
			{Prefix: pfx("10.65.1.0/26"), NextHop: peerB, Peer: peerB},
		}, publish: true},
		{name: "a best path we originate replaces the peer's", apply: []bestPath{
			{Prefix: pfx("10.65.0.0/26"), NextHop: addr("10.0.0.9")},
		}, want: []LearnedRoute{
			{Prefix: pfx("10.65.1.0/26"), NextHop: peerB, Peer: peerB},
		}, publish: true},
		{name: "next hop change", apply: []bestPath{
			{Prefix: pfx("10.65.1.0/26"), NextHop: peerA, Peer: peerA},
		}, want: []LearnedRoute{
			{Prefix: pfx("10.65.1.0/26"), NextHop: peerA, Peer: peerA},
		}, publish: true},
	}
	lt := newLearnedTable()
	for _, s := range steps {
		if s.setOwn {
			lt.setOwn(s.own)
		} else {
			lt.apply(s.apply)
		}
		lt.publish()
		got, ok := latest(t, lt)
		if ok != s.publish {
			t.Fatalf("%s: published=%v, want %v (%v)", s.name, ok, s.publish, got)
		}
		if ok && !reflect.DeepEqual(got, s.want) {
			t.Fatalf("%s:\n got %v\nwant %v", s.name, got, s.want)
		}
	}
}

func TestLearnedTableCoalesces(t *testing.T) {
	lt := newLearnedTable()
	for i := range 100 {
		lt.apply([]bestPath{{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, byte(i), 0}), 26), NextHop: addr("10.0.0.1"), Peer: addr("10.0.0.1")}})
		if i%10 == 0 {
			lt.publish()
		}
	}
	lt.publish()
	got, ok := latest(t, lt)
	if !ok || len(got) != 100 {
		t.Fatalf("got %d routes (published %v), want the latest set of 100", len(got), ok)
	}
	if _, ok := latest(t, lt); ok {
		t.Fatal("more than one set was waiting")
	}
}

func TestLearnedTableRun(t *testing.T) {
	lt := newLearnedTable()
	done := make(chan struct{})
	defer close(done)
	go lt.run(done)
	lt.apply([]bestPath{{Prefix: pfx("10.65.0.0/26"), NextHop: addr("10.0.0.1"), Peer: addr("10.0.0.1")}})
	select {
	case got := <-lt.out:
		if len(got) != 1 || got[0].Prefix != pfx("10.65.0.0/26") {
			t.Fatalf("got %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
}

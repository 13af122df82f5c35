package routes

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// Run with: go test -run '^$' -bench . -benchtime 20x ./internal/dataplane/routes/

func blackholes(n int) []dataplane.Route {
	rs := make([]dataplane.Route, n)
	for i := range rs {
		a := netip.AddrFrom4([4]byte{10, 120 + byte(i>>16), byte(i >> 8), byte(i)})
		rs[i] = dataplane.Route{Dst: netip.PrefixFrom(a, 32), Type: dataplane.RouteBlackhole}
	}
	return rs
}

func benchApply(b *testing.B, d *Driver, des *dataplane.Desired) ApplyStats {
	b.Helper()
	d.SetDesired(des)
	st, err := d.Apply(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkApplyCold10kRoutes: programming 10,000 routes into an empty table.
func BenchmarkApplyCold10kRoutes(b *testing.B) {
	ns := testutil.NewNetNS(b, "rtb")
	d := newDriver(b, ns)
	full := &dataplane.Desired{Routes: blackholes(10000)}
	empty := &dataplane.Desired{}
	for b.Loop() {
		if st := benchApply(b, d, full); st.RoutesAdded != 10000 {
			b.Fatalf("%+v", st)
		}
		b.StopTimer()
		benchApply(b, d, empty)
		b.StartTimer()
	}
}

// BenchmarkApplyNoop10kRoutes: an Apply that finds all 10,000 routes in place.
func BenchmarkApplyNoop10kRoutes(b *testing.B) {
	ns := testutil.NewNetNS(b, "rtb")
	d := newDriver(b, ns)
	full := &dataplane.Desired{Routes: blackholes(10000)}
	benchApply(b, d, full)
	for b.Loop() {
		if st := benchApply(b, d, full); st.Changes() != 0 {
			b.Fatalf("%+v", st)
		}
	}
}

// BenchmarkApplyOneEndpoint1k: with 1,000 workload interfaces programmed,
// one endpoint's route comes and goes (the latency the agent adds to
// `calico apply` of one endpoint).
func BenchmarkApplyOneEndpoint1k(b *testing.B) {
	ns := testutil.NewNetNS(b, "rtb")
	const n = 1001
	var batch strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, "link add calib%05d type veth peer name rtpb%05d\n", i, i)
	}
	file := filepath.Join(b.TempDir(), "links")
	if err := os.WriteFile(file, []byte(batch.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	testutil.Run(b, "ip", "-n", ns.Name, "-batch", file)
	d := newDriver(b, ns)
	mk := func(k int) *dataplane.Desired {
		des := &dataplane.Desired{}
		for i := range k {
			iface := fmt.Sprintf("calib%05d", i)
			a := netip.AddrFrom4([4]byte{10, 121, byte(i >> 8), byte(i)})
			p := netip.PrefixFrom(a, 32)
			des.Endpoints = append(des.Endpoints, dataplane.Endpoint{ID: iface, Iface: iface, Addrs: []netip.Prefix{p}})
			des.Routes = append(des.Routes, dataplane.Route{Dst: p, Type: dataplane.RouteLocal, Iface: iface})
		}
		return des
	}
	base, more := mk(n-1), mk(n)
	benchApply(b, d, more)
	benchApply(b, d, base)
	for b.Loop() {
		if st := benchApply(b, d, more); st.RoutesAdded != 1 {
			b.Fatalf("%+v", st)
		}
		if st := benchApply(b, d, base); st.RoutesDeleted != 1 {
			b.Fatalf("%+v", st)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(2*b.N), "µs/apply")
}

// BenchmarkDumps compares the driver's minimal dumps with the netlink
// library's full ones on 2,000 links and 10,000 routes of ours.
func BenchmarkDumps(b *testing.B) {
	ns := testutil.NewNetNS(b, "rtb")
	var batch strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&batch, "link add calid%05d type veth peer name rtpd%05d\n", i, i)
	}
	file := filepath.Join(b.TempDir(), "links")
	if err := os.WriteFile(file, []byte(batch.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	testutil.Run(b, "ip", "-n", ns.Name, "-batch", file)
	d := newDriver(b, ns)
	benchApply(b, d, &dataplane.Desired{Routes: blackholes(10000)})
	b.Run("links/netlink", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.h.LinkList(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("links/dumper", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.dump.links(); err != nil {
				b.Fatal(err)
			}
		}
	})
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: d.proto}
	b.Run("routes/netlink", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("routes/dumper", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.dump.routes(netlink.FAMILY_V4, unix.RT_TABLE_MAIN, d.proto); err != nil {
				b.Fatal(err)
			}
		}
	})
}

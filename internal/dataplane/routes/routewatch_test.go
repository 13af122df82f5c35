package routes

import (
	"context"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
)

// TestWatchRoutesReportsDeletion: someone deleting a route of ours that is
// still desired is reported at once, and the next Apply puts it back (it
// reads the kernel instead of trusting its memory); our own Apply deleting
// a route no longer desired, and a deletion of another protocol's route,
// are not reported.
func TestWatchRoutesReportsDeletion(t *testing.T) {
	ns := newHost(t)
	d := newDriver(t, ns)
	keep4, keep6, drop := pfx("10.65.1.0/26"), pfx("fd00:65::/122"), pfx("10.65.2.0/26")
	des := func(dsts ...string) *dataplane.Desired {
		var rs []dataplane.Route
		for _, d := range dsts {
			rs = append(rs, dataplane.Route{Dst: pfx(d), Type: dataplane.RouteBlackhole})
		}
		return &dataplane.Desired{Routes: rs}
	}
	apply(t, d, des(keep4.String(), keep6.String(), drop.String()))
	apply(t, d, des(keep4.String(), keep6.String(), drop.String())) // now incremental
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := d.WatchRoutes(ctx)
	quiet := func(what string) {
		t.Helper()
		select {
		case <-events:
			t.Fatalf("%s was reported as a deleted route of ours", what)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if st := apply(t, d, des(keep4.String(), keep6.String())); st.RoutesDeleted != 1 {
		t.Fatalf("apply without %s: %+v", drop, st)
	}
	quiet("our own apply's deletion")
	ns.MustExec(t, "ip", "route", "add", "10.66.0.0/24", "dev", "rtup0", "proto", "static")
	ns.MustExec(t, "ip", "route", "del", "10.66.0.0/24", "dev", "rtup0", "proto", "static")
	quiet("another protocol's route")

	for _, dst := range []string{keep4.String(), keep6.String()} {
		fam := "-4"
		if pfx(dst).Addr().Is6() {
			fam = "-6"
		}
		ns.MustExec(t, "ip", fam, "route", "del", "blackhole", dst, "proto", "80")
		select {
		case _, ok := <-events:
			if !ok {
				t.Fatal("the watch ended instead of reporting")
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the deletion of %s was not reported within 5 s", dst)
		}
		if st := apply(t, d, des(keep4.String(), keep6.String())); st.RoutesAdded != 1 {
			t.Fatalf("apply after %s was deleted: %+v, want it added back", dst, st)
		}
		if _, ok := kernelRoutes(t, ns, fam, "80")[dst]; !ok {
			t.Fatalf("%s not back in the kernel", dst)
		}
	}
}

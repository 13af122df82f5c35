package routes

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// BenchmarkOneEndpointVsHostSize: one endpoint's route (and interface)
// added and removed with 100, 1,000 and 10,000 endpoints (a veth each)
// already programmed; µs per Apply. Applies after the first diff against
// what was programmed (incremental.go) and dump no routes; with WatchLinks
// running (as in the agent) they dump no links either (linkcache.go).
func BenchmarkOneEndpointVsHostSize(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			ns := testutil.NewNetNS(b, "rths")
			var batch strings.Builder
			for i := range n + 1 {
				fmt.Fprintf(&batch, "link add calih%05d type veth peer name rtph%05d\n", i, i)
			}
			file := filepath.Join(b.TempDir(), "links")
			if err := os.WriteFile(file, []byte(batch.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			testutil.Run(b, "ip", "-n", ns.Name, "-batch", file)
			d := newDriver(b, ns)
			// The agent runs WatchLinks: Apply then uses its link cache.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for range d.WatchLinks(ctx) {
				}
			}()
			mk := func(k int) *dataplane.Desired {
				des := &dataplane.Desired{}
				for i := range k {
					iface := fmt.Sprintf("calih%05d", i)
					p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 122, byte(i >> 8), byte(i)}), 32)
					des.Endpoints = append(des.Endpoints, dataplane.Endpoint{ID: iface, Iface: iface, Addrs: []netip.Prefix{p}})
					des.Routes = append(des.Routes, dataplane.Route{Dst: p, Type: dataplane.RouteLocal, Iface: iface})
				}
				return des
			}
			base, more := mk(n), mk(n+1)
			benchApply(b, d, more)
			benchApply(b, d, base)
			// Until the watch is subscribed and has reported the links it
			// listed at start (each reported name is asked for once).
			testutil.Eventually(b, time.Minute, func() error {
				benchApply(b, d, base)
				d.linkMu.Lock()
				defer d.linkMu.Unlock()
				if !d.lc.watching || d.lc.allDirty || len(d.lc.dirty) > 0 {
					return fmt.Errorf("link cache not settled")
				}
				return nil
			})
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
		})
	}
}

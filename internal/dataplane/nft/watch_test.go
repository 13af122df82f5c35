package nft

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// TestWatchTableReportsDeletion: deleting our table is reported at once;
// our own applies (which delete chains and rules) are not.
func TestWatchTableReportsDeletion(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	tp.apply(t, twoOpen(w1, w2))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gone := tp.drv.WatchTable(ctx)
	// An apply that removes an endpoint deletes chains and map elements.
	d := twoOpen(w1, w2)
	d.Endpoints = d.Endpoints[:1]
	tp.apply(t, d)
	select {
	case <-gone:
		t.Fatal("our own apply was reported as a deleted table")
	case <-time.After(500 * time.Millisecond):
	}
	deleteAndExpectReport(t, tp, gone)
}

// TestWatchTableOwnLargeApply: our own large apply overflows the watch's
// socket (events are lost); that alone must not be taken for a deleted
// table, which would make the agent read the whole table back after every
// large apply.
func TestWatchTableOwnLargeApply(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	d := twoOpen(w1, w2)
	tp.apply(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gone := tp.drv.WatchTable(ctx)
	// 30,000 separate addresses: far more events than the socket buffers.
	var big []netip.Prefix
	for i := range 30000 {
		n := 2 * i
		big = append(big, netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.%d/32", 100+n>>16, n>>8&255, n&255)))
	}
	d.Sets = []dataplane.IPSet{{ID: "s-big", Selector: "all()", Members: big}}
	d.Chains = []dataplane.PolicyChain{sameProfile("profile:open", "s-big")}
	tp.apply(t, d)
	testutil.Eventually(t, 10*time.Second, func() error {
		if tp.drv.overflows.Load() == 0 {
			return fmt.Errorf("the watch saw no overflow yet")
		}
		return nil
	})
	select {
	case <-gone:
		t.Fatal("our own large apply was reported as a deleted table")
	case <-time.After(time.Second):
	}
	// A deletion is still reported after the overflow.
	deleteAndExpectReport(t, tp, gone)
}

// deleteAndExpectReport deletes our table and fails unless the watch
// reports it within 5 s.
func deleteAndExpectReport(t *testing.T, tp *topo, gone <-chan struct{}) {
	t.Helper()
	tp.host.MustExec(t, "nft", "delete", "table", "inet", "calico")
	select {
	case _, ok := <-gone:
		if !ok {
			t.Fatal("the watch ended instead of reporting")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the deletion was not reported within 5 s")
	}
}

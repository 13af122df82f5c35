package nft

import (
	"context"
	"testing"
	"time"
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

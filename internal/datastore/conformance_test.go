package datastore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/testutil"
)

// eventTimeout bounds every wait for a watch event.
const eventTimeout = 10 * time.Second

// RunConformance checks that a Store keeps the contract of store.go.
// newStore may return stores sharing one server: every subtest works under
// its own random prefix and assumes nothing about absolute revisions.
func RunConformance(t *testing.T, newStore func(t *testing.T) datastore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s datastore.Store, p string)
	}{
		{"GetMissing", testGetMissing},
		{"CreateGet", testCreateGet},
		{"List", testList},
		{"ListPaged", testListPaged},
		{"UpdateCAS", testUpdateCAS},
		{"DeleteCAS", testDeleteCAS},
		{"TxnCommits", testTxnCommits},
		{"TxnAllOrNothing", testTxnAllOrNothing},
		{"TxnRefusesBadOps", testTxnRefusesBadOps},
		{"WatchInitialState", testWatchInitialState},
		{"WatchLive", testWatchLive},
		{"WatchResumesAfterCompaction", testWatchCompaction},
		{"WatchEndsWithContext", testWatchEndsWithContext},
		{"WatchEndsWithClose", testWatchEndsWithClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fn(t, s, "/calico/conformance/"+testutil.RandSuffix(8)+"/")
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(t *testing.T, s datastore.Store, key, value string) datastore.KV {
	t.Helper()
	kv, err := s.Create(ctxT(t), key, []byte(value))
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	return kv
}

func wantErr(t *testing.T, err, target error, mentions string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("want %v, got %v", target, err)
	}
	if mentions != "" && !strings.Contains(err.Error(), mentions) {
		t.Fatalf("error %q does not name %q", err, mentions)
	}
}

func testGetMissing(t *testing.T, s datastore.Store, p string) {
	_, err := s.Get(ctxT(t), p+"missing")
	wantErr(t, err, datastore.ErrNotFound, p+"missing")
}

func testCreateGet(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	kv := mustCreate(t, s, p+"a", "one")
	if kv.Key != p+"a" || string(kv.Value) != "one" || kv.Revision <= 0 {
		t.Fatalf("create returned %+v", kv)
	}
	got, err := s.Get(ctx, p+"a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != kv.Key || !bytes.Equal(got.Value, kv.Value) || got.Revision != kv.Revision {
		t.Fatalf("get %+v, created %+v", got, kv)
	}
	_, err = s.Create(ctx, p+"a", []byte("two"))
	wantErr(t, err, datastore.ErrExists, p+"a")
	got, _ = s.Get(ctx, p+"a")
	if string(got.Value) != "one" || got.Revision != kv.Revision {
		t.Fatalf("failed create changed the key: %+v", got)
	}
	kv2 := mustCreate(t, s, p+"b", "")
	if kv2.Revision <= kv.Revision {
		t.Fatalf("revisions not increasing: %d then %d", kv.Revision, kv2.Revision)
	}
	got, err = s.Get(ctx, p+"b")
	if err != nil || len(got.Value) != 0 {
		t.Fatalf("empty value: %v %q", err, got.Value)
	}
}

func testList(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	kvs, rev0, err := s.List(ctx, p)
	if err != nil || len(kvs) != 0 || rev0 <= 0 {
		t.Fatalf("empty list: %v %v rev %d", err, kvs, rev0)
	}
	// Created out of order; a sibling prefix must not leak in.
	var last datastore.KV
	for _, k := range []string{"c", "a/x", "b", "a/y"} {
		last = mustCreate(t, s, p+"dir/"+k, "v-"+k)
	}
	mustCreate(t, s, p+"dirx", "sibling")
	kvs, rev, err := s.List(ctx, p+"dir/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, strings.TrimPrefix(kv.Key, p+"dir/"))
		if string(kv.Value) != "v-"+strings.TrimPrefix(kv.Key, p+"dir/") || kv.Revision <= rev0 {
			t.Fatalf("bad entry %+v", kv)
		}
	}
	if want := []string{"a/x", "a/y", "b", "c"}; !slices.Equal(keys, want) {
		t.Fatalf("list keys %v, want %v", keys, want)
	}
	if rev <= last.Revision {
		t.Fatalf("list revision %d older than the last write %d", rev, last.Revision)
	}
}

func testListPaged(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	const n = 2500 // more than one page of the etcd backend
	for i := 0; i < n; i += 500 {
		var ops []datastore.Op
		for j := i; j < i+500; j++ {
			ops = append(ops, datastore.Op{Type: datastore.OpCreate, Key: fmt.Sprintf("%sk%05d", p, j), Value: []byte("v")})
		}
		if _, err := s.Txn(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	kvs, _, err := s.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != n {
		t.Fatalf("listed %d keys, want %d", len(kvs), n)
	}
	for i, kv := range kvs {
		if want := fmt.Sprintf("%sk%05d", p, i); kv.Key != want {
			t.Fatalf("entry %d is %s, want %s", i, kv.Key, want)
		}
	}
}

func testUpdateCAS(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	kv := mustCreate(t, s, p+"a", "1")
	kv2, err := s.Update(ctx, p+"a", []byte("2"), kv.Revision)
	if err != nil || kv2.Revision <= kv.Revision || string(kv2.Value) != "2" {
		t.Fatalf("CAS update: %v %+v", err, kv2)
	}
	// A writer holding the old revision loses.
	_, err = s.Update(ctx, p+"a", []byte("stale"), kv.Revision)
	wantErr(t, err, datastore.ErrConflict, p+"a")
	got, _ := s.Get(ctx, p+"a")
	if string(got.Value) != "2" || got.Revision != kv2.Revision {
		t.Fatalf("conflicting update changed the key: %+v", got)
	}
	_, err = s.Update(ctx, p+"missing", []byte("x"), kv.Revision)
	wantErr(t, err, datastore.ErrNotFound, p+"missing")
	// Revision 0: unconditional, on an existing and on a missing key.
	kv3, err := s.Update(ctx, p+"a", []byte("3"), 0)
	if err != nil || kv3.Revision <= kv2.Revision {
		t.Fatalf("unconditional update: %v %+v", err, kv3)
	}
	kv4, err := s.Update(ctx, p+"new", []byte("n"), 0)
	if err != nil {
		t.Fatalf("unconditional update of a missing key: %v", err)
	}
	if got, err := s.Get(ctx, p+"new"); err != nil || got.Revision != kv4.Revision || string(got.Value) != "n" {
		t.Fatalf("get after unconditional put: %v %+v", err, got)
	}
}

func testDeleteCAS(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	kv := mustCreate(t, s, p+"a", "1")
	kv2, err := s.Update(ctx, p+"a", []byte("2"), kv.Revision)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.Delete(ctx, p+"a", kv.Revision), datastore.ErrConflict, p+"a")
	if _, err := s.Get(ctx, p+"a"); err != nil {
		t.Fatalf("conflicting delete removed the key: %v", err)
	}
	if err := s.Delete(ctx, p+"a", kv2.Revision); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, p+"a")
	wantErr(t, err, datastore.ErrNotFound, "")
	wantErr(t, s.Delete(ctx, p+"a", 0), datastore.ErrNotFound, p+"a")
	wantErr(t, s.Delete(ctx, p+"a", kv2.Revision), datastore.ErrNotFound, p+"a")
	mustCreate(t, s, p+"b", "1")
	if err := s.Delete(ctx, p+"b", 0); err != nil {
		t.Fatalf("unconditional delete: %v", err)
	}
}

func testTxnCommits(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	put := mustCreate(t, s, p+"put", "old")
	del := mustCreate(t, s, p+"del", "old")
	mustCreate(t, s, p+"del0", "old")
	rev, err := s.Txn(ctx, []datastore.Op{
		{Type: datastore.OpCreate, Key: p + "new", Value: []byte("n")},
		{Type: datastore.OpPut, Key: p + "put", Value: []byte("p"), Revision: put.Revision},
		{Type: datastore.OpPut, Key: p + "put0", Value: []byte("p0")},
		{Type: datastore.OpDelete, Key: p + "del", Revision: del.Revision},
		{Type: datastore.OpDelete, Key: p + "del0"},
		{Type: datastore.OpDelete, Key: p + "gone"}, // missing, revision 0: fine
	})
	if err != nil {
		t.Fatal(err)
	}
	kvs, lrev, err := s.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range kvs {
		got[strings.TrimPrefix(kv.Key, p)] = string(kv.Value)
		if kv.Revision != rev {
			t.Fatalf("%s has revision %d, the txn committed at %d", kv.Key, kv.Revision, rev)
		}
	}
	want := map[string]string{"new": "n", "put": "p", "put0": "p0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after txn: %v, want %v", got, want)
	}
	if lrev != rev {
		t.Fatalf("list revision %d, txn revision %d", lrev, rev)
	}
	// An empty transaction is a no-op returning the current revision.
	if erev, err := s.Txn(ctx, nil); err != nil || erev != rev {
		t.Fatalf("empty txn: %v, revision %d want %d", err, erev, rev)
	}
}

func testTxnAllOrNothing(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	a := mustCreate(t, s, p+"a", "1")
	if _, err := s.Update(ctx, p+"a", []byte("2"), a.Revision); err != nil {
		t.Fatal(err)
	}
	b := mustCreate(t, s, p+"b", "1")
	_, before, _ := s.List(ctx, p)
	check := func() {
		t.Helper()
		kvs, rev, err := s.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if rev != before || len(kvs) != 2 || string(kvs[0].Value) != "2" || string(kvs[1].Value) != "1" {
			t.Fatalf("failed txn wrote something: rev %d (was %d) %+v", rev, before, kvs)
		}
	}
	// The failing op is in the middle: nothing before or after it happens.
	_, err := s.Txn(ctx, []datastore.Op{
		{Type: datastore.OpCreate, Key: p + "c", Value: []byte("c")},
		{Type: datastore.OpPut, Key: p + "a", Value: []byte("x"), Revision: a.Revision}, // stale
		{Type: datastore.OpDelete, Key: p + "b", Revision: b.Revision},
	})
	wantErr(t, err, datastore.ErrConflict, p+"a")
	check()
	_, err = s.Txn(ctx, []datastore.Op{
		{Type: datastore.OpPut, Key: p + "c", Value: []byte("c")},
		{Type: datastore.OpCreate, Key: p + "b", Value: []byte("x")}, // exists
	})
	wantErr(t, err, datastore.ErrExists, p+"b")
	check()
	_, err = s.Txn(ctx, []datastore.Op{
		{Type: datastore.OpPut, Key: p + "c", Value: []byte("c")},
		{Type: datastore.OpDelete, Key: p + "gone", Revision: b.Revision}, // missing with a revision
	})
	wantErr(t, err, datastore.ErrConflict, p+"gone")
	check()
}

func testTxnRefusesBadOps(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	_, err := s.Txn(ctx, []datastore.Op{
		{Type: datastore.OpPut, Key: p + "a", Value: []byte("1")},
		{Type: datastore.OpDelete, Key: p + "a"},
	})
	if err == nil || !strings.Contains(err.Error(), p+"a") {
		t.Fatalf("duplicate key in txn: want an error naming it, got %v", err)
	}
	if _, err := s.Txn(ctx, []datastore.Op{{Type: datastore.OpPut, Key: "", Value: []byte("1")}}); err == nil {
		t.Fatal("empty key accepted")
	}
	if _, err := s.Get(ctx, p+"a"); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("refused txn wrote: %v", err)
	}
}

// watcher reads a watch channel with deadlines.
type watcher struct {
	t  *testing.T
	ch <-chan datastore.Event
}

func (w watcher) next() datastore.Event {
	w.t.Helper()
	select {
	case ev, ok := <-w.ch:
		if !ok {
			w.t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(eventTimeout):
		w.t.Fatalf("no watch event within %v", eventTimeout)
	}
	return datastore.Event{}
}

// expectSnapshot reads EventReset, the puts of a listing and EventInSync,
// and returns the keys (relative to p) and values, and the sync revision.
func (w watcher) expectSnapshot(p string) (map[string]string, int64) {
	w.t.Helper()
	ev := w.next()
	if ev.Type != datastore.EventReset {
		w.t.Fatalf("want EventReset first, got %+v", ev)
	}
	state := map[string]string{}
	var lastKey string
	for {
		ev := w.next()
		switch ev.Type {
		case datastore.EventPut:
			if ev.KV.Key <= lastKey {
				w.t.Fatalf("snapshot not sorted: %s after %s", ev.KV.Key, lastKey)
			}
			lastKey = ev.KV.Key
			state[strings.TrimPrefix(ev.KV.Key, p)] = string(ev.KV.Value)
		case datastore.EventInSync:
			return state, ev.Revision
		default:
			w.t.Fatalf("unexpected event in snapshot: %+v", ev)
		}
	}
}

func (w watcher) expect(typ datastore.EventType, key, value string, rev int64) datastore.Event {
	w.t.Helper()
	ev := w.next()
	if ev.Type != typ || ev.KV.Key != key || string(ev.KV.Value) != value || (rev != 0 && (ev.Revision != rev || ev.KV.Revision != rev)) {
		w.t.Fatalf("got event %d %s=%q rev %d/%d, want %d %s=%q rev %d", ev.Type, ev.KV.Key, ev.KV.Value, ev.Revision, ev.KV.Revision, typ, key, value, rev)
	}
	return ev
}

func testWatchInitialState(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	w := watcher{t, s.Watch(ctx, p+"dir/")}
	state, rev := w.expectSnapshot(p + "dir/")
	if len(state) != 0 || rev <= 0 {
		t.Fatalf("empty prefix: state %v rev %d", state, rev)
	}
	mustCreate(t, s, p+"dir/b", "2")
	last := mustCreate(t, s, p+"dir/a", "1")
	mustCreate(t, s, p+"other", "x")
	w2 := watcher{t, s.Watch(ctx, p+"dir/")}
	state, rev = w2.expectSnapshot(p + "dir/")
	if fmt.Sprint(state) != fmt.Sprint(map[string]string{"a": "1", "b": "2"}) || rev < last.Revision {
		t.Fatalf("snapshot %v at %d", state, rev)
	}
}

func testWatchLive(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	a := mustCreate(t, s, p+"a", "1")
	w := watcher{t, s.Watch(ctx, p)}
	if state, _ := w.expectSnapshot(p); len(state) != 1 {
		t.Fatalf("snapshot %v", state)
	}
	mustCreate(t, s, "/calico/conformance-outside/"+testutil.RandSuffix(6), "not mine")
	b := mustCreate(t, s, p+"b", "2")
	w.expect(datastore.EventPut, p+"b", "2", b.Revision)
	a2, err := s.Update(ctx, p+"a", []byte("1b"), a.Revision)
	if err != nil {
		t.Fatal(err)
	}
	w.expect(datastore.EventPut, p+"a", "1b", a2.Revision)
	if err := s.Delete(ctx, p+"b", 0); err != nil {
		t.Fatal(err)
	}
	del := w.expect(datastore.EventDelete, p+"b", "", 0)
	if del.Revision <= a2.Revision || del.KV.Revision != del.Revision || del.KV.Value != nil {
		t.Fatalf("delete event %+v", del)
	}
	// A transaction arrives as its changes in order, all at its revision.
	rev, err := s.Txn(ctx, []datastore.Op{
		{Type: datastore.OpCreate, Key: p + "t1", Value: []byte("x")},
		{Type: datastore.OpDelete, Key: p + "a", Revision: a2.Revision},
		{Type: datastore.OpPut, Key: p + "t0", Value: []byte("y")},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.expect(datastore.EventPut, p+"t1", "x", rev)
	w.expect(datastore.EventDelete, p+"a", "", rev)
	w.expect(datastore.EventPut, p+"t0", "y", rev)
	// Nothing else is pending (the outside key never shows up).
	select {
	case ev := <-w.ch:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func testWatchCompaction(t *testing.T, s datastore.Store, p string) {
	ctx := ctxT(t)
	c, ok := s.(datastore.Compactor)
	if !ok {
		t.Fatal("store does not implement Compactor")
	}
	a := mustCreate(t, s, p+"a", "1")
	mustCreate(t, s, p+"b", "1")

	// Hold the watcher after its first listing, change and compact the
	// store behind its back, then let it go: it must find its history gone
	// and re-list instead of missing the changes.
	paused := make(chan int64)
	resume := make(chan struct{})
	first := true
	datastore.SetWatchHook(s, func(rev int64) {
		if first {
			first = false
			paused <- rev
			<-resume
		}
	})
	w := watcher{t, s.Watch(ctx, p)}
	state, _ := w.expectSnapshot(p)
	if len(state) != 2 {
		t.Fatalf("first snapshot %v", state)
	}
	<-paused
	if _, err := s.Update(ctx, p+"a", []byte("2"), a.Revision); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, p+"b", 0); err != nil {
		t.Fatal(err)
	}
	cKV := mustCreate(t, s, p+"c", "1")
	if err := c.Compact(ctx, cKV.Revision); err != nil {
		t.Fatal(err)
	}
	close(resume)
	state, rev := w.expectSnapshot(p)
	if fmt.Sprint(state) != fmt.Sprint(map[string]string{"a": "2", "c": "1"}) || rev < cKV.Revision {
		t.Fatalf("snapshot after compaction %v at %d", state, rev)
	}
	// And it follows live changes again.
	d := mustCreate(t, s, p+"d", "1")
	w.expect(datastore.EventPut, p+"d", "1", d.Revision)
}

func testWatchEndsWithContext(t *testing.T, s datastore.Store, p string) {
	ctx, cancel := context.WithCancel(context.Background())
	w := watcher{t, s.Watch(ctx, p)}
	w.expectSnapshot(p)
	cancel()
	drainUntilClosed(t, w.ch)
}

func testWatchEndsWithClose(t *testing.T, s datastore.Store, p string) {
	w := watcher{t, s.Watch(ctxT(t), p)}
	w.expectSnapshot(p)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	drainUntilClosed(t, w.ch)
	if _, err := s.Get(context.Background(), p+"a"); err == nil {
		t.Fatal("get on a closed store succeeded")
	}
}

func drainUntilClosed(t *testing.T, ch <-chan datastore.Event) {
	t.Helper()
	timeout := time.After(eventTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("watch channel still open %v after its end", eventTimeout)
		}
	}
}

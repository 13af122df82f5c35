package datastore

import (
	"context"
	"errors"
	"testing"
)

// The in-memory history is bounded like an auto-compacting etcd: old
// revisions go, recent ones stay watchable.
func TestMemoryHistoryIsBounded(t *testing.T) {
	s := NewMemory().(*memStore)
	ctx := context.Background()
	kv, err := s.Create(ctx, "/k", []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	first := kv.Revision
	for range maxMemHistory {
		if kv, err = s.Update(ctx, "/k", []byte("x"), kv.Revision); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.history); n > maxMemHistory {
		t.Fatalf("history holds %d events, bound is %d", n, maxMemHistory)
	}
	err = s.follow(ctx, "/", first, func(Event) bool { return false })
	if !errors.Is(err, errCompacted) {
		t.Fatalf("follow from a trimmed revision: want errCompacted, got %v", err)
	}
	if err := s.Compact(ctx, kv.Revision+1); err == nil {
		t.Fatal("compaction in the future accepted")
	}
}

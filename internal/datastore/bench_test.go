package datastore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
)

// benchBackends gives each benchmark the stores worth comparing: embedded
// etcd as production runs it (fsync on), the test server (no fsync) and the
// in-memory store.
func benchBackends(b *testing.B) map[string]func(b *testing.B) datastore.Store {
	return map[string]func(b *testing.B) datastore.Store{
		"memory": func(b *testing.B) datastore.Store {
			s := datastore.NewMemory()
			b.Cleanup(func() { _ = s.Close() })
			return s
		},
		"etcd-test": func(b *testing.B) datastore.Store {
			return etcdtest.Store(b, etcdtest.Start(b))
		},
		"etcd-fsync": func(b *testing.B) datastore.Store {
			ctx := context.Background()
			emb, err := datastore.RunEmbedded(ctx, datastore.EmbeddedConfig{
				DataDir:          filepath.Join(b.TempDir(), "etcd"),
				ListenClientURLs: []string{"http://127.0.0.1:0"},
				ListenPeerURLs:   []string{"http://127.0.0.1:0"},
				LogLevel:         "error",
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = emb.Close() })
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := emb.WaitReady(wctx); err != nil {
				b.Fatal(err)
			}
			return etcdtest.Store(b, emb.Endpoints())
		},
	}
}

// BenchmarkCASWrites1000: one op is 1,000 sequential compare-and-swap
// updates of one key, each using the revision the previous one returned.
func BenchmarkCASWrites1000(b *testing.B) {
	for _, name := range []string{"memory", "etcd-test", "etcd-fsync"} {
		b.Run(name, func(b *testing.B) {
			s := benchBackends(b)[name](b)
			ctx := context.Background()
			kv, err := s.Create(ctx, "/calico/bench/cas", []byte("0"))
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				for i := range 1000 {
					if kv, err = s.Update(ctx, kv.Key, fmt.Appendf(nil, "%d", i), kv.Revision); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*1000), "µs/write")
		})
	}
}

// BenchmarkList1000: one op lists 1,000 keys of policy-sized (600 byte) values.
func BenchmarkList1000(b *testing.B) {
	for _, name := range []string{"memory", "etcd-test"} {
		b.Run(name, func(b *testing.B) {
			s := benchBackends(b)[name](b)
			ctx := context.Background()
			value := []byte(strings.Repeat("x", 600))
			prefix := datastore.ResourcePrefix("networkpolicies")
			for i := 0; i < 1000; i += 250 {
				var ops []datastore.Op
				for j := i; j < i+250; j++ {
					ops = append(ops, datastore.Op{Type: datastore.OpCreate, Key: datastore.ResourceKey("networkpolicies", "default", fmt.Sprintf("p%04d", j)), Value: value})
				}
				if _, err := s.Txn(ctx, ops); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				kvs, _, err := s.List(ctx, prefix)
				if err != nil || len(kvs) != 1000 {
					b.Fatalf("list: %v, %d keys", err, len(kvs))
				}
			}
		})
	}
}

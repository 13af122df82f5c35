package ipam

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks run against a real embedded etcd (hack/bench-ipam.sh runs
// them). Each op is one AutoAssign of one IPv4 address with its own handle,
// as a container start does. They report assignments per second and the
// compare-and-swap retries the calls needed.

func quiet() Option { return WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

func BenchmarkAssignSequential(b *testing.B) {
	st, _ := etcdStore(b)
	putPool(b, st, "p", "10.64.0.0/12", 26)
	a := New(st, quiet())
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := a.AutoAssign(ctx, AssignArgs{Handle: fmt.Sprintf("s%d", i), Node: "n1", Num4: 1, Attrs: Attrs{Kind: KindManual}}); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "assigns/s")
	s := a.Stats()
	b.ReportMetric(float64(s.Retries), "retries-total")
	b.ReportMetric(float64(s.MaxCallRetries), "retries-max")
}

// BenchmarkAssignConcurrent8: 8 clients, each with its own etcd connection
// (as 8 processes would have), 4 on each of 2 nodes, so that 4 writers race
// for the same block all the time: the worst contention the design sees.
func BenchmarkAssignConcurrent8(b *testing.B) { benchConcurrent(b, 8, 2) }

// BenchmarkAssignConcurrent8Nodes8: 8 clients on 8 nodes: no two clients
// share a block, so retries come only from claiming blocks.
func BenchmarkAssignConcurrent8Nodes8(b *testing.B) { benchConcurrent(b, 8, 8) }

func benchConcurrent(b *testing.B, clients, nodes int) {
	st, open := etcdStore(b)
	putPool(b, st, "p", "10.64.0.0/12", 26)
	allocs := make([]*Allocator, clients)
	for i := range allocs {
		allocs[i] = New(open(), quiet())
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("n%d", c%nodes)
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if _, err := allocs[c].AutoAssign(context.Background(), AssignArgs{Handle: fmt.Sprintf("c%d", i), Node: node, Num4: 1, Attrs: Attrs{Kind: KindManual}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	var total, maxR int64
	for _, a := range allocs {
		s := a.Stats()
		total += s.Retries
		maxR = max(maxR, s.MaxCallRetries)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "assigns/s")
	b.ReportMetric(float64(total), "retries-total")
	b.ReportMetric(float64(total)/float64(b.N), "retries/op")
	b.ReportMetric(float64(maxR), "retries-max")
}

package agent_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/testutil"
)

// BenchmarkAgentHeap runs the agent in this process with 10,000 endpoints
// and 1,000 policies programmed and reports its live heap after a full GC;
// with HEAP_PROFILE=FILE it writes a pprof heap profile at that moment
// (`go tool pprof -sample_index=inuse_space -top FILE`), the view behind
// the node's RSS. The etcd server of the test runs in the same process:
// read the profile by function, not in total.
func BenchmarkAgentHeap(b *testing.B) {
	const nEP, nPol = 10000, 1000
	e := newEnv(b, envOpts{quiet: true, noStart: true})
	writeObjects(b, e.store, benchState(nEP, nPol))
	for b.Loop() {
		before := liveHeap()
		cfg := e.cfg
		cfg.NetNS = e.host.Path()
		a, err := agent.New(cfg, "bench")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		testutil.Eventually(b, 2*time.Minute, func() error {
			if s := a.Status(); !s.Ready || s.Endpoints != nEP {
				return errors.New("not programmed yet")
			}
			return nil
		})
		live := liveHeap() - before
		if f := os.Getenv("HEAP_PROFILE"); f != "" {
			out, err := os.Create(f)
			if err != nil {
				b.Fatal(err)
			}
			// A heap profile shows the heap as of the last finished GC cycle.
			runtime.GC()
			runtime.GC()
			if err := pprof.Lookup("heap").WriteTo(out, 0); err != nil {
				b.Fatal(err)
			}
			_ = out.Close()
		}
		b.ReportMetric(live, "agent-live-heap-MiB")
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

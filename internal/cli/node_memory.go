package cli

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/calico-docker/calico/internal/nodectl"
)

// nodeGCPercent is the garbage collector's target for `calico node run`
// when GOGC is not set: the heap may grow to 1.5x what is live instead of
// Go's default 2x. The node's allocation rate is low once it has
// programmed the host (an apply allocates for what changed), so collecting
// more often costs little CPU; at 10,000 endpoints it keeps about 35 MiB of
// RSS that the default would hold as headroom (BENCHMARKS.md, node RSS).
const nodeGCPercent = 50

// tuneNodeMemory sets the node's GC target unless the user chose one
// (GOGC or GOMEMLIMIT in the environment win, as the Go runtime reads them).
func tuneNodeMemory(log *slog.Logger) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(nodeGCPercent)
	log.Debug("garbage collector target", "gogc", nodeGCPercent)
}

// releaseAfterFirstProgramming returns the memory of the first full
// programming to the OS once the node is ready: building the whole ruleset
// and route table at start is a one-off peak (the batch to the kernel, link
// and route dumps) that the Go runtime would otherwise give back only
// slowly, leaving the node's RSS at that peak.
func releaseAfterFirstProgramming(ctx context.Context, status func() nodectl.Health) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if status().Ready {
				debug.FreeOSMemory()
				return
			}
		}
	}
}

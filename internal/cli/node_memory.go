package cli

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/calico-docker/calico/internal/nodectl"
)

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

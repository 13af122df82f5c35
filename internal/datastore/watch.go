package datastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Tuning of the watch loop. A watcher reports an unreachable datastore within
// about probeInterval+probeTimeout and retries at most maxBackoff apart, so
// it catches up within a few seconds of the datastore coming back.
const (
	listTimeout    = 5 * time.Second
	probeInterval  = time.Second
	probeTimeout   = 2 * time.Second
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 2 * time.Second
	watchChanDepth = 256
)

// watchBackend is what the shared watch loop needs from a store.
type watchBackend interface {
	List(ctx context.Context, prefix string) ([]KV, int64, error)
	// follow streams changes under prefix from revision from on, calling
	// emit for each; it returns when ctx is done (ctx.Err()), when emit
	// returns false, when history from `from` is gone (errCompacted) or on
	// any other failure.
	follow(ctx context.Context, prefix string, from int64, emit func(Event) bool) error
}

// watchHooks lets tests observe the loop at a deterministic point.
type watchHooks struct {
	// afterSync runs after each EventInSync, before live changes are
	// followed from rev+1. Tests block here to compact meanwhile.
	afterSync func(rev int64)
}

// startWatch runs the watch loop in a goroutine. The loop ends (and closes
// the channel) when ctx is done or closed is (the store was closed).
func startWatch(ctx context.Context, closed <-chan struct{}, b watchBackend, prefix string, hooks watchHooks, log *slog.Logger) <-chan Event {
	out := make(chan Event, watchChanDepth)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer close(out)
		defer cancel()
		runWatch(ctx, b, prefix, out, hooks, log)
	}()
	return out
}

func runWatch(ctx context.Context, b watchBackend, prefix string, out chan<- Event, hooks watchHooks, log *slog.Logger) {
	emit := func(ev Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	backoff := minBackoff
	wait := func() bool {
		d := backoff/2 + rand.N(backoff/2+1) // jitter: keep many watchers from retrying in step
		backoff = min(backoff*2, maxBackoff)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, listTimeout)
		kvs, rev, err := b.List(lctx, prefix)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Debug("watch: list failed", "prefix", prefix, "err", err)
			if !emit(Event{Type: EventError, Err: fmt.Errorf("watch %s: %w", prefix, err)}) || !wait() {
				return
			}
			continue
		}
		backoff = minBackoff
		if !emit(Event{Type: EventReset, Revision: rev}) {
			return
		}
		for _, kv := range kvs {
			if !emit(Event{Type: EventPut, KV: kv, Revision: kv.Revision}) {
				return
			}
		}
		if !emit(Event{Type: EventInSync, Revision: rev}) {
			return
		}
		if hooks.afterSync != nil {
			hooks.afterSync(rev)
		}
		err = b.follow(ctx, prefix, rev+1, emit)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errCompacted) {
			// Not an error for the consumer: it gets a fresh full state next.
			log.Info("watch: history compacted, re-listing", "prefix", prefix, "from", rev+1)
			continue
		}
		log.Debug("watch: stream failed", "prefix", prefix, "err", err)
		if !emit(Event{Type: EventError, Err: fmt.Errorf("watch %s: %w", prefix, err)}) || !wait() {
			return
		}
	}
}

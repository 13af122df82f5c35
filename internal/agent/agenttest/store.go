package agenttest

import (
	"context"
	"fmt"
	"sync"

	"github.com/calico-docker/calico/internal/datastore"
)

// Store is a datastore.Store over the in-memory backend whose faults a test
// sets: the datastore gone (every call fails as unreachable, live watches
// are cut), a watch cut (the connection dropped), and a watcher that fell
// behind a compaction. Its watches behave as the real ones do after such a
// fault: an EventError while unreachable, then a re-list (EventReset, the
// full state, EventInSync) once it is back; after a compaction the re-list
// comes without an error.
type Store struct {
	inner datastore.Store

	mu   sync.Mutex
	down bool
	lag  bool
	// cut is closed (and replaced) to end every live watch stream; compacted
	// says whether that was a compaction (a re-list without an error).
	cut       chan struct{}
	compacted bool
}

// NewStore returns an empty Store with no fault set.
func NewStore() *Store {
	return &Store{inner: datastore.NewMemory(), cut: make(chan struct{})}
}

// Inner is the store without faults: writes through it reach the data even
// while the Store is down, as changes made by others during an outage do.
func (s *Store) Inner() datastore.Store { return s.inner }

// errDown is what every call returns while the Store is down.
var errDown = fmt.Errorf("fake datastore: %w", datastore.ErrUnavailable)

// cutLocked ends the live watch streams.
func (s *Store) cutLocked(compacted bool) {
	close(s.cut)
	s.cut = make(chan struct{})
	s.compacted = compacted
}

// SetDown takes the datastore away (true) or brings it back (false). Going
// down cuts every live watch.
func (s *Store) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if down == s.down {
		return
	}
	s.down = down
	s.cutLocked(false)
}

// CutWatches drops every live watch's connection: the watchers report an
// error and re-list.
func (s *Store) CutWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutLocked(false)
}

// Lag makes the live watchers fall behind: changes from now on are not
// delivered to them, until Compact.
func (s *Store) Lag() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = true
}

// Compact compacts the history up to the current revision: a watcher that
// fell behind (Lag) cannot resume and re-lists, so it sees what it missed
// only as a new full state (deletions as absence).
func (s *Store) Compact(ctx context.Context) error {
	_, rev, err := s.inner.List(ctx, "/")
	if err != nil {
		return err
	}
	if err := s.inner.(datastore.Compactor).Compact(ctx, rev); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = false
	s.cutLocked(true)
	return nil
}

func (s *Store) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// Get implements datastore.Store.
func (s *Store) Get(ctx context.Context, key string) (datastore.KV, error) {
	if s.isDown() {
		return datastore.KV{}, fmt.Errorf("get %s: %w", key, errDown)
	}
	return s.inner.Get(ctx, key)
}

// List implements datastore.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]datastore.KV, int64, error) {
	if s.isDown() {
		return nil, 0, fmt.Errorf("list %s: %w", prefix, errDown)
	}
	return s.inner.List(ctx, prefix)
}

// Create implements datastore.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte) (datastore.KV, error) {
	if s.isDown() {
		return datastore.KV{}, fmt.Errorf("create %s: %w", key, errDown)
	}
	return s.inner.Create(ctx, key, value)
}

// Update implements datastore.Store.
func (s *Store) Update(ctx context.Context, key string, value []byte, revision int64) (datastore.KV, error) {
	if s.isDown() {
		return datastore.KV{}, fmt.Errorf("update %s: %w", key, errDown)
	}
	return s.inner.Update(ctx, key, value, revision)
}

// Delete implements datastore.Store.
func (s *Store) Delete(ctx context.Context, key string, revision int64) error {
	if s.isDown() {
		return fmt.Errorf("delete %s: %w", key, errDown)
	}
	return s.inner.Delete(ctx, key, revision)
}

// Txn implements datastore.Store.
func (s *Store) Txn(ctx context.Context, ops []datastore.Op) (int64, error) {
	if s.isDown() {
		return 0, fmt.Errorf("txn: %w", errDown)
	}
	return s.inner.Txn(ctx, ops)
}

// Close closes the inner store.
func (s *Store) Close() error { return s.inner.Close() }

// Watch implements datastore.Store: the inner store's watch, restarted
// (from a fresh list) after every cut, and an EventError while down.
func (s *Store) Watch(ctx context.Context, prefix string) <-chan datastore.Event {
	out := make(chan datastore.Event, 64)
	go func() {
		defer close(out)
		emit := func(ev datastore.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for ctx.Err() == nil {
			s.mu.Lock()
			down, cut := s.down, s.cut
			s.mu.Unlock()
			if down {
				if !emit(datastore.Event{Type: datastore.EventError, Err: fmt.Errorf("watch %s: %w", prefix, errDown)}) {
					return
				}
				select {
				case <-cut: // back up (or cut again): look again
				case <-ctx.Done():
					return
				}
				continue
			}
			if !s.follow(ctx, prefix, cut, emit) {
				return
			}
			s.mu.Lock()
			compacted := s.compacted
			s.mu.Unlock()
			if !compacted && !emit(datastore.Event{Type: datastore.EventError, Err: fmt.Errorf("watch %s: connection lost: %w", prefix, datastore.ErrUnavailable)}) {
				return
			}
		}
	}()
	return out
}

// follow forwards one inner watch until cut is closed (true) or ctx ends
// (false). While the Store lags, changes are dropped.
func (s *Store) follow(ctx context.Context, prefix string, cut <-chan struct{}, emit func(datastore.Event) bool) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := s.inner.Watch(wctx, prefix)
	for {
		select {
		case <-cut:
			return true
		case <-ctx.Done():
			return false
		case ev, ok := <-in:
			if !ok {
				return ctx.Err() == nil
			}
			s.mu.Lock()
			lag := s.lag && (ev.Type == datastore.EventPut || ev.Type == datastore.EventDelete)
			s.mu.Unlock()
			if lag {
				continue
			}
			if !emit(ev) {
				return false
			}
		}
	}
}

package datastore

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// maxMemHistory bounds the in-memory change history; past it the oldest
// half is compacted away, as an etcd server with auto-compaction would.
const maxMemHistory = 100_000

type memValue struct {
	value     []byte
	createRev int64
	modRev    int64
}

// memStore is the in-memory Store for pure unit tests. It keeps etcd's
// semantics: one revision counter bumped by every write (once per Txn), mod
// revisions per key, a change history that Watch follows and Compact trims.
type memStore struct {
	mu         sync.Mutex
	rev        int64
	data       map[string]memValue
	history    []Event // EventPut/EventDelete with Revision >= compactRev, oldest first
	compactRev int64
	subs       map[*memSub]struct{}
	closed     chan struct{}
	closeOnce  sync.Once
	hooks      watchHooks
	log        *slog.Logger
}

// memSub is one live follower: writers append under the store lock, the
// follower drains without it, so a slow consumer never blocks writers.
type memSub struct {
	prefix string
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
}

func (m *memSub) push(evs ...Event) {
	m.mu.Lock()
	m.queue = append(m.queue, evs...)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// NewMemory returns an empty in-memory Store. Revisions start at 1 like a
// fresh etcd, so the first write gets revision 2. For unit tests only: it
// has no persistence and no size limits.
func NewMemory() Store {
	return &memStore{
		rev:        1,
		data:       map[string]memValue{},
		subs:       map[*memSub]struct{}{},
		compactRev: 0,
		closed:     make(chan struct{}),
		log:        slog.Default().With("component", "datastore", "backend", "memory"),
	}
}

// check returns an error when the store is closed or ctx is done.
func (s *memStore) check(ctx context.Context) error {
	select {
	case <-s.closed:
		return errClosed
	default:
	}
	return ctx.Err()
}

// commit applies changes at a new revision and notifies followers. The
// caller holds s.mu and has checked every condition.
func (s *memStore) commit(changes []Op) int64 {
	var evs []Event
	rev := s.rev + 1
	for _, op := range changes {
		switch op.Type {
		case OpDelete:
			if _, ok := s.data[op.Key]; !ok {
				continue
			}
			delete(s.data, op.Key)
			evs = append(evs, Event{Type: EventDelete, KV: KV{Key: op.Key, Revision: rev}, Revision: rev})
		default:
			v := append([]byte(nil), op.Value...)
			cur, ok := s.data[op.Key]
			create := rev
			if ok {
				create = cur.createRev
			}
			s.data[op.Key] = memValue{value: v, createRev: create, modRev: rev}
			evs = append(evs, Event{Type: EventPut, KV: KV{Key: op.Key, Value: v, Revision: rev}, Revision: rev})
		}
	}
	if len(evs) == 0 {
		return s.rev // nothing changed: etcd does not bump the revision either
	}
	s.rev = rev
	s.history = append(s.history, evs...)
	if len(s.history) > maxMemHistory {
		s.compactLocked(s.history[len(s.history)/2].Revision)
	}
	for sub := range s.subs {
		var mine []Event
		for _, ev := range evs {
			if strings.HasPrefix(ev.KV.Key, sub.prefix) {
				mine = append(mine, ev)
			}
		}
		if len(mine) > 0 {
			sub.push(mine...)
		}
	}
	return rev
}

func (s *memStore) kv(key string) (KV, bool) {
	v, ok := s.data[key]
	if !ok {
		return KV{}, false
	}
	return KV{Key: key, Value: append([]byte(nil), v.value...), Revision: v.modRev}, true
}

func (s *memStore) Get(ctx context.Context, key string) (KV, error) {
	if err := s.check(ctx); err != nil {
		return KV{}, fmt.Errorf("get %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kv, ok := s.kv(key)
	if !ok {
		return KV{}, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	return kv, nil
}

func (s *memStore) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []KV
	for k := range s.data {
		if strings.HasPrefix(k, prefix) {
			kv, _ := s.kv(k)
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, s.rev, nil
}

func (s *memStore) Create(ctx context.Context, key string, value []byte) (KV, error) {
	if err := s.check(ctx); err != nil {
		return KV{}, fmt.Errorf("create %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.data[key]; ok {
		return KV{}, fmt.Errorf("create %s: %w", key, ErrExists)
	}
	rev := s.commit([]Op{{Type: OpPut, Key: key, Value: value}})
	return KV{Key: key, Value: value, Revision: rev}, nil
}

func (s *memStore) Update(ctx context.Context, key string, value []byte, revision int64) (KV, error) {
	if err := s.check(ctx); err != nil {
		return KV{}, fmt.Errorf("update %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if revision != 0 {
		cur, ok := s.data[key]
		if !ok {
			return KV{}, fmt.Errorf("update %s: %w", key, ErrNotFound)
		}
		if cur.modRev != revision {
			return KV{}, fmt.Errorf("update %s: revision %d, stored %d: %w", key, revision, cur.modRev, ErrConflict)
		}
	}
	rev := s.commit([]Op{{Type: OpPut, Key: key, Value: value}})
	return KV{Key: key, Value: value, Revision: rev}, nil
}

func (s *memStore) Delete(ctx context.Context, key string, revision int64) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.data[key]
	if !ok {
		return fmt.Errorf("delete %s: %w", key, ErrNotFound)
	}
	if revision != 0 && cur.modRev != revision {
		return fmt.Errorf("delete %s: revision %d, stored %d: %w", key, revision, cur.modRev, ErrConflict)
	}
	s.commit([]Op{{Type: OpDelete, Key: key}})
	return nil
}

func (s *memStore) Txn(ctx context.Context, ops []Op) (int64, error) {
	if err := checkOps(ops); err != nil {
		return 0, err
	}
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("txn of %d ops: %w", len(ops), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		var cur int64
		if v, ok := s.data[op.Key]; ok {
			cur = v.modRev
		}
		if err := condFailure(op, cur); err != nil {
			return 0, err
		}
	}
	return s.commit(ops), nil
}

func (s *memStore) Watch(ctx context.Context, prefix string) <-chan Event {
	return startWatch(ctx, s.closed, s, prefix, s.hooks, s.log)
}

func (s *memStore) follow(ctx context.Context, prefix string, from int64, emit func(Event) bool) error {
	sub := &memSub{prefix: prefix, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	if from < s.compactRev {
		s.mu.Unlock()
		return fmt.Errorf("%w (compacted at %d, wanted %d)", errCompacted, s.compactRev, from)
	}
	var backlog []Event
	for _, ev := range s.history {
		if ev.Revision >= from && strings.HasPrefix(ev.KV.Key, prefix) {
			backlog = append(backlog, ev)
		}
	}
	if len(backlog) > 0 {
		sub.push(backlog...)
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.wake:
		}
		sub.mu.Lock()
		evs := sub.queue
		sub.queue = nil
		sub.mu.Unlock()
		for _, ev := range evs {
			if !emit(ev) {
				return ctx.Err()
			}
		}
	}
}

// Compact drops the history before revision, like etcd's compaction: a
// watcher that has to resume from an older revision re-lists.
func (s *memStore) Compact(ctx context.Context, revision int64) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("compact at %d: %w", revision, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if revision > s.rev {
		return fmt.Errorf("compact at %d: revision is in the future (current %d)", revision, s.rev)
	}
	if revision <= s.compactRev {
		return fmt.Errorf("compact at %d: %w", revision, errCompacted)
	}
	s.compactLocked(revision)
	return nil
}

func (s *memStore) compactLocked(revision int64) {
	i := sort.Search(len(s.history), func(i int) bool { return s.history[i].Revision >= revision })
	s.history = append([]Event(nil), s.history[i:]...)
	s.compactRev = revision
}

func (s *memStore) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

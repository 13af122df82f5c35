package datastore

import (
	"context"
	"errors"
)

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap failed because the stored revision moved on.
	ErrConflict = errors.New("conflict: the resource was modified by someone else (stale resourceVersion)")
	// ErrExists: Create of a key that already exists.
	ErrExists = errors.New("already exists")
	// ErrUnavailable: the datastore could not be reached. The etcd backend
	// returns an *UnavailableError naming the endpoints, which matches it.
	ErrUnavailable = errors.New("datastore unavailable")
)

// KV is one stored key with its value and the etcd mod revision that wrote it.
type KV struct {
	Key      string
	Value    []byte
	Revision int64
}

// OpType names what one operation of a transaction does.
type OpType int

const (
	// OpCreate fails the transaction if the key exists.
	OpCreate OpType = iota
	// OpPut writes unconditionally when Revision is 0, else only if the key's
	// mod revision equals Revision.
	OpPut
	// OpDelete deletes unconditionally when Revision is 0, else only if the key's
	// mod revision equals Revision. Deleting a missing key with Revision 0 is success.
	OpDelete
)

// Op is one operation of an all-or-nothing transaction.
type Op struct {
	Type     OpType
	Key      string
	Value    []byte
	Revision int64
}

// EventType is the kind of a watch event.
type EventType int

const (
	// EventPut: a key was created or updated (KV holds the new value).
	EventPut EventType = iota
	// EventDelete: a key was deleted (KV.Value is nil, KV.Revision is the delete revision).
	EventDelete
	// EventReset: the watcher lost its place (first start or compaction) and
	// re-listed. Consumers drop everything they hold under the prefix; the
	// EventPut events that follow, up to the next EventInSync, are the full state.
	EventReset
	// EventInSync: everything up to Revision has been delivered.
	EventInSync
	// EventError: a non-fatal problem (e.g. the datastore is unreachable); the
	// watcher keeps retrying. Err holds the cause.
	EventError
)

// Event is delivered on a watch channel.
type Event struct {
	Type     EventType
	KV       KV
	Revision int64
	Err      error
}

// Store is the datastore: a key-value store with revisions. Implementations:
// the etcd v3 client backend (production, tests) and an in-memory one for pure
// unit tests only.
type Store interface {
	// Get returns the key or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every key under prefix, sorted by key, and the store revision
	// the listing was read at.
	List(ctx context.Context, prefix string) ([]KV, int64, error)
	// Create writes a new key or fails with ErrExists.
	Create(ctx context.Context, key string, value []byte) (KV, error)
	// Update writes the key if its mod revision equals revision (ErrConflict
	// otherwise, ErrNotFound if missing). revision 0 means unconditional put
	// (which creates a missing key). The returned KV carries the new revision.
	Update(ctx context.Context, key string, value []byte, revision int64) (KV, error)
	// Delete removes the key if its mod revision equals revision (0: any).
	// A missing key gives ErrNotFound.
	Delete(ctx context.Context, key string, revision int64) error
	// Txn applies ops atomically: all or nothing. A failed condition gives
	// ErrExists (OpCreate) or ErrConflict (revision mismatch, including a
	// revision given for a missing key) naming the key. It returns the store
	// revision of the commit; every key written has that mod revision. A key
	// may appear only once per Txn, and an etcd server caps the ops per Txn
	// (--max-txn-ops: 128 by default, 10,000 on our embedded server).
	Txn(ctx context.Context, ops []Op) (int64, error)
	// Watch streams events under prefix until ctx is done (or the store is
	// closed), then closes the channel.
	// It starts with EventReset, the current state as EventPut events, and
	// EventInSync; then live changes. After a compaction or a lost connection it
	// re-lists (EventReset ... EventInSync again). It never gives up while ctx lives.
	// While the datastore is unreachable it sends an EventError (matching
	// ErrUnavailable) every few seconds. Changes of one Txn arrive in op order,
	// all with the Txn's revision. A consumer that stops reading stalls only
	// its own watch.
	Watch(ctx context.Context, prefix string) <-chan Event
	// Close releases the client.
	Close() error
}

// Package datastore is the one place the project talks to its key-value store.
//
// The Store interface (store.go) is the contract: Get/List/Create/Update/
// Delete with etcd mod revisions for compare-and-swap, all-or-nothing Txn, and
// a Watch that always starts with a full listing (EventReset ... EventInSync)
// and re-lists whenever it may have missed something (compaction, lost
// connection). Callers never see etcd types; they test errors with errors.Is
// against ErrNotFound, ErrConflict, ErrExists and ErrUnavailable.
//
// Implementations:
//   - NewEtcd: the etcd v3 client backend, for production and every
//     integration test (embedded etcd or an external cluster).
//   - NewMemory: an in-memory store with the same semantics (revisions,
//     history, compaction, Watch) for pure unit tests only.
//
// RunEmbedded runs an etcd server inside this process (`calico datastore
// run`, and the members of the managed datastore in the nodes). It refuses
// a plaintext listener on a non-loopback address unless InsecurePlaintext
// is set. Members (members.go) lists, adds as learner, promotes and removes
// cluster members.
//
// NewEtcd refuses TLS files with a plaintext endpoint and unreadable files,
// and when the first request fails it diagnoses the endpoints
// (diagnose.go): an endpoint that answers but is not etcd gives a
// *NotEtcdError, a TLS failure a *TLSError; only an outage is
// ErrUnavailable.
//
// Ownership: everything we write lives under two key prefixes,
// ResourcesRoot ("/calico/resources/v3/projectcalico.org/<plural>/
// [<namespace>/]<name>", Calico's own layout, so etcdctl shows familiar keys)
// and IPAMRoot ("/calico/ipam/v2/"). Nothing outside /calico/ is touched.
//
// Invariants:
//   - A KV's Revision is the etcd mod revision of the write that produced it;
//     passing it back to Update/Delete/Txn is the compare-and-swap.
//   - List and Watch results are sorted by key and read at one revision.
//   - Watch never gives up while its context lives and the store is open: it
//     reports problems as EventError and recovers by re-listing.
package datastore

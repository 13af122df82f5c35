// Package syncer turns datastore watches into typed updates for the
// calculation layer: every resource under /calico/resources/v3/ and every
// IPAM block under /calico/ipam/v2/assignment/, decoded, with an in-sync
// signal once the initial state of both has been delivered.
//
// Invariants:
//   - Consumers see only upserts and deletes. When a watch loses its place
//     and re-lists, keys that vanished meanwhile are delivered as deletes after
//     the re-list completes; nothing is deleted before that.
//   - InSync is reported once every watched prefix has delivered its full
//     state, and again after each recovery.
//   - Values that fail to decode are logged and skipped, never fatal: one bad
//     key must not stop a node from programming everything else.
package syncer

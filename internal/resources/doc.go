// Package resources is the one typed client of projectcalico.org/v3
// resources in the datastore. Every reader and writer of resources (the
// CLI, the Docker plugin, the agent, the lab) goes through it, so that a
// resource is decoded, defaulted, validated, given its metadata and encoded
// in one place, the same way whoever writes it.
//
// Operations: Get, List, Create, Update, Apply, Delete and Modify (read,
// change, compare-and-swap, retried on conflict) on one resource; Write and
// DeleteAll on many, in one all-or-nothing transaction (calicoctl's apply,
// create, replace and delete of a manifest); Decode for values that arrive
// some other way (a watch, an export).
//
// Invariants of every write:
//   - The resource is defaulted and validated (api.Default, api.Validate),
//     and cross-resource rules hold: an IPPool overlaps no other pool and
//     keeps its CIDR and block size on update; a policy is created only in
//     a tier that exists (the default tier always does) and a tier is
//     deleted only when empty, never a built-in one (tiers.go); Calico's
//     built-in profile projectcalico-default-allow is never stored,
//     changed or deleted.
//   - metadata.uid and metadata.creationTimestamp are set once, when the
//     resource is created (whatever the caller gave); an update keeps the
//     stored ones. metadata.resourceVersion is never stored: it is the
//     key's mod revision, and a write that names one succeeds only while
//     the key still has it.
//   - The key comes from the kind, namespace and name (Calico's layout:
//     api.StoredName, datastore.ResourceKey), and the stored value is
//     encoded once, by api.EncodeStored: fields of the stored value this
//     project does not know are kept, so an update never drops what a newer
//     Calico wrote.
//   - A write that would change no stored byte of meaning (api.SameStored)
//     is skipped, so the revision moves only on change.
//
// Invariants of every read: a resource's identity (kind, namespace, name)
// is its key; a stored value naming another resource is refused
// (api.DecodeStoredKey). Decoding ignores unknown fields and keeps them
// with the resource, so a newer writer does not break this reader.
// resourceVersion is the key's mod revision.
//
// Left outside on purpose: compat.Initialize writes the objects calicoctl
// creates on its first write as plain JSON (ClusterInformation has no type
// here) and compat.MigratePolicyKeys moves policies between keys, which no
// client operation does; diags dumps raw keys; IPAM blocks, handles and
// affinities are not resources.
package resources

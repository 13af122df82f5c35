// Package api defines the projectcalico.org/v3 resources this project
// understands, with Calico's field names and defaults, and validates them.
//
// It is pure: no I/O, no datastore, no kernel. Decoding is strict: unknown
// kinds and fields are refused. Every field of Calico's v3 schema is
// accepted: the field table (fields.go, fields_table.go) checks the fields
// that have no Go field as Calico's validator does, and says of every field
// whether it acts here, is stored without effect (a warning on write:
// ValidateWarn, Document.Warnings), or is refused because ignoring it would
// widen policy. Fields without a Go field travel with the resource
// (extras.go: kept from the manifest or the stored value, returned by
// MarshalResource and EncodeStored); FieldDocs renders the table for
// docs/resources.md.
//
// The pieces:
//   - The kind table (Kinds, LookupKind, LookupPlural, New): canonical kind,
//     the plural used in datastore keys, whether it is namespaced, and
//     calicoctl's command-line aliases.
//   - Resource: implemented by every kind (GetObjectMeta, GetTypeMeta, Kind).
//     Kind() is a method, so the TypeMeta field is reached as r.TypeMeta.Kind.
//   - Decode / DecodeDocuments / DecodeAndValidate: manifests of YAML
//     documents separated by "---", JSON values, List and <Kind>List. Errors
//     name the document (from 1), the list item, the resource and the field
//     path: `document 2 (NetworkPolicy default/x): spec.ingress[0]...: reason`.
//   - Default: Calico's defaults (namespace "default", policy types, IPPool
//     block size, encapsulation modes, node selector, allowed uses).
//   - Validate: Calico's rules; FieldErrors, one per problem. A valid
//     Calico field is never refused: one without an effect here is stored
//     and ValidateWarn says so.
//   - Unmarshal: lenient decoding of stored resources for readers of the
//     datastore (unknown fields ignored, so a newer writer does not break an
//     older reader).
//   - The stored form (storage.go), the one place that maps client names to
//     Calico's keys and values: StoredName (a policy "x" is stored as
//     "default.x"), EncodeStored (Calico's stored value, keeping every field
//     of the previous value this project does not know), DecodeStored (back
//     to what calicoctl shows), SameStored, PreserveUnknown.
//   - Identity (identity.go): WorkloadEndpoint names derived from the spec
//     as Calico derives them, Calico's endpoint labels, tiered policy names.
//
// Invariants: a resource that passed Default and Validate has a name, a
// namespace exactly when its kind is namespaced, parseable selectors,
// CIDRs and ports, and no field this project ignores without a warning.
// Rule nets may carry host bits, as in Calico; use ParseNet, which masks.
package api

// Package compat keeps the datastore the way Calico's own tools expect it,
// so that the real calicoctl and this project work on one etcd:
//
//   - Initialize creates what calicoctl creates on its first write (the
//     ClusterInformation "default" with a cluster GUID and datastoreReady,
//     and the tiers "default", "adminnetworkpolicy" and
//     "baselineadminnetworkpolicy" with Calico's orders and default
//     actions), and a KubeControllersConfiguration "default", which
//     `calicoctl ipam check` (v3.31) reads. Existing values are never
//     overwritten; fields calicoctl fills in when missing are filled in
//     with compare-and-swap.
//   - MigratePolicyKeys moves policies that older versions of this project
//     stored under their bare name (".../globalnetworkpolicies/x") to
//     Calico's key (".../globalnetworkpolicies/default.x", see
//     api.StoredName), each in one transaction that creates the new key only
//     if it is absent and deletes the old one only at the revision read.
//
// Both are idempotent and safe to run from many hosts at once. Keys and
// values are documented in docs/resources.md; the golden data recorded
// from the real calicoctl is under testdata/.
package compat

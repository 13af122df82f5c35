// Package dataplane defines Desired: the complete state this host's kernel
// should be in, as computed by package calc and applied by the drivers in
// dataplane/nft (firewall) and dataplane/routes (routes, links, sysctls).
//
// Invariants:
//   - Desired is plain data with no behaviour; every slice is sorted (see the
//     field comments) so that equal states compare equal and render identically.
//   - Drivers own only what carries our markers (see their doc.go): the nft
//     table "inet calico", routes with our protocol number, interfaces named
//     with the "cali" prefix. Nothing else on the host is touched.
//   - Drivers never remove anything before they are given a Desired computed
//     from a datastore that is in sync.
package dataplane

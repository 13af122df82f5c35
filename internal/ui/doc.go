// Package ui is `calico ui`: a read-only web view served from the binary
// (embedded assets, no CDN, works offline): hosts and this host's BGP
// sessions, networks and endpoints with labels, policies in evaluation
// order, the reachability matrix with each cell's trace, and live denied
// flows of this host. The page polls the JSON API, so a policy applied
// with `calico apply` changes the matrix without a reload.
//
// It listens on loopback only: the view shows the whole cluster's policy
// and there is no authentication for it (the node's TLS identity is for
// the datastore, not for browsers), so a non-loopback address is refused.
package ui

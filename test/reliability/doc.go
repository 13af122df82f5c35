// Package reliability holds the lab fault and isolation suite: a two-host
// lab (network namespaces, a real dockerd and calico node on each, real
// containers) in which the node is killed, nftables and routes are
// deleted under it, dockerd restarts, the plugin socket disappears, the
// datastore stops or a node is cut off from it, many containers start at
// once, and containers attack each other over IPv4 and IPv6; and a node on
// an external 3-member etcd loses one member at a time. Each scenario
// records its numbers (see RELIABILITY.md).
//
// Plain `go test` (and `make test`) runs the short form as root;
// CALICO_RELIABILITY=full (`make test-reliability`) runs every scenario,
// with 200 containers instead of 20. CALICO_RELIABILITY_REPORT=FILE appends
// each scenario's table row to FILE.
package reliability

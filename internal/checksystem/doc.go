// Package checksystem checks whether a host can run the calico node
// (`calico node checksystem`, also run first by `calico node start`).
//
// It works in two steps. Gather inspects the host and returns Facts, plain
// data: the kernel release, the result of each kernel feature probe, the
// forwarding and reverse-path sysctls, the network interfaces, the nftables
// ruleset (iptables-nft's tables included), the legacy iptables filter
// tables, and whether firewalld or ufw is active. Evaluate, a pure function,
// turns Facts into a Report: one Result per check with a status (OK, WARN,
// FAIL) and, where not OK, the fix. The decisions are table-tested without
// root; Gather is tested as root against network namespaces the test builds.
//
// Invariants:
//   - Gather changes nothing on the host. Feature probes (nftables verdict
//     maps, interval and concatenated sets, conntrack, masquerade, dnat, fib,
//     log; the node's own nftables driver on a sample ruleset; veth, VXLAN and
//     routes with protocol 80) run in an anonymous network namespace that
//     exists only while its file descriptor is open, so whatever they create
//     disappears with it. Everything else is read: sysctl files are opened
//     for writing only to learn whether the node could write them.
//   - FAIL means the node cannot work here (a missing required feature, no
//     root, forwarded traffic certain to be dropped); WARN means a function
//     or a setting needs attention; `calico node start` refuses on FAIL and
//     prints the WARNs.
package checksystem

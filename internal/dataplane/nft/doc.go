// Package nft programs the workload firewall of one host (or one network
// namespace) with nftables over netlink: no `nft` binary is needed at run time.
//
// The Driver takes a dataplane.Desired (SetDesired only records it), compiles
// it into a model of chains, rules and sets, diffs that model against what it
// last programmed and sends the difference in ONE netlink batch, so every
// change is atomic: no packet ever sees half a policy update.
//
// # What we own
//
// Exactly one table, "inet calico", and everything inside it. Nothing else
// in the kernel is read or written. Inside the table:
//
//   - Base chains: "prerouting" (filter, priority raw: anti-spoofing before
//     conntrack), "forward" (filter-10, before iptables' filter table:
//     workload policy; its first rules clear mark bit 0x40000 and set it on
//     traffic to or from a workload interface, see MarkForwardAllowed and
//     package dockerfw), "input" (filter 0:
//     workload to host) and "postrouting" (nat, srcnat: natOutgoing).
//     prerouting, input and postrouting first let through everything that
//     does not touch a workload interface (prefix Host.InterfacePrefix,
//     "cali"), so the host's own traffic is never judged here; forward
//     applies its two conntrack rules to all forwarded traffic and judges
//     only workload interfaces after that. Host to local workload traffic
//     is not policed, as in Calico, so there is no output chain.
//   - Maps "fw-map" and "tw-map" (ifname : verdict) dispatch each workload
//     interface to its endpoint chains "fw-<h>" (from the workload: egress
//     policies then profiles) and "tw-<h>" (to the workload: ingress), h =
//     16 hex digits of sha256 of the policy and profile lists. Endpoints
//     with the same lists share a chain, so an endpoint costs map and set
//     elements, not chains and rules (10,000 endpoints of 100 applications
//     make 200 endpoint chains). A workload-prefixed interface missing from
//     a map is dropped (fail closed).
//   - Policy and profile chains "pi-<h>" (ingress rules) and "pe-<h>"
//     (egress rules), h = first 16 hex digits of sha256(PolicyChain.ID);
//     the chain comment (and Render) shows the ID.
//   - Address sets "s4-<h>" (ipv4_addr) and "s6-<h>" (ipv6_addr), h =
//     16 hex digits of sha256(IPSet.ID), both "flags interval" so networks
//     work; the selector is kept in the set's comment. Named-port sets
//     (IPSet.NamedPort) are "p4-<h>" (ipv4_addr . inet_proto .
//     inet_service) and "p6-<h>" (ipv6_addr . ...), hash sets of single
//     addresses edited element by element; a rule matches them with
//     "ip daddr . meta l4proto . th dport @p4-<h>" (saddr/sport for the
//     source side). Sets "spoof4" and
//     "spoof6" (ifname . address, hash) hold each endpoint's own addresses,
//     "spoof4net"/"spoof6net" (the same, interval) any wider prefixes it
//     owns; "masq4"/"masq6" and "pools4"/"pools6" drive natOutgoing.
//   - Published ports (Desired.HostPorts): base chains "dnat-pre" (nat
//     prerouting, -100) and "dnat-out" (nat output, -100), maps "hp4",
//     "hp6" (proto . port : address . port) and "hp4ip", "hp6ip" (keyed by
//     the host address too), sets "hairpin4"/"hairpin6" whose connections
//     postrouting masquerades (see hostports.go).
//   - Control plane: sets "cp-addr4"/"cp-addr6" (every node's addresses)
//     and "cp-ports" (inet_proto . inet_service) from Desired.ControlPlane.
//     Each fw- chain with profiles drops a packet to a node address and
//     control-plane port, or to any local address of this host (fib daddr
//     type local: the chain is also reached from input) and control-plane
//     port, after its egress policies and before its profiles, so an
//     explicit policy Allow opens a port and a profile cannot.
//   - Host endpoints (Desired.Hosts, only while this host has one): base
//     chains "host-raw-pre"/"host-raw-out" (untracked, -305),
//     "host-prednat" (prerouting -110, before every DNAT), "host-in"/
//     "host-out" (5), "host-fwd-in"/"host-fwd-out" (forward -6/-5), verdict
//     maps "hep-*", per endpoint chains "hu-/hU-/hd-/hi-/ho-/hf-/hF-<h>",
//     failsafe chains "host-fs-in"/"host-fs-out", and mark bit 0x80000
//     (an untracked or pre-DNAT allow); see hostendpoints.go.
//   - Mark bits 0x10000 (accept) and 0x20000 (pass) carry a policy chain's
//     verdict back to the endpoint chain; they are cleared before use. Bit
//     0x40000 (MarkForwardAllowed) is left on forwarded workload packets
//     that forward accepts, for Docker's DOCKER-USER chain.
//
// # Invariants
//
//   - "ct state established,related accept" comes before any policy in
//     forward and input and is never removed: an agent restart, a resync or
//     a policy change does not cut established flows. A table that must be
//     replaced (objects of ours of another kind) is replaced in the same
//     single transaction, so even that does not.
//   - Every rule carries a comment with a hash of its canonical text, so a
//     restarted driver (or Resync) can tell from the kernel alone whether a
//     chain holds exactly what it wants, without keeping any state on disk.
//     A differing chain is flushed and refilled inside the batch.
//   - A cold start over a table left by an earlier run reads it and changes
//     only what differs; it never flushes the table.
//   - Set members are added and removed element by element, never by
//     recreating the set.
//   - Kernel reads happen on the first Apply and in Resync only; a normal
//     Apply diffs against the in-memory record of what it last programmed.
//
// # Why our own batch encoder
//
// The library's Conn.Flush asks for an acknowledgement of every message (and
// an echo of every rule) and reads them only after the kernel has processed
// the whole batch, which overflows the socket's receive buffer once a batch
// holds a few hundred messages; it also cannot raise the send buffer to fit a
// batch of tens of megabytes in one sendmsg, and it encodes a set's elements
// in one attribute, which caps a message at 64 KiB. The encoder here uses the
// library's expression marshalling and types, requests an ack only for the
// last message, raises the socket buffers, splits element lists, and maps
// any error back to the operation that caused it.
package nft

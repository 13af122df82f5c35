// Package bgp tells other hosts which workload addresses live on this host,
// and learns where theirs live, over BGP.
//
// It has two halves:
//
//   - A pure configuration model. DesiredPeers turns the Node, BGPPeer and
//     BGPConfiguration resources into the sorted list of BGP sessions this
//     node should have (full node-to-node mesh, global and node-specific
//     peers, route-reflector clients), following Calico's rules; NodeSettings
//     gives this node's own AS number, addresses and listen port. No I/O.
//   - A Speaker: the caller hands it the full set of peers and the full set of
//     prefixes to advertise; it works out the difference itself, and delivers
//     the full set of best paths learned from peers, coalesced, on a channel.
//     GoBGP (github.com/osrg/gobgp/v4, embedded) implements it.
//
// Invariants of the GoBGP speaker:
//
//   - It never writes to the kernel. Learned routes go to the caller, which
//     hands them to the routes driver.
//   - Routes for prefixes this node advertises itself are never reported as
//     learned, so a host never installs a route to another host for its own
//     block.
//   - Peers that are not Calico nodes (Peer.External) receive only the
//     advertisements marked ExportToExternal, and only those of the routes
//     other nodes originated with that mark; routes learned from one external
//     peer are never passed on to another. Paths that may be exported carry the
//     BGP community ExportCommunity inside the cluster; it is stripped before
//     a path leaves for an external peer.
//     Paths from external peers lose that community on import, so no peer can
//     mark its routes for transit.
//   - BGPFilter rules and the per-peer prefix limit act inside GoBGP (policy
//     statements, PrefixLimit); TCP MD5 and GTSM are socket options.
//   - RouteGuard (pure) decides which learned routes may be installed: pool
//     routes only with their owner's next hop, nothing over a node's or peer's
//     address; the agent applies it where learned routes become desired.
//   - Listen and session source addresses are explicit (the node's addresses),
//     never the wildcard, and the connect retry is seconds, not GoBGP's
//     default of two minutes.
//   - Graceful restart is on by default: Stop(ctx, true) closes sessions
//     without a NOTIFICATION, so peers keep this node's routes (as stale) for
//     the restart time; a speaker started with Config.Restarting sets the
//     restart flag so peers keep them until it has re-sent its table.
//
// One speaker per process and per network namespace: GoBGP dials and listens
// from goroutines of its own, so the process must already be in the
// namespace whose addresses it uses (the agent runs in the host namespace).
// Tests that need several speakers in several namespaces run each one in a
// child process started with `ip netns exec`.
package bgp

// Package ipam is Calico's block-affinity IP address management over the
// datastore: no central allocator, no global lock. Every write is a
// compare-and-swap on the revision of the keys it touches, so hosts and
// processes race safely and the loser retries on fresh data.
//
// Layout under datastore.IPAMRoot ("/calico/ipam/v2/"), IPv6 uses "ipv6":
//
//	assignment/ipv4/block/10.65.0.0-26   one Block (JSON, Calico's field names)
//	host/<node>/ipv4/block/10.65.0.0-26  the node's affinity to that block
//	handle/<handle>                      Handle: block CIDR -> addresses held
//	config                               Config (strict_affinity, ...)
//	hostclaims/ipv4/<node>               claim generation of a node (ours)
//
// Invariants:
//   - A block's allocations and the handle records that count them change in
//     one transaction, so a handle never disagrees with its blocks.
//   - A block is created together with its affinity key in one transaction.
//   - Every block claim and affinity release of a node also moves that node's
//     claim generation key. A claim is conditioned on the generation read
//     before the node's blocks were inspected, so two processes on one node
//     cannot both claim a block when one would do: each node holds the fewest
//     blocks it needs (unless addresses were borrowed away from it).
//   - Addresses come from the node's affine blocks first, then from a newly
//     claimed block, and only when the pools have no unclaimed block from
//     other nodes' blocks (borrowing; off when strictAffinity is set).
//   - Pool selection, block math and the checks of `calico ipam check` are pure
//     functions (block.go, pool.go, the problem finders in check.go); the rest
//     is the retry loop around them.
//   - An assigned address records what it is for (Attrs): a workload endpoint
//     or a manual reservation. Check never calls a manual reservation a leak.
//   - Automatic assignment never hands out an address of an IPReservation
//     (reservations.go): it stays free in its block and is skipped, as in
//     Calico; AssignIP of a reserved address by name still succeeds.
package ipam

// Package agent is the node daemon (`calico node run`): it registers this
// host's Node resource, watches the datastore through the syncer, feeds the
// incremental calculator, and applies the desired state through the nftables
// and routes drivers; it also runs the BGP speaker and the Docker plugins when
// enabled, and serves health and metrics.
//
// Invariants:
//   - Nothing is applied before the datastore has been in sync once, so a
//     restarting agent never removes state it has not yet re-learned; after
//     that, an outage keeps the last applied state (no flush, no removal).
//   - SIGTERM stops the agent without touching the dataplane: workloads keep
//     their routes and rules while the node is down.
//   - All kernel work happens in the apply loop, one goroutine; everything
//     else only records state and kicks the loop.
//   - The agent reaches the kernel only through its dataplane drivers, and
//     the datastore, the BGP speaker and time only through Deps (deps.go):
//     tests run it without root against the fakes of package agenttest.
package agent

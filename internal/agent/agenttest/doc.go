// Package agenttest holds fakes of the agent's outside world (agent.Deps)
// for tests that run without root: dataplane drivers that record what they
// were asked to program and fail on demand (netlink EBUSY/EINTR, a refused
// nftables transaction), a datastore over the in-memory backend whose
// watches can be cut or fall behind a compaction, and a BGP speaker.
//
// Invariants:
//   - The fakes only record and fail; they never touch the kernel or the
//     network, so anything that passes with them is about the agent's logic.
//     The real-kernel behaviour stays tested by the root tier.
//   - A fault is set by the test and stays until the test clears it (or,
//     with FailNext, for exactly n calls), so a test decides when the agent
//     sees it and never depends on timing.
//   - Store writes made through Inner bypass every fault: the test can change
//     the datastore behind the back of an agent that cannot see it.
package agenttest

// Package flows turns the dataplane's flow log packets (NFLOG group
// nft.FlowLogGroup, prefixes written by package nft) into flow records:
// 5-tuple, both endpoints, the action and the policy or profile rule that
// decided, aggregated per flow and interval in a bounded ring (as Calico's
// flow logs aggregate), and serves them to `calico flows` over a local
// unix socket (mode 0660, group docker when that group exists).
//
// Reading NFLOG is the only I/O here besides the socket; attributing a
// prefix to a rule and an address to an endpoint is the caller's Resolver,
// which the node builds from the same dataplane.Desired it programmed.
package flows

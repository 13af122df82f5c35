// Package workload wires a container to the host with a veth pair, the way
// Calico does, for both paths that create workload interfaces: the Docker
// network plugin (CreateVeth/DeleteVeth: Docker moves the peer into the
// container and names it) and `calico container add` for containers started
// with --net=none (Plumb/Unplumb do the whole job).
//
// Conventions (shared with the routes driver, which configures the host side
// further and installs the host routes):
//   - Host side: named "cali" + the first 11 characters of the endpoint ID
//     (HostIfaceName; 15 characters at most, the kernel's limit), MAC
//     ee:ee:ee:ee:ee:ee on every host veth, no IPv4 address, up. When IPv6 may
//     be used it also carries the link-local address fe80::ecee:eeff:feee:eeee
//     (added explicitly, without duplicate address detection, so it is the
//     same on every host whatever the host's addr_gen_mode, and usable at once).
//   - Container side: eth0 with the workload's addresses as /32 and /128, an
//     on-link route to 169.254.1.1 and a default route through it (the host
//     answers ARP for 169.254.1.1 by proxy ARP), and an IPv6 default route
//     through the host side's link-local address. Docker callers reply with
//     the same gateways (IPv4Gateway, HostIPv6Gateway).
//
// Idempotency: creating what exists with the same kind succeeds (and
// re-applies the settings); deleting what is gone succeeds. Plumb run twice
// with the same config leaves the same result.
//
// Namespaces: all netlink work goes through handles opened in the host and
// container namespaces; the few sysctls of the container side are written by
// package nsexec on a short-lived locked thread. No goroutine of the caller
// changes namespace.
package workload

// Package routes is the routes-and-links dataplane driver: it makes the
// kernel's main routing table, the workload interfaces and the VXLAN device of
// one network namespace match dataplane.Desired.
//
// What it owns, recognisable after a restart with no memory:
//   - Routes with protocol 80 (DefaultProtocol) in the main table, IPv4 and
//     IPv6. 80 is what Felix uses for its own routes; it is not one of the
//     numbers the kernel (2 kernel, 3 boot, 4 static), DHCP (16), RA (9), BIRD
//     (12), Zebra/FRR (11, 186-192) or Babel (42) write. Routes of any other
//     protocol are never changed or deleted; if one already holds a
//     destination we want, the driver reports a conflict and leaves it.
//   - Interfaces named with the workload prefix ("cali" by default) that the
//     desired state names: their host-side MAC (ee:ee:ee:ee:ee:ee), admin
//     state and per-interface sysctls. Interfaces without the prefix are never
//     configured, even if an endpoint names one.
//   - The devices "vxlan.calico" (IPv4 overlay and underlay) and
//     "vxlan-v6.calico" (IPv6), each with its tunnel address (/32 or /128;
//     the kernel's IPv6 link-local address stays) and its permanent
//     neighbour (tunnel IP -> MAC) and FDB (MAC -> node IP) entries.
//
// Routes written, per dataplane.RouteType:
//   - RouteLocal: "dst dev Iface scope link proto 80" (IPv6: no scope). If the
//     interface does not exist yet the route is pending (ApplyStats) and is
//     installed by the next Apply after the link appears (WatchLinks).
//   - RouteBlackhole: "blackhole dst proto 80".
//   - RouteVia: "dst via Gateway proto 80", the kernel picks the device.
//   - RouteVXLAN: "dst via Gateway dev vxlan.calico onlink proto 80"
//     (vxlan-v6.calico for IPv6).
//
// Interface settings, as Calico's CNI plugin and Felix apply them:
// net.ipv4.conf.<if>.proxy_arp=1 (the workload's gateway 169.254.1.1 is
// answered by proxy ARP; this needs the host to have a route covering
// 169.254.1.1, any default route does), net.ipv4.neigh.<if>.proxy_delay=0,
// net.ipv4.conf.<if>.forwarding=1, net.ipv4.conf.<if>.rp_filter=1 (a workload's
// packets must come back out of the interface they arrived on),
// net.ipv6.conf.<if>.accept_ra=0 always, and when the endpoint has IPv6:
// net.ipv6.conf.<if>.proxy_ndp=1 and forwarding=1. Host-wide:
// net.ipv4.ip_forward=1, and net.ipv6.conf.all.forwarding=1 when the desired
// state has any IPv6 (this makes the host ignore router advertisements on
// interfaces whose accept_ra is 1, as with Calico).
//
// IPv6 gateway choice: a workload's IPv6 default route points at the link-local
// address of the host side of its veth (fe80::ecee:eeff:feee:eeee, the EUI-64
// address of ee:ee:ee:ee:ee:ee, which internal/workload also assigns
// explicitly). The host owns that address, so the workload's neighbour
// solicitation for it is answered without any proxy entry; and the host finds
// the workload by ordinary neighbour discovery over the /128 route on the
// veth. proxy_ndp=1 is set to match Calico but no proxy entries are added:
// nothing needs them (the routes tests prove IPv6 workload-to-workload traffic
// without them).
//
// Kernel I/O happens only in Apply (and in the subscriptions of WatchLinks
// and WatchRoutes; WatchRoutes reports a deleted route of ours that is still
// desired, so the next Apply reads the kernel and puts it back). Apply
// never flushes: it reads what is there, computes the difference and applies
// only that, so an agent restart leaves established flows alone; a second
// Apply with the same desired state changes nothing. Sysctls of an interface
// are checked once per interface index (a re-created interface gets a new
// index and is configured again); Resync forgets that memory.
//
// Namespaces: netlink work goes through a handle opened in the target
// namespace; sysctls of a non-current namespace are written by package nsexec
// on a short-lived locked thread. No long-lived goroutine ever changes
// namespace.
package routes

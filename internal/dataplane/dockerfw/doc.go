// Package dockerfw lets forwarded workload traffic through Docker's iptables
// firewall in the way Docker documents for users' rules, without ever
// bypassing our own policy and without touching Docker's rules.
//
// # The problem
//
// dockerd with its defaults (iptables on) sets the policy of the FORWARD
// chain of iptables' filter table to DROP. Every base chain on a netfilter
// hook must accept a packet for it to pass, so an accept in our nftables
// table "inet calico" does not get a packet past that policy: without help,
// workload-to-workload traffic dies in Docker's FORWARD chain.
//
// # What we add
//
// Docker documents the chain DOCKER-USER for users' rules: FORWARD jumps to
// it first, dockerd creates it when it is missing and never flushes it. In
// every iptables back end and family where Docker's firewall is present
// (the filter table has a chain DOCKER-USER, DOCKER or DOCKER-FORWARD), the
// driver keeps exactly one rule of ours in DOCKER-USER, inserted at the top
// when it is missing:
//
//	-A DOCKER-USER -m mark --mark 0x40000/0x40000 -m comment --comment "calico-docker: forwarded traffic calico policy judged" -j ACCEPT
//
// It creates DOCKER-USER when Docker's other chains exist but it does not
// (dockerd adopts an existing chain and keeps its rules). It never adds the
// jump from FORWARD (that is Docker's), never flushes, reorders or rewrites
// any rule that is not ours, and never deletes a chain.
//
// # Why a mark and not an interface match
//
// The forward base chain of "inet calico" runs at priority filter-10, before
// iptables' filter table (priority 0, the same for iptables-nft and
// iptables-legacy). Its first rules clear the bit 0x40000
// (nft.MarkForwardAllowed) on every forwarded packet and set it on packets
// whose input or output interface has the workload prefix ("cali"); the rest
// of the chain judges exactly those packets with the endpoints' policies and
// profiles, and a drop there is final. So a packet reaches DOCKER-USER with
// the bit set only if our policy accepted it: the iptables rule cannot let
// through anything our policy has not judged. An interface match
// (`-i cali+ -j ACCEPT`) would be equally safe while our table is in place,
// but would become a blanket accept for workload interfaces if our table
// were removed (e.g. `nft flush ruleset`); the mark fails closed instead:
// no table, no mark, Docker's DROP applies. Traffic through vxlan.calico
// needs nothing of its own: every forwarded packet of a local workload has
// the workload's cali interface on one side. The bit is in the range Calico
// reserves for its marks (0xffff0000), next to the policy chains' accept
// (0x10000) and pass (0x20000) bits.
//
// # Ownership
//
// Our rules are recognised by their comment, which starts with "calico-docker:"
// (Marker). A rule of ours that differs from the wanted one (another mark,
// another comment text after the marker) is deleted by its exact spec; a
// second copy is deleted too. Remove deletes every rule carrying the marker
// from every chain of the filter table, in every back end and family, and
// leaves DOCKER-USER itself in place for Docker.
//
// # Back ends
//
// Docker writes its rules through whatever `iptables` resolves to on its
// PATH: iptables-nft (Debian's default) or iptables-legacy (after
// `update-alternatives --set iptables /usr/sbin/iptables-legacy`). The driver
// finds where Docker's chains are without creating anything: for nft it reads
// the chains of `table ip filter` / `table ip6 filter` over netlink, for
// legacy it reads /proc/net/ip_tables_names and ip6_tables_names (running
// iptables-legacy on a family whose table does not exist would instantiate
// an empty one). It then runs the back end's own binary, iptables-nft,
// ip6tables-nft, iptables-legacy or ip6tables-legacy, always with `-w`, so
// that it waits on the xtables lock (/run/xtables.lock, mounted into the node
// container) like every other iptables user. The node image carries the
// host's xtables-nft-multi and xtables-legacy-multi with their libraries and
// extensions (package nodectl). IPv6 is handled where Docker has ip6tables
// chains (dockerd --ip6tables).
//
// # Repair
//
// Apply always reads the kernel, so calling it again repairs a rule someone
// deleted (`iptables -F DOCKER-USER`, a firewall reload, dockerd started
// with a fresh table). The agent calls it once the datastore is in sync and
// then every CheckInterval, so the repair latency is at most that interval
// plus one iptables run.
package dockerfw

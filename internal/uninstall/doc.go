// Package uninstall removes what the calico node put on a host, for
// `calico node remove`. It touches only what carries our markers (see the
// dataplane drivers' doc.go): the nftables table "inet calico", routes with
// protocol 80 in any table, interfaces named with the "cali" prefix and the
// devices "vxlan.calico" and "vxlan-v6.calico", and the plugin sockets calico.sock and
// calico-ipam.sock. Every step is idempotent: what is already gone is
// success, so a removal that was interrupted can be run again.
//
// Removing workload interfaces cuts the networking of containers still
// attached to them; the command refuses to do that unless forced.
package uninstall

// Package managed builds and serves Calico's managed (v2) Docker plugin,
// the kind Docker swarm requires for network and IPAM drivers.
//
// The plugin is a thin proxy. Its rootfs holds only the static calico
// binary, run as `calico plugin proxy`: it listens on the socket Docker
// gives the plugin (/run/docker/plugins/calico.sock inside the plugin),
// answers Plugin.Activate with both interfaces, and forwards every
// NetworkDriver.* call to the node's calico.sock and every IpamDriver.*
// call to calico-ipam.sock, the legacy sockets the node serves in the
// host's /run/docker/plugins (bind-mounted read-only into the plugin). The
// node keeps owning the dataplane, the datastore credentials and the veths;
// the plugin has no capabilities of its own beyond Docker's defaults, no
// host network, and one mount.
//
// The proxy reports the network driver's scope as "global" (the node's
// sockets say "local"), so that swarm's manager allocates task addresses
// through the calico IPAM driver; it answers AllocateNetwork/FreeNetwork
// itself and the static capability calls when the node is not up yet.
// The managed plugin is therefore for swarm hosts.
//
// Build writes the plugin directory (config.json and rootfs/calico) and
// Create runs `docker plugin create` (and enable) on it.
package managed

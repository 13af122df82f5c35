// Package lab builds a multi-host Calico lab on one machine: a "fabric"
// network namespace with one bridge per subnet (a router namespace between
// subnets when there are several), and N host namespaces, each with an
// address on the fabric, its own dockerd (own socket, data root, exec root and
// its own /run/docker/plugins, /var/lib/calico, /var/run/calico and
// /var/log/calico in a private mount namespace) and a calico node container.
//
// Invariants:
//   - Everything a lab makes is named after it: network namespaces
//     "calab-<lab>-*", directories /var/lib/calico-lab/<lab> and
//     /var/run/calico-lab/<lab>. Down removes exactly these and the processes
//     whose PIDs the lab recorded, nothing else.
//   - Addresses inside the lab are the lab's own (10.99.<subnet>.0/24 and
//     fd00:99:<subnet>::/64 on the fabric); the fabric has no uplink, so
//     nothing in the lab routes out of the machine.
//   - The lab's state file (state.json) is written after every step, so
//     status, exec and down work on a partly built lab.
package lab

// Package nodectl manages the calico-node container on a host through the
// Docker API: building the FROM-scratch node image from this binary, running
// it with host networking and only the capabilities it needs, waiting for it
// to report ready, stopping it, and reading its status.
//
// Invariants:
//   - The container is named "calico-node"; nodectl never touches another.
//   - Start is idempotent: a running node with the same configuration is left
//     alone; a stopped, dead or differently configured one is replaced.
//   - Stop removes the container only. The dataplane it programmed stays, so
//     workloads keep working while the node is down.
package nodectl

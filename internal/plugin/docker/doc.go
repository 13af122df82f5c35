// Package docker is Calico's Docker integration: a libnetwork remote
// network driver ("calico") and IPAM driver ("calico-ipam"), served by the
// node daemon on /run/docker/plugins/calico.sock and calico-ipam.sock, plus
// the library behind `calico container add/remove/list` for containers
// started with --net=none.
//
// Usage is Calico's:
//
//	docker network create --driver calico --ipam-driver calico-ipam frontend
//	docker run --net frontend --label role=web ...
//
// # What Docker calls and what it becomes
//
//   - RequestPool: a network without --subnet gets the pool "0.0.0.0/0" (or
//     "::/0" with --ipv6) with the gateway 169.254.1.1/32 (fe80::1/128) in
//     its data, so Docker neither checks overlaps nor asks for a gateway;
//     addresses then come from every enabled IPPool. --subnet must be an
//     IPPool's CIDR exactly; otherwise the error lists the pools there are.
//   - CreateNetwork: checks the options (only -o mtu=N) and that the network
//     uses calico-ipam. Docker stores a network only after CreateNetwork
//     returns, so its name cannot be looked up during the call: the profile
//     is created from the network's "create" event, and again (if missing)
//     at its first CreateEndpoint, which asks Docker for the name.
//   - The profile is named after the network and shared by every host that
//     creates a network of that name: labelsToApply {docker.network: NAME},
//     ingress allowed from `docker.network == 'NAME'`, egress allowed. A
//     profile that exists is used as it is; DeleteNetwork leaves it.
//   - RequestAddress / CreateEndpoint / Join / Leave / DeleteEndpoint /
//     ReleaseAddress: see below.
//
// # Address handles: idempotent and leak-free
//
// Docker's RequestAddress carries no endpoint ID. The IPAM driver declares
// RequiresMACAddress, so Docker generates the endpoint's MAC first and sends
// it with every RequestAddress of that endpoint (IPv4 and IPv6). The
// addresses are assigned under the
// handle "libnetwork.<node>.<mac>":
//   - a repeated request for the same endpoint gets the same address back
//     (AutoAssign returns what the handle holds; AssignIP of an address the
//     handle holds succeeds);
//   - CreateEndpoint adopts the handle: it checks that the addresses are held
//     by one of this node's endpoint handles and by no other live endpoint,
//     names the endpoint in the addresses' IPAM attributes, and records the
//     handle on the WorkloadEndpoint (annotation calico-docker/ipam-handle);
//   - ReleaseAddress frees the address only while one of this node's
//     endpoint handles holds it (Docker names only the address; a late
//     release must never free an address that moved on);
//   - a container that dies between RequestAddress and CreateEndpoint leaves
//     a handle no endpoint records: Docker normally releases it at once, and
//     otherwise the reconcile frees it once its addresses are older than the
//     grace period (DefaultGracePeriod).
//
// # Endpoints
//
// Namespace "default"; name <node>-libnetwork-libnetwork-<endpoint ID>
// (Calico's <node>-<orchestrator>-<workload>-<endpoint> with '-' doubled in
// each part); orchestrator "libnetwork"; node; endpoint = the endpoint ID;
// ipNetworks /32 and /128; profiles [network name]; interfaceName
// cali<first 11 characters of the endpoint ID>; mac = the container side's
// MAC as Docker set it (the driver returns a MAC only when Docker set none).
// The container (workload = its name, containerID) and its labels are not
// known at CreateEndpoint: they come from Docker's event stream.
//
// Join creates the veth (host side cali..., the other end tmp... which
// Docker moves into the container and renames eth<N>) and answers gateway
// 169.254.1.1 with a connected route to it; with IPv6, the gateway is the
// host veth's link-local address. The agent gives the host side its MAC,
// sysctls and routes when it sees the endpoint and the interface. MTU: the
// network's -o mtu=N, else Config.MTU, else the uplink's MTU (the interface
// of the default route) minus the VXLAN overhead when an enabled IPPool
// uses VXLAN.
//
// # Labels, and the window before they arrive
//
// When a container starts, Docker reports it on its event stream; the
// server then copies the container's labels (those that are valid Calico
// labels) and docker.container=<name> onto each of its endpoints. Docker
// creates and joins the endpoints before reporting the start, so for a few
// milliseconds a new container has only its network's profile: the profile
// rules apply (members of the network may reach it) and policies that
// select it by container label do not yet. Policies that must hold from the
// first packet should select on docker.network, which the profile applies
// from the start. After a reconnect to Docker the labels of every running
// container are brought up to date.
//
// # Network names
//
// Docker never tells a driver a network's name, and asking Docker's API from
// inside a driver call deadlocks while dockerd restores its containers at
// start-up (its API is not served until they are). The name learnt from the
// "create" event (or one API call at the network's first endpoint) is kept
// in the datastore under /calico/docker/v1/networks/<node>/<network ID>
// with the network's -o mtu, and removed by DeleteNetwork.
//
// # Restarts
//
// Everything lives in the datastore; the server keeps only caches. A
// restarted server answers Join for endpoints created before (it reads the
// endpoint back) and network names from the datastore. With --live-restore
// a dockerd restart makes no driver calls (the driver does not ask for
// RequiresRequestReplay: the datastore already holds every assignment);
// without it dockerd stops its containers through the driver and starts
// those with a restart policy afresh. If Docker drops an endpoint without
// DeleteEndpoint (its start-up cleanup of sandboxes it could not restore runs
// before the remote driver is loaded), the ReleaseAddress that does arrive
// removes the endpoint too. At start and every reconcile interval, the
// reconcile removes endpoints whose Docker endpoint or container is gone
// and releases unreferenced handles, each only after the grace period, and
// only when Docker could be asked.
//
// # Containers without the plugin
//
// `calico container add` networks a --net=none container: the veth goes
// into the container's network namespace (found through its PID), the
// address comes from IPAM (handle container.<node>.<container ID>) or
// --ip, and the endpoint (orchestrator "docker", name
// <node>-docker-<container ID prefix>-eth0) carries the container's labels
// and any --labels. Docker's "destroy" event removes it and frees its
// address; `calico container remove` does so explicitly.
//
// Invariants:
//   - Errors returned to Docker are one sentence; malformed JSON gets 400 and
//     the server carries on.
//   - Sockets: a stale socket file is replaced, a live one (another server) is
//     an error; on exit only our own socket files are removed.
//   - Nothing is removed on a guess: the reconcile acts only on state it has
//     just read from both the datastore and Docker.
package docker

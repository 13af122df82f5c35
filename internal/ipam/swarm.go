package ipam

// SwarmHandlePrefix starts the handles of addresses that Docker swarm's
// allocator (on a manager) holds through the calico IPAM driver. The swarm
// owns them: while no endpoint uses one (a task not started yet, a
// service's virtual IP) `ipam check` lists it as the swarm's, not as a leak.
const SwarmHandlePrefix = "docker-swarm."

package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// VIP mode. A swarm service's default endpoint mode gives it a virtual IP
// that dockerd load-balances (IPVS in a per-network "lb-" sandbox) to the
// tasks. dockerd creates that load balancer only for networks whose driver
// is "overlay", so on a calico network the VIP, which swarm's allocator
// does take from the pool, answers nothing. The IPAM driver cannot refuse
// it: the allocator asks for a VIP exactly as for a task's address, and
// no driver is told a service's endpoint mode. What can be done is to say
// so: the manager's node sees each service being created or updated in
// Docker's event stream, and logs an error naming the service, the network
// and the fix (--endpoint-mode dnsrr) when a VIP-mode service uses a
// network this node allocated (AllocateNetwork comes to the manager's node).

// vipNetworks returns the networks (of those ours reports) a VIP-mode
// service is attached to; nil for a dnsrr service. Targets are network IDs
// or names; resolve maps a name to an ID ("" when unknown).
func vipNetworks(svc swarm.Service, ours func(id string) bool, resolve func(target string) string) []string {
	if svc.Spec.EndpointSpec != nil && svc.Spec.EndpointSpec.Mode != "" && svc.Spec.EndpointSpec.Mode != swarm.ResolutionModeVIP {
		return nil
	}
	var out []string
	for _, n := range svc.Spec.TaskTemplate.Networks {
		id := n.Target
		if !ours(id) {
			id = resolve(n.Target)
		}
		if id != "" && ours(id) {
			out = append(out, n.Target)
		}
	}
	return out
}

// checkServiceVIP logs an error when a service uses VIP mode on one of
// this node's swarm networks, once per service (again after it changed).
func (s *Server) checkServiceVIP(ctx context.Context, id string) {
	if s.cfg.Docker == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, dockerCallTimeout)
	defer cancel()
	res, err := s.cfg.Docker.ServiceInspect(dctx, id, client.ServiceInspectOptions{})
	if err != nil {
		s.log.Debug("cannot inspect a service", "service", short(id), "error", err)
		return
	}
	svc := res.Service
	nets := vipNetworks(svc, s.isSwarmNetwork, func(target string) string {
		r, err := s.cfg.Docker.NetworkInspect(dctx, target, client.NetworkInspectOptions{})
		if err != nil {
			return ""
		}
		return r.Network.ID
	})
	key := fmt.Sprintf("%s@%d", svc.ID, svc.Version.Index)
	s.mu.Lock()
	seen := s.vipWarned[svc.ID] == key
	if len(nets) > 0 {
		s.vipWarned[svc.ID] = key
	} else {
		delete(s.vipWarned, svc.ID)
	}
	s.mu.Unlock()
	if len(nets) == 0 || seen {
		return
	}
	var vips []string
	for _, v := range svc.Endpoint.VirtualIPs {
		vips = append(vips, v.Addr.String())
	}
	s.log.Error("swarm service uses endpoint mode vip on a calico network: Docker load-balances virtual IPs only on overlay networks, so its VIP answers nothing here; update it with --endpoint-mode dnsrr",
		"service", svc.Spec.Name, "networks", strings.Join(nets, ","), "vips", strings.Join(vips, ","))
}

// rememberSwarmNetwork notes a network this node allocated for swarm.
func (s *Server) rememberSwarmNetwork(id string) {
	s.mu.Lock()
	s.swarmNets[id] = true
	s.mu.Unlock()
}

func (s *Server) isSwarmNetwork(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.swarmNets[id]
}

package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/workload"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ReconcileResult says what one reconcile pass freed.
type ReconcileResult struct {
	// Endpoints removed because Docker no longer has their endpoint or container.
	Endpoints []string
	// Handles released because no endpoint holds them (a container that died
	// between RequestAddress and CreateEndpoint, or a ReleaseAddress that
	// never came).
	Handles []string
	// SwarmRecords are the swarm addresses this node had taken up for
	// tasks whose endpoints no longer exist (the memory is dropped; the
	// address stays the swarm allocator's until it releases it).
	SwarmRecords []string
	// DockerChecked is false when Docker could not be asked: then no
	// endpoint is judged (never remove what cannot be checked).
	DockerChecked bool
}

func (s *Server) reconcileLoop(ctx context.Context) {
	every := s.cfg.ReconcileInterval
	if every <= 0 {
		every = s.grace
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		res, err := s.Reconcile(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn("reconcile failed; will retry", "error", err, "in", every)
		case len(res.Endpoints)+len(res.Handles)+len(res.SwarmRecords) > 0:
			s.log.Info("reconciled", "removedEndpoints", res.Endpoints, "releasedHandles", res.Handles, "staleSwarmRecords", res.SwarmRecords)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile frees what this node's Docker no longer uses, once it has
// looked unused for longer than the grace period:
//   - endpoints of the network plugin whose endpoint ID no container has
//     (at once when the container they were labelled from has stopped or
//     is gone), and
//     endpoints of `calico container add` whose container is gone: the
//     endpoint is deleted, its host veth removed, its addresses released;
//   - this node's endpoint handles that no endpoint records, whose addresses
//     were assigned longer ago than the grace period;
//   - this node's records of swarm addresses it took up for tasks whose
//     endpoints are gone (reconcileSwarmRecords).
//
// The state it judges is all in the datastore and Docker, so it is correct
// after any restart of this server.
func (s *Server) Reconcile(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	now := s.now()
	weps, err := listWEPs(ctx, s.store, s.node)
	if err != nil {
		return res, err
	}
	liveEPs, containers, stopped := map[string]bool{}, map[string]bool{}, map[string]bool{}
	if s.cfg.Docker != nil {
		list, err := s.cfg.Docker.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err == nil {
			res.DockerChecked = true
			for _, c := range list.Items {
				containers[c.ID] = true
				stopped[c.ID] = c.State == container.StateExited || c.State == container.StateDead
				if c.NetworkSettings == nil {
					continue
				}
				for _, es := range c.NetworkSettings.Networks {
					if es != nil && es.EndpointID != "" {
						liveEPs[es.EndpointID] = true
					}
				}
			}
		} else {
			s.log.Info("reconcile: Docker unreachable, endpoints not checked", "error", err)
		}
	}
	referenced := map[string]bool{}
	var errs []error
	for _, w := range weps {
		old := true
		if t, err := time.Parse(time.RFC3339, w.CreationTimestamp); err == nil {
			old = now.Sub(t) > s.grace
		}
		gone := false
		switch w.Spec.Orchestrator {
		case OrchestratorLibnetwork:
			// A container that has stopped or been removed is past the
			// window the grace period covers (endpoint created, container
			// not yet listing it): its endpoint went with it (e.g. dockerd
			// stopped it while this node was down, as in a host reboot).
			gone = res.DockerChecked && (old || containerEnded(w.Spec.ContainerID, containers, stopped)) && !liveEPs[w.Spec.Endpoint]
		case OrchestratorDocker:
			gone = res.DockerChecked && old && w.Spec.ContainerID != "" && !containers[w.Spec.ContainerID]
		}
		if !gone {
			if h := w.Annotations[HandleAnnotation]; h != "" {
				referenced[h] = true
			}
			continue
		}
		if w.Spec.Orchestrator == OrchestratorLibnetwork && w.Spec.InterfaceName != "" {
			if err := workload.DeleteVeth(w.Spec.InterfaceName, s.cfg.NetNS); err != nil {
				s.log.Warn("reconcile: cannot remove a stale veth", "interface", w.Spec.InterfaceName, "error", err)
			}
		}
		if err := s.removeEndpoint(ctx, w); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Endpoints = append(res.Endpoints, w.Name)
	}
	if res.DockerChecked {
		if err := s.forgetGoneNetworks(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	dropped, err := s.reconcileSwarmRecords(ctx, referenced, now)
	res.SwarmRecords = dropped
	if err != nil {
		errs = append(errs, err)
	}
	for _, prefix := range []string{libnetworkHandlePrefix, containerHandlePrefix} {
		kvs, _, err := s.store.List(ctx, ipam.HandlesPrefix+prefix+s.node+".")
		if err != nil {
			return res, fmt.Errorf("list IPAM handles: %w", err)
		}
		for _, kv := range kvs {
			h := strings.TrimPrefix(kv.Key, ipam.HandlesPrefix)
			if !ownHandle(s.node, h) || referenced[h] {
				continue
			}
			stale, err := s.handleStale(ctx, h, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !stale {
				continue
			}
			if _, err := s.ipam.ReleaseByHandle(ctx, h); err != nil {
				errs = append(errs, fmt.Errorf("release handle %s: %w", h, err))
				continue
			}
			res.Handles = append(res.Handles, h)
		}
	}
	return res, errors.Join(errs...)
}

// containerEnded reports whether the container an endpoint was labelled
// from (so it existed then) has stopped or is gone from Docker's list.
func containerEnded(id string, containers, stopped map[string]bool) bool {
	return id != "" && (!containers[id] || stopped[id])
}

// handleStale reports whether an unreferenced handle's addresses were
// assigned longer ago than the grace period (an empty handle is stale).
func (s *Server) handleStale(ctx context.Context, h string, now time.Time) (bool, error) {
	addrs, err := s.ipam.HandleAddrs(ctx, h)
	if err != nil {
		return false, fmt.Errorf("read handle %s: %w", h, err)
	}
	for _, ip := range addrs {
		info, err := s.ipam.ShowIP(ctx, ip)
		if err != nil {
			return false, fmt.Errorf("look up %s: %w", ip, err)
		}
		if info.Assigned && info.Attrs != nil && !info.Attrs.Assigned.IsZero() && now.Sub(info.Attrs.Assigned) <= s.grace {
			return false, nil
		}
	}
	return true, nil
}

// forgetGoneNetworks drops the records of networks Docker no longer has
// (removed while this server was not running, so no DeleteNetwork came).
func (s *Server) forgetGoneNetworks(ctx context.Context) error {
	list, err := s.cfg.Docker.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil // judged next time
	}
	have := map[string]bool{}
	for _, n := range list.Items {
		have[n.ID] = true
	}
	prefix := networkKey(s.node, "")
	kvs, _, err := s.store.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("list network records: %w", err)
	}
	for _, kv := range kvs {
		id := strings.TrimPrefix(kv.Key, prefix)
		if have[id] || strings.Contains(id, "/") {
			continue
		}
		if err := s.store.Delete(ctx, kv.Key, kv.Revision); err != nil && !errors.Is(err, datastore.ErrNotFound) && !errors.Is(err, datastore.ErrConflict) {
			return fmt.Errorf("forget network %.12s: %w", id, err)
		}
		s.mu.Lock()
		delete(s.networks, id)
		s.mu.Unlock()
	}
	return nil
}

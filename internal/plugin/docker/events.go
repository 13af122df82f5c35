package docker

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Docker events feed the labels: when a container starts, its Docker labels
// (and docker.container=<name>) become the labels of each of its endpoints.
// Docker creates and joins a container's endpoints before it reports the
// start, so the endpoints exist by then. Until the labels land (a few
// milliseconds after the start), the endpoint has only its network's
// profile: the profile's rules apply, and policies that select by container
// label do not yet. The stream also tells the names of new networks (their
// profiles), the removal of containers networked by the CLI and, on a swarm
// manager, services created in VIP mode on calico networks (vip.go).

// watchEvents follows Docker's event stream until ctx is done, reconnecting
// with a backoff (dockerd restarts). After each (re)connection the labels of
// all running containers are brought up to date, so nothing missed while
// disconnected stays wrong.
func (s *Server) watchEvents(ctx context.Context) {
	if s.cfg.Docker == nil {
		return
	}
	delay := 100 * time.Millisecond
	quiet := false // log the first failure of a series, not every retry
	for ctx.Err() == nil {
		connected, err := s.streamEvents(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			delay, quiet = 100*time.Millisecond, false
		}
		if quiet {
			s.log.Debug("Docker event stream: still reconnecting", "error", err, "in", delay)
		} else {
			s.log.Info("Docker event stream ended; reconnecting", "error", err)
			quiet = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (s *Server) streamEvents(ctx context.Context) (connected bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := make(client.Filters).
		Add("type", string(events.ContainerEventType), string(events.NetworkEventType), string(events.ServiceEventType)).
		Add("event", string(events.ActionStart), string(events.ActionDestroy), string(events.ActionCreate), string(events.ActionUpdate))
	res := s.cfg.Docker.Events(sctx, client.EventsListOptions{Filters: f})
	// Subscribed first, caught up second: a start between the two is seen twice
	// (harmless), never missed.
	if err := s.syncAll(ctx); err != nil {
		return false, err
	}
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-res.Err:
			if err == nil {
				err = errors.New("stream closed")
			}
			return true, err
		case m := <-res.Messages:
			s.handleEvent(ctx, m)
		}
	}
}

func (s *Server) handleEvent(ctx context.Context, m events.Message) {
	switch {
	case m.Type == events.NetworkEventType && m.Action == events.ActionCreate:
		if m.Actor.Attributes["type"] != NetworkDriverName {
			return
		}
		name := m.Actor.Attributes["name"]
		if err := s.learnNetwork(ctx, m.Actor.ID, name); err != nil {
			s.log.Warn("cannot record a new network", "network", name, "error", err)
		}
		if err := ensureProfile(ctx, s.store, name); err != nil {
			s.log.Warn("cannot create the profile of a new network", "network", name, "error", err)
		}
	case m.Type == events.ServiceEventType && (m.Action == events.ActionCreate || m.Action == events.ActionUpdate):
		// Only a manager reports services (vip.go).
		s.checkServiceVIP(ctx, m.Actor.ID)
	case m.Type == events.ContainerEventType && m.Action == events.ActionStart:
		if err := s.labelContainer(ctx, m.Actor.ID); err != nil {
			s.log.Warn("cannot label a container's endpoints", "container", short(m.Actor.ID), "error", err)
		}
	case m.Type == events.ContainerEventType && m.Action == events.ActionDestroy:
		if err := s.containerGone(ctx, m.Actor.ID); err != nil {
			s.log.Warn("cannot remove a removed container's endpoint", "container", short(m.Actor.ID), "error", err)
		}
	}
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// containerLabels is what a container contributes to its endpoints' labels.
func (s *Server) containerLabels(name string, labels map[string]string) map[string]string {
	in := maps.Clone(labels)
	if in == nil {
		in = map[string]string{}
	}
	delete(in, LabelNetwork) // the profile's labelsToApply says the network
	for k := range in {
		if strings.HasPrefix(k, LabelPortPrefix) {
			delete(in, k) // named ports, not labels (namedports.go)
		}
	}
	if name = strings.TrimPrefix(name, "/"); name != "" {
		in[LabelContainer] = name
	}
	ok, skipped := validLabels(in)
	if len(skipped) > 0 {
		slices.Sort(skipped)
		s.log.Debug("skipping Docker labels that are not valid Calico labels", "container", name, "labels", skipped)
	}
	return ok
}

// labelContainer copies a started container's labels onto its endpoints.
func (s *Server) labelContainer(ctx context.Context, id string) error {
	res, err := s.cfg.Docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	c := res.Container
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	var eps []string
	if c.NetworkSettings != nil {
		for _, es := range c.NetworkSettings.Networks {
			if es != nil && es.EndpointID != "" {
				eps = append(eps, es.EndpointID)
			}
		}
	}
	return s.applyLabels(ctx, c.ID, c.Name, labels, eps)
}

// applyLabels sets the labels, workload name, container ID and named ports
// (LabelPortPrefix labels) of the libnetwork endpoints eps and of the CLI
// endpoint of container id.
func (s *Server) applyLabels(ctx context.Context, id, name string, labels map[string]string, eps []string) error {
	want := s.containerLabels(name, labels)
	named, problems := containerNamedPorts(labels)
	if len(problems) > 0 {
		s.log.Warn("ignoring container labels that do not name a port", "container", name, "problems", problems)
	}
	workload := strings.TrimPrefix(name, "/")
	names := make([]string, 0, len(eps)+1)
	for _, ep := range eps {
		names = append(names, libnetworkWEPName(s.node, ep))
	}
	names = append(names, WEPName(s.node, OrchestratorDocker, short(id), "eth0"))
	var errs []error
	for _, n := range names {
		err := updateWEP(ctx, s.store, n, func(w *api.WorkloadEndpoint) bool {
			l := want
			if w.Spec.Orchestrator == OrchestratorDocker {
				// The CLI's own --labels stay; the container's are added.
				l = maps.Clone(w.Labels)
				if l == nil {
					l = map[string]string{}
				}
				for k, v := range want {
					if _, set := l[k]; !set {
						l[k] = v
					}
				}
			}
			l = maps.Clone(l)
			if l == nil {
				l = map[string]string{}
			}
			api.SetEndpointLabels(l, w) // as the stored ones (api.Default)
			wl := workload
			if w.Spec.Orchestrator == OrchestratorDocker {
				// Part of the endpoint's name, which Calico derives from it.
				wl = short(id)
			}
			ports, portsChanged := withNamedPorts(w.Spec.Ports, named)
			if maps.Equal(w.Labels, l) && w.Spec.Workload == wl && w.Spec.ContainerID == id && !portsChanged {
				return false
			}
			w.Labels, w.Spec.Workload, w.Spec.ContainerID, w.Spec.Ports = l, wl, id, ports
			return true
		})
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncAll labels the endpoints of every running container (after a
// (re)connection to Docker, when start events may have been missed).
func (s *Server) syncAll(ctx context.Context) error {
	list, err := s.cfg.Docker.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return err
	}
	for _, c := range list.Items {
		var eps []string
		if c.NetworkSettings != nil {
			for _, es := range c.NetworkSettings.Networks {
				if es != nil && es.EndpointID != "" {
					eps = append(eps, es.EndpointID)
				}
			}
		}
		name := ""
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		if err := s.applyLabels(ctx, c.ID, name, c.Labels, eps); err != nil {
			s.log.Warn("cannot label a container's endpoints", "container", short(c.ID), "error", err)
		}
	}
	return nil
}

// containerGone removes the endpoint `calico container add` made for a
// container that Docker has removed, and frees its addresses. (Endpoints
// of the network plugin are removed by Docker's own DeleteEndpoint calls.)
func (s *Server) containerGone(ctx context.Context, id string) error {
	name := WEPName(s.node, OrchestratorDocker, short(id), "eth0")
	w, _, err := getWEP(ctx, s.store, name)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if w.Spec.ContainerID != "" && w.Spec.ContainerID != id {
		return nil
	}
	return s.removeEndpoint(ctx, w)
}

// removeEndpoint deletes an endpoint and frees its handle's addresses.
func (s *Server) removeEndpoint(ctx context.Context, w *api.WorkloadEndpoint) error {
	if err := deleteWEP(ctx, s.store, w.Name); err != nil {
		return err
	}
	if h := w.Annotations[HandleAnnotation]; h != "" && ownHandle(s.node, h) {
		if _, err := s.ipam.ReleaseByHandle(ctx, h); err != nil {
			return err
		}
	}
	s.swarmEndpointGone(ctx, w)
	s.log.Info("removed the endpoint of a container that is gone", "endpoint", w.Name, "addresses", w.Spec.IPNetworks)
	return nil
}

package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/workload"
	"github.com/moby/moby/client"
)

// The seed's network_container path: `calico container add` networks a
// container started with --net=none, without the network plugin.

// ContainerEnv is what the container commands work with.
type ContainerEnv struct {
	Store  datastore.Store
	IPAM   *ipam.Allocator
	Docker *client.Client
	// Node is this host's node name.
	Node string
	// HostNS is the path of the host's network namespace ("" = current).
	HostNS string
	// MTU of the veth; 0 detects it as the plugin does.
	MTU    int
	Logger *slog.Logger
}

// AddOptions says how to network a container.
type AddOptions struct {
	// IPs are the addresses to give (at most one per family); none: one IPv4
	// address from the enabled pools.
	IPs []netip.Addr
	// Profiles the endpoint uses; each must exist.
	Profiles []string
	// Labels are added to the container's own Docker labels (and win).
	Labels map[string]string
}

func (e *ContainerEnv) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.Default()
	}
	return e.Logger
}

// cliWEPName is the endpoint of a container networked by the CLI.
func cliWEPName(node, containerID string) string {
	return WEPName(node, OrchestratorDocker, short(containerID), "eth0")
}

// AddContainer networks a running --net=none container: a veth into its
// network namespace (found through its PID), addresses from IPAM or
// opts.IPs, and a WorkloadEndpoint with its labels. On failure nothing it
// made stays behind.
func AddContainer(ctx context.Context, env ContainerEnv, container string, opts AddOptions) (*api.WorkloadEndpoint, error) {
	if env.Docker == nil {
		return nil, errors.New("calico container add needs Docker (set DOCKER_HOST)")
	}
	res, err := env.Docker.ContainerInspect(ctx, container, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", container, err)
	}
	c := res.Container
	if c.State == nil || !c.State.Running || c.State.Pid <= 0 {
		return nil, fmt.Errorf("container %s is not running: start it first", container)
	}
	if c.HostConfig == nil || string(c.HostConfig.NetworkMode) != "none" {
		mode := ""
		if c.HostConfig != nil {
			mode = string(c.HostConfig.NetworkMode)
		}
		return nil, fmt.Errorf("container %s uses network mode %q: calico container add is for containers started with --net=none (use a calico network otherwise)", container, mode)
	}
	name := strings.TrimPrefix(c.Name, "/")
	wepName := cliWEPName(env.Node, c.ID)
	if _, _, err := getWEP(ctx, env.Store, wepName); err == nil {
		return nil, fmt.Errorf("container %s is already networked by calico (endpoint %s): remove it first", name, wepName)
	} else if !errors.Is(err, datastore.ErrNotFound) {
		return nil, err
	}
	for _, p := range opts.Profiles {
		if _, err := env.Store.Get(ctx, datastore.ResourceKey(plProfile, "", p)); errors.Is(err, datastore.ErrNotFound) {
			return nil, fmt.Errorf("profile %q does not exist: create it with `calico apply` first", p)
		} else if err != nil {
			return nil, fmt.Errorf("read profile %s: %w", p, err)
		}
	}
	var v4, v6 int
	for _, ip := range opts.IPs {
		if ip.Is4() {
			v4++
		} else {
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		return nil, errors.New("give at most one IPv4 and one IPv6 address")
	}

	handle := containerHandle(env.Node, c.ID)
	attrs := ipam.Attrs{Kind: ipam.KindWorkload, Node: env.Node, Endpoint: endpointRef(wepName), ContainerID: c.ID}
	var addrs []netip.Addr
	undo := func() {
		if _, err := env.IPAM.ReleaseByHandle(context.WithoutCancel(ctx), handle); err != nil {
			env.logger().Warn("cannot release the addresses of a failed add", "handle", handle, "error", err)
		}
	}
	if len(opts.IPs) == 0 {
		r, err := env.IPAM.AutoAssign(ctx, ipam.AssignArgs{Handle: handle, Node: env.Node, Num4: 1, Attrs: attrs})
		if err != nil {
			undo()
			return nil, fmt.Errorf("assign an address: %w", err)
		}
		addrs = r.IPv4
	}
	for _, ip := range opts.IPs {
		if err := env.IPAM.AssignIP(ctx, ip, handle, env.Node, attrs); err != nil {
			undo()
			return nil, fmt.Errorf("assign %s: %w", ip, err)
		}
		addrs = append(addrs, ip)
	}

	mtu := env.MTU
	if mtu == 0 {
		up, err := uplinkMTU(env.HostNS)
		if err == nil {
			var over int
			if over, err = encapOverhead(ctx, env.Store); err == nil {
				mtu = max(up-over, minMTU)
			}
		}
		if err != nil {
			undo()
			return nil, err
		}
	}
	prefixes := make([]netip.Prefix, len(addrs))
	nets := make([]string, len(addrs))
	for i, ip := range addrs {
		prefixes[i] = netip.PrefixFrom(ip, ip.BitLen())
		nets[i] = prefixes[i].String()
	}
	host := workload.HostIfaceName(c.ID)
	mac, err := workload.Plumb(workload.PlumbConfig{HostIface: host, PID: c.State.Pid, HostNS: env.HostNS, MTU: mtu, Addrs: prefixes})
	if err != nil {
		_ = workload.Unplumb(host, env.HostNS)
		undo()
		return nil, fmt.Errorf("connect container %s: %w", name, err)
	}
	var clabels map[string]string
	if c.Config != nil {
		clabels = c.Config.Labels
	}
	labels := map[string]string{}
	for k, v := range clabels {
		labels[k] = v
	}
	delete(labels, LabelNetwork)
	if name != "" {
		labels[LabelContainer] = name
	}
	labels, skipped := validLabels(labels)
	if len(skipped) > 0 {
		env.logger().Debug("skipping Docker labels that are not valid Calico labels", "labels", skipped)
	}
	maps.Copy(labels, opts.Labels)
	w := &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Name: wepName, Labels: labels, Annotations: map[string]string{HandleAnnotation: handle}},
		Spec: api.WorkloadEndpointSpec{
			Orchestrator: OrchestratorDocker,
			Workload:     short(c.ID), // Calico derives the name from it

			Node:          env.Node,
			ContainerID:   c.ID,
			Endpoint:      "eth0",
			IPNetworks:    nets,
			Profiles:      slices.Clone(opts.Profiles),
			InterfaceName: host,
			MAC:           mac,
		},
	}
	if err := createWEP(ctx, env.Store, w); err != nil {
		_ = workload.Unplumb(host, env.HostNS)
		undo()
		return nil, err
	}
	return w, nil
}

// findCLIEndpoint finds the endpoint of a container networked by the CLI,
// by container name or ID (prefix), asking Docker first and, for a
// container Docker no longer has, the endpoints themselves.
func findCLIEndpoint(ctx context.Context, env ContainerEnv, container string) (*api.WorkloadEndpoint, error) {
	if env.Docker != nil {
		if res, err := env.Docker.ContainerInspect(ctx, container, client.ContainerInspectOptions{}); err == nil {
			w, _, err := getWEP(ctx, env.Store, cliWEPName(env.Node, res.Container.ID))
			if errors.Is(err, datastore.ErrNotFound) {
				return nil, fmt.Errorf("container %s is not networked by calico container add on node %s", container, env.Node)
			}
			return w, err
		}
	}
	weps, err := listWEPs(ctx, env.Store, env.Node)
	if err != nil {
		return nil, err
	}
	var found []*api.WorkloadEndpoint
	for _, w := range weps {
		if w.Spec.Orchestrator != OrchestratorDocker {
			continue
		}
		if w.Labels[LabelContainer] == container || (len(container) >= 4 && strings.HasPrefix(w.Spec.ContainerID, container)) {
			found = append(found, w)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no container %s networked by calico container add on node %s", container, env.Node)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%q matches %d containers: give more of the ID", container, len(found))
}

// RemoveContainer undoes AddContainer: the veth, the endpoint and its
// addresses. The container may already be gone.
func RemoveContainer(ctx context.Context, env ContainerEnv, container string) (*api.WorkloadEndpoint, error) {
	w, err := findCLIEndpoint(ctx, env, container)
	if err != nil {
		return nil, err
	}
	if w.Spec.InterfaceName != "" {
		if err := workload.Unplumb(w.Spec.InterfaceName, env.HostNS); err != nil {
			return nil, fmt.Errorf("remove the veth %s: %w", w.Spec.InterfaceName, err)
		}
	}
	if err := deleteWEP(ctx, env.Store, w.Name); err != nil {
		return nil, err
	}
	if h := w.Annotations[HandleAnnotation]; h != "" {
		if _, err := env.IPAM.ReleaseByHandle(ctx, h); err != nil {
			return nil, fmt.Errorf("release the addresses of %s: %w", w.Name, err)
		}
	}
	return w, nil
}

// ListEndpoints returns the container endpoints of node, both kinds (the
// network plugin's and the CLI's), sorted by workload then name.
func ListEndpoints(ctx context.Context, st datastore.Store, node string) ([]*api.WorkloadEndpoint, error) {
	weps, err := listWEPs(ctx, st, node)
	if err != nil {
		return nil, err
	}
	out := weps[:0]
	for _, w := range weps {
		if w.Spec.Orchestrator == OrchestratorDocker || w.Spec.Orchestrator == OrchestratorLibnetwork {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b *api.WorkloadEndpoint) int {
		if c := strings.Compare(a.Spec.Workload, b.Spec.Workload); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

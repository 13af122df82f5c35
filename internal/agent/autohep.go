package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// Automatic host endpoints, Calico's kube-controllers autoCreate: when the
// KubeControllersConfiguration "default" has
// spec.controllers.node.hostEndpoint.autoCreate: Enabled, every node keeps one
// HostEndpoint "<node>-auto-hep" for all of its interfaces ("*"), labelled
// with the node's labels, with the node's addresses as expectedIPs and the
// profile projectcalico-default-allow (so creating it changes nothing until
// a policy selects it). Each node manages only its own; with autoCreate off
// the node deletes the one it made. The opt-in and the shape are Calico's,
// so a cluster migrated from Calico keeps its host policies.
const (
	autoHEPSuffix     = "-auto-hep"
	autoHEPCreatedBy  = "projectcalico.org/created-by"
	autoHEPController = "calico-kube-controllers"
	defaultAllowProf  = "projectcalico-default-allow"
)

// autoHostEndpointsEnabled reads Calico's switch from the stored
// KubeControllersConfiguration "default" (absent: off).
func autoHostEndpointsEnabled(ctx context.Context, st datastore.Store) (bool, error) {
	r, err := resources.New(st).Get(ctx, api.KindKubeControllersConfiguration, "", "default")
	if errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	kcc := r.(*api.KubeControllersConfiguration)
	node, _ := kcc.Spec.Controllers["node"].(map[string]any)
	hep, _ := node["hostEndpoint"].(map[string]any)
	v, _ := hep["autoCreate"].(string)
	return strings.EqualFold(v, "Enabled"), nil
}

// desiredAutoHostEndpoint is the auto host endpoint of node n.
func desiredAutoHostEndpoint(n *api.Node) *api.HostEndpoint {
	labels := maps.Clone(n.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[autoHEPCreatedBy] = autoHEPController
	var ips []string
	add := func(s string) {
		if s == "" {
			return
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			s = p.Addr().String()
		}
		if !slices.Contains(ips, s) {
			ips = append(ips, s)
		}
	}
	if b := n.Spec.BGP; b != nil {
		add(b.IPv4Address)
		add(b.IPv6Address)
	}
	add(n.Spec.IPv4VXLANTunnelAddr)
	add(n.Spec.IPv6VXLANTunnelAddr)
	return &api.HostEndpoint{
		TypeMeta:   api.TypeMeta{Kind: api.KindHostEndpoint, APIVersion: api.APIVersion},
		ObjectMeta: api.ObjectMeta{Name: n.Name + autoHEPSuffix, Labels: labels},
		Spec: api.HostEndpointSpec{
			Node: n.Name, InterfaceName: "*", ExpectedIPs: ips, Profiles: []string{defaultAllowProf},
		},
	}
}

// ensureAutoHostEndpoint creates, updates or deletes this node's automatic
// host endpoint to match the switch and the node. Idempotent; a host
// endpoint of that name that this node did not create is left alone.
func (a *Agent) ensureAutoHostEndpoint(ctx context.Context) error {
	on, err := autoHostEndpointsEnabled(ctx, a.store)
	if err != nil {
		return fmt.Errorf("kubecontrollersconfiguration default: %w", err)
	}
	name := a.cfg.NodeName + autoHEPSuffix
	rc := resources.New(a.store)
	for attempt := 0; attempt < 20; attempt++ {
		r, err := rc.Get(ctx, api.KindHostEndpoint, "", name)
		exists := err == nil
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return err
		}
		var cur *api.HostEndpoint
		if exists {
			cur = r.(*api.HostEndpoint)
			if cur.Labels[autoHEPCreatedBy] != autoHEPController {
				return nil // someone's own host endpoint of that name
			}
		}
		if !on {
			if !exists {
				return nil
			}
			err := rc.Delete(ctx, api.KindHostEndpoint, "", name, cur.ResourceVersion)
			if errors.Is(err, datastore.ErrConflict) {
				continue
			}
			if err == nil {
				a.log.Info("automatic host endpoint deleted", "name", name)
			}
			if errors.Is(err, datastore.ErrNotFound) {
				return nil
			}
			return err
		}
		nr, err := rc.Get(ctx, api.KindNode, "", a.cfg.NodeName)
		if err != nil {
			return err
		}
		want := desiredAutoHostEndpoint(nr.(*api.Node))
		if exists {
			if maps.Equal(cur.Labels, want.Labels) && slices.Equal(cur.Spec.ExpectedIPs, want.Spec.ExpectedIPs) &&
				cur.Spec.Node == want.Spec.Node && cur.Spec.InterfaceName == want.Spec.InterfaceName &&
				slices.Equal(cur.Spec.Profiles, want.Spec.Profiles) {
				return nil
			}
			cur.Labels, cur.Spec.Node, cur.Spec.InterfaceName = want.Labels, want.Spec.Node, want.Spec.InterfaceName
			cur.Spec.ExpectedIPs, cur.Spec.Profiles = want.Spec.ExpectedIPs, want.Spec.Profiles
			// cur carries the resourceVersion it was read at: compare-and-swap.
			if _, err := rc.Update(ctx, cur); errors.Is(err, datastore.ErrConflict) {
				continue
			} else if err != nil {
				return err
			}
			a.log.Info("automatic host endpoint updated", "name", name, "expectedIPs", want.Spec.ExpectedIPs)
			return nil
		}
		if _, err := rc.Create(ctx, want); errors.Is(err, datastore.ErrExists) {
			continue
		} else if err != nil {
			return err
		}
		a.log.Info("automatic host endpoint created", "name", name, "expectedIPs", want.Spec.ExpectedIPs)
		return nil
	}
	return fmt.Errorf("host endpoint %s: too many concurrent updates", name)
}

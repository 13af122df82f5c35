package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// Endpoint identity in the datastore.
const (
	// Namespace of every endpoint this package writes (Calico's default).
	Namespace = api.DefaultNamespace
	// OrchestratorLibnetwork marks endpoints of the Docker network plugin.
	OrchestratorLibnetwork = "libnetwork"
	// OrchestratorDocker marks endpoints of `calico container add`.
	OrchestratorDocker = "docker"
	// HandleAnnotation records the IPAM handle holding an endpoint's addresses.
	HandleAnnotation = "calico-docker/ipam-handle"
	// Labels the plugin and the CLI set on endpoints and profiles.
	LabelNetwork   = "docker.network"
	LabelContainer = "docker.container"
)

const (
	plProfile = "profiles"
	plIPPool  = "ippools"
)

// escapeName doubles '-' so that the parts of an endpoint name cannot run
// into each other (Calico's workload endpoint name scheme).
func escapeName(s string) string { return strings.ReplaceAll(s, "-", "--") }

// WEPName is the name of an endpoint: Calico's
// <node>-<orchestrator>-<workload>-<endpoint>, each part with '-' doubled.
// The libnetwork plugin uses workload "libnetwork" and the endpoint ID (the
// container is not known when the endpoint is created); the CLI uses the
// container ID and "eth0".
func WEPName(node, orchestrator, workload, endpoint string) string {
	return escapeName(node) + "-" + escapeName(orchestrator) + "-" + escapeName(workload) + "-" + escapeName(endpoint)
}

func libnetworkWEPName(node, endpointID string) string {
	return WEPName(node, OrchestratorLibnetwork, OrchestratorLibnetwork, endpointID)
}

// endpointRef is how IPAM attrs name an endpoint.
func endpointRef(name string) string { return Namespace + "/" + name }

// The helpers below read and write endpoints and profiles through
// resources.Client: it defaults, validates, sets uid and creationTimestamp
// once and encodes in Calico's stored form, keeping fields of a stored
// value that this project does not know.

// getWEP reads an endpoint and the revision it was read at;
// datastore.ErrNotFound if missing. The identity comes from the key: a
// body naming another endpoint is refused.
func getWEP(ctx context.Context, st datastore.Store, name string) (*api.WorkloadEndpoint, int64, error) {
	r, err := resources.New(st).Get(ctx, api.KindWorkloadEndpoint, Namespace, name)
	if err != nil {
		return nil, 0, err
	}
	w := r.(*api.WorkloadEndpoint)
	rev, _ := strconv.ParseInt(w.ResourceVersion, 10, 64)
	return w, rev, nil
}

// createWEP writes a new endpoint; datastore.ErrExists if it is there.
func createWEP(ctx context.Context, st datastore.Store, w *api.WorkloadEndpoint) error {
	w.Namespace = Namespace
	if _, err := resources.New(st).Create(ctx, w); err != nil {
		return fmt.Errorf("write workload endpoint %s: %w", w.Name, err)
	}
	return nil
}

// updateWEP applies change to the stored endpoint by compare-and-swap until
// it sticks. change returns false to write nothing. A missing endpoint is
// datastore.ErrNotFound.
func updateWEP(ctx context.Context, st datastore.Store, name string, change func(*api.WorkloadEndpoint) bool) error {
	_, err := resources.New(st).Modify(ctx, api.KindWorkloadEndpoint, Namespace, name, func(r api.Resource) (bool, error) {
		return change(r.(*api.WorkloadEndpoint)), nil
	})
	if err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("update workload endpoint %s: %w", name, err)
	}
	return err
}

// deleteWEP removes an endpoint; a missing one is success.
func deleteWEP(ctx context.Context, st datastore.Store, name string) error {
	err := resources.New(st).Delete(ctx, api.KindWorkloadEndpoint, Namespace, name, "")
	if err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return err
	}
	return nil
}

// listWEPs returns every workload endpoint of node.
func listWEPs(ctx context.Context, st datastore.Store, node string) ([]*api.WorkloadEndpoint, error) {
	items, _, err := resources.New(st).List(ctx, api.KindWorkloadEndpoint, "")
	if err != nil && !resources.Undecodable(err) {
		return nil, fmt.Errorf("list workload endpoints: %w", err)
	}
	var out []*api.WorkloadEndpoint
	for _, r := range items {
		if w := r.(*api.WorkloadEndpoint); w.Spec.Node == node {
			out = append(out, w)
		}
	}
	return out, nil
}

// networkProfile is the profile of a Docker network: members carry
// docker.network=<name> and may talk to each other; all egress is allowed.
func networkProfile(name string) *api.Profile {
	return &api.Profile{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.ProfileSpec{
			LabelsToApply: map[string]string{LabelNetwork: name},
			Ingress: []api.Rule{{Action: "Allow", Source: api.EntityRule{
				Selector: fmt.Sprintf("%s == '%s'", LabelNetwork, name)}}},
			Egress: []api.Rule{{Action: "Allow"}},
		},
	}
}

// ensureProfile creates the network's profile unless a profile of that
// name exists (which is then used as it is: an operator may have edited it).
func ensureProfile(ctx context.Context, st datastore.Store, network string) error {
	rc := resources.New(st)
	if _, err := rc.Get(ctx, api.KindProfile, "", network); err == nil {
		return nil
	} else if !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("read profile %s: %w", network, err)
	}
	p := networkProfile(network)
	api.Default(p)
	if api.Validate(p) != nil {
		return badf("docker network name %q cannot name a Calico profile: recreate the network with a name of lower-case letters, digits, '-' and '.'", network)
	}
	if _, err := rc.Create(ctx, p); err != nil && !errors.Is(err, datastore.ErrExists) {
		return fmt.Errorf("create profile %s: %w", network, err)
	}
	return nil
}

// validLabels keeps the labels that are valid Calico labels (Docker allows
// any text; a label an endpoint cannot carry is skipped, not an error).
func validLabels(in map[string]string) (ok map[string]string, skipped []string) {
	ok = map[string]string{}
	for k, v := range in {
		probe := &api.Profile{ObjectMeta: api.ObjectMeta{Name: "probe", Labels: map[string]string{k: v}}}
		if api.Validate(probe) != nil {
			skipped = append(skipped, k)
			continue
		}
		ok[k] = v
	}
	return ok, skipped
}

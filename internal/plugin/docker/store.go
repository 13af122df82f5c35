package docker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
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
	plWEP     = "workloadendpoints"
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

func wepKey(name string) string { return datastore.ResourceKey(plWEP, Namespace, name) }

// endpointRef is how IPAM attrs name an endpoint.
func endpointRef(name string) string { return Namespace + "/" + name }

func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// encode defaults, validates and serialises a resource for storage in
// Calico's stored form (see api.EncodeStored); prev is the value stored now,
// whose fields this project does not know are kept, or nil.
func encode(r api.Resource, prev []byte) ([]byte, error) {
	api.Default(r)
	if err := api.Validate(r); err != nil {
		return nil, err
	}
	return api.EncodeStored(r, prev)
}

func decodeWEP(kv datastore.KV) (*api.WorkloadEndpoint, error) {
	_, ns, name, ok := datastore.ParseResourceKey(kv.Key)
	if !ok {
		return nil, fmt.Errorf("%s: not a resource key", kv.Key)
	}
	// The identity comes from the key: a body naming another endpoint is refused.
	r, err := api.DecodeStoredKey(api.KindWorkloadEndpoint, ns, name, kv.Value, kv.Revision)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kv.Key, err)
	}
	w := r.(*api.WorkloadEndpoint)
	if w.Namespace == "" {
		w.Namespace = ns
	}
	return w, nil
}

// getWEP reads an endpoint; datastore.ErrNotFound if missing.
func getWEP(ctx context.Context, st datastore.Store, name string) (*api.WorkloadEndpoint, int64, error) {
	w, kv, err := getWEPKV(ctx, st, name)
	return w, kv.Revision, err
}

// getWEPKV is getWEP with the stored value.
func getWEPKV(ctx context.Context, st datastore.Store, name string) (*api.WorkloadEndpoint, datastore.KV, error) {
	kv, err := st.Get(ctx, wepKey(name))
	if err != nil {
		return nil, kv, err
	}
	w, err := decodeWEP(kv)
	return w, kv, err
}

// createWEP writes a new endpoint; datastore.ErrExists if it is there.
func createWEP(ctx context.Context, st datastore.Store, w *api.WorkloadEndpoint) error {
	w.Namespace = Namespace
	if w.UID == "" {
		w.UID = newUID()
	}
	if w.CreationTimestamp == "" {
		w.CreationTimestamp = time.Now().UTC().Format(time.RFC3339)
	}
	b, err := encode(w, nil)
	if err != nil {
		return fmt.Errorf("workload endpoint %s: %w", w.Name, err)
	}
	if _, err := st.Create(ctx, wepKey(w.Name), b); err != nil {
		return fmt.Errorf("write workload endpoint %s: %w", w.Name, err)
	}
	return nil
}

// updateWEP applies change to the stored endpoint by compare-and-swap until
// it sticks. change returns false to write nothing. A missing endpoint is
// datastore.ErrNotFound.
func updateWEP(ctx context.Context, st datastore.Store, name string, change func(*api.WorkloadEndpoint) bool) error {
	for i := 0; ; i++ {
		w, kv, err := getWEPKV(ctx, st, name)
		if err != nil {
			return err
		}
		if !change(w) {
			return nil
		}
		b, err := encode(w, kv.Value)
		if err != nil {
			return fmt.Errorf("workload endpoint %s: %w", name, err)
		}
		_, err = st.Update(ctx, wepKey(name), b, kv.Revision)
		if err == nil {
			return nil
		}
		if !errors.Is(err, datastore.ErrConflict) || i >= 20 {
			return fmt.Errorf("update workload endpoint %s: %w", name, err)
		}
	}
}

// deleteWEP removes an endpoint; a missing one is success.
func deleteWEP(ctx context.Context, st datastore.Store, name string) error {
	err := st.Delete(ctx, wepKey(name), 0)
	if err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("delete workload endpoint %s: %w", name, err)
	}
	return nil
}

// listWEPs returns every workload endpoint of node.
func listWEPs(ctx context.Context, st datastore.Store, node string) ([]*api.WorkloadEndpoint, error) {
	kvs, _, err := st.List(ctx, datastore.ResourcePrefix(plWEP))
	if err != nil {
		return nil, fmt.Errorf("list workload endpoints: %w", err)
	}
	var out []*api.WorkloadEndpoint
	for _, kv := range kvs {
		w, err := decodeWEP(kv)
		if err != nil {
			continue
		}
		if w.Spec.Node == node {
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
	key := datastore.ResourceKey(plProfile, "", network)
	if _, err := st.Get(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("read profile %s: %w", network, err)
	}
	p := networkProfile(network)
	p.UID = newUID()
	p.CreationTimestamp = time.Now().UTC().Format(time.RFC3339)
	b, err := encode(p, nil)
	if err != nil {
		return badf("docker network name %q cannot name a Calico profile: recreate the network with a name of lower-case letters, digits, '-' and '.'", network)
	}
	if _, err := st.Create(ctx, key, b); err != nil && !errors.Is(err, datastore.ErrExists) {
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

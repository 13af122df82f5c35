package trace

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/syncer"
)

// Lister is the part of datastore.Store Load needs.
type Lister interface {
	List(ctx context.Context, prefix string) ([]datastore.KV, int64, error)
}

// Load reads what calc needs from the datastore, decoded as the syncer
// decodes it (the agent's input), and returns a Tracer over it with each
// node's merged FelixConfiguration (global "default" overlaid by
// "node.<name>").
func Load(ctx context.Context, st Lister) (*Tracer, error) {
	s, felix, staged, err := load(ctx, st)
	if err != nil {
		return nil, err
	}
	return NewWithStaged(s, felix, staged), nil
}

// LoadSnapshot is Load's snapshot and per-node FelixConfiguration.
func LoadSnapshot(ctx context.Context, st Lister) (*calc.Snapshot, map[string]*api.FelixConfigurationSpec, error) {
	s, felix, _, err := load(ctx, st)
	return s, felix, err
}

// load is LoadSnapshot and the staged policies.
func load(ctx context.Context, st Lister) (*calc.Snapshot, map[string]*api.FelixConfigurationSpec, *Staged, error) {
	s := &calc.Snapshot{}
	staged := &Staged{}
	felix := map[string]*api.FelixConfigurationSpec{}
	for _, prefix := range []string{datastore.ResourcesRoot, syncer.BlockAssignmentPrefix} {
		kvs, _, err := st.List(ctx, prefix)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, kv := range kvs {
			u, err := syncer.Decode(kv)
			if err != nil {
				continue // other kinds, or values the agent skips too
			}
			switch o := u.Object.(type) {
			case *api.WorkloadEndpoint:
				s.WorkloadEndpoints = append(s.WorkloadEndpoints, *o)
			case *api.Profile:
				s.Profiles = append(s.Profiles, *o)
			case *api.NetworkPolicy:
				s.NetworkPolicies = append(s.NetworkPolicies, *o)
			case *api.GlobalNetworkPolicy:
				s.GlobalNetworkPolicies = append(s.GlobalNetworkPolicies, *o)
			case *api.StagedNetworkPolicy:
				staged.Namespaced = append(staged.Namespaced, *o)
			case *api.StagedGlobalNetworkPolicy:
				staged.Global = append(staged.Global, *o)
			case *api.Tier:
				s.Tiers = append(s.Tiers, *o)
			case *api.GlobalNetworkSet:
				s.GlobalNetworkSets = append(s.GlobalNetworkSets, *o)
			case *api.NetworkSet:
				s.NetworkSets = append(s.NetworkSets, *o)
			case *api.HostEndpoint:
				s.HostEndpoints = append(s.HostEndpoints, *o)
			case *api.IPPool:
				s.IPPools = append(s.IPPools, *o)
			case *api.Node:
				s.Nodes = append(s.Nodes, *o)
			case *api.FelixConfiguration:
				spec := o.Spec
				felix[o.Name] = &spec
			case *syncer.Block:
				s.Blocks = append(s.Blocks, calc.Block{CIDR: o.CIDR, Node: o.Node})
			}
		}
	}
	byNode := map[string]*api.FelixConfigurationSpec{}
	for _, n := range s.Nodes {
		m, err := MergeFelix(felix["default"], felix["node."+n.Name])
		if err != nil {
			return nil, nil, nil, err
		}
		byNode[n.Name] = m
	}
	for _, w := range s.WorkloadEndpoints {
		if _, ok := byNode[w.Spec.Node]; !ok {
			m, err := MergeFelix(felix["default"], felix["node."+w.Spec.Node])
			if err != nil {
				return nil, nil, nil, err
			}
			byNode[w.Spec.Node] = m
		}
	}
	s.Felix = felix["default"]
	return s, byNode, staged, nil
}

// MergeFelix overlays the fields set in a node's FelixConfiguration on the
// global one (each top-level field the node sets wins), as the agent does.
func MergeFelix(global, node *api.FelixConfigurationSpec) (*api.FelixConfigurationSpec, error) {
	if node == nil {
		return global, nil
	}
	if global == nil {
		return node, nil
	}
	m := map[string]json.RawMessage{}
	for _, src := range []*api.FelixConfigurationSpec{global, node} {
		b, err := json.Marshal(src)
		if err != nil {
			return nil, fmt.Errorf("merge FelixConfiguration: %w", err)
		}
		var part map[string]json.RawMessage
		if err := json.Unmarshal(b, &part); err != nil {
			return nil, fmt.Errorf("merge FelixConfiguration: %w", err)
		}
		for k, v := range part {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	out := &api.FelixConfigurationSpec{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("merge FelixConfiguration: %w", err)
	}
	return out, nil
}

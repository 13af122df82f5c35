package calc

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// hostState is the Calculator's part for host endpoints. Host endpoints
// and host policies are few, so their part of Desired is recomputed from
// these copies (computeHostEndpoints, the function Compute uses) whenever
// anything changes while some HostEndpoint exists.
type hostState struct {
	heps     map[string]*api.HostEndpoint
	gnps     map[string]*api.GlobalNetworkPolicy
	profiles map[string]*api.Profile
	dirty    bool
	// wlChains and wlSets are the workload part of the last Desired's
	// Chains and Sets, before the host part was merged in.
	wlChains []dataplane.PolicyChain
	wlSets   []dataplane.IPSet
	out      hostOutput
}

// deepCopy copies a resource through JSON, so that nothing the caller
// holds is retained.
func deepCopy[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("calc: copy %T: %v", v, err)) // our own types always marshal
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("calc: copy %T: %v", v, err))
	}
	return out
}

// hostRecord stores a copy of v under name in *m, and marks the state
// changed when the copy differs from what was there and some host endpoint
// exists (a policy or profile matters to the host part only then).
func hostRecord[T any](c *Calculator, m *map[string]*T, name string, v *T) {
	if *m == nil {
		*m = map[string]*T{}
	}
	cp := deepCopy(v)
	if old, ok := (*m)[name]; ok && reflect.DeepEqual(old, cp) {
		return
	}
	(*m)[name] = cp
	if len(c.hosts.heps) > 0 {
		c.touch()
	}
}

func hostForget[T any](c *Calculator, m map[string]*T, name string) {
	if _, ok := m[name]; ok {
		delete(m, name)
		if len(c.hosts.heps) > 0 || c.hosts.dirty {
			c.touch()
		}
	}
}

func (c *Calculator) recordGNP(p *api.GlobalNetworkPolicy) {
	cp := &api.GlobalNetworkPolicy{}
	cp.Name, cp.Spec = p.Name, p.Spec
	hostRecord(c, &c.hosts.gnps, p.Name, cp)
}

func (c *Calculator) recordProfile(p *api.Profile) {
	cp := &api.Profile{}
	cp.Name, cp.Spec = p.Name, p.Spec
	hostRecord(c, &c.hosts.profiles, p.Name, cp)
}

// UpsertHostEndpoint adds or replaces a HostEndpoint (any host).
func (c *Calculator) UpsertHostEndpoint(h *api.HostEndpoint) {
	cp := &api.HostEndpoint{}
	cp.Name, cp.Labels, cp.Spec = h.Name, h.Labels, h.Spec
	hostRecord(c, &c.hosts.heps, h.Name, cp)
}

// DeleteHostEndpoint removes a HostEndpoint; deleting one that is not there
// is a no-op.
func (c *Calculator) DeleteHostEndpoint(name string) {
	if _, ok := c.hosts.heps[name]; ok {
		c.hosts.dirty = true // the last one going must still be recomputed
	}
	hostForget(c, c.hosts.heps, name)
}

// finishHosts merges the host part into d (called by Desired, before the
// dirty flags are cleared; chainsNew/setsNew: d.Chains/d.Sets were rebuilt).
func (c *Calculator) finishHosts(d *dataplane.Desired, chainsNew, setsNew bool) {
	if chainsNew {
		c.hosts.wlChains = d.Chains
	}
	if setsNew {
		c.hosts.wlSets = d.Sets
	}
	if !c.hosts.dirty && !chainsNew && !setsNew {
		return
	}
	if c.hosts.dirty {
		h := &c.hosts
		in := &hostInput{node: c.node, profiles: h.profiles, felix: c.felix, tiers: c.tiers,
			workloads: func(yield func(*epView, []netip.Prefix)) {
				for _, e := range c.weps {
					yield(&e.view, e.addrs)
				}
			}}
		for _, x := range h.heps {
			in.heps = append(in.heps, x)
		}
		for _, g := range h.gnps {
			in.gnps = append(in.gnps, g)
		}
		h.out = computeHostEndpoints(in)
		h.dirty = false
	}
	mergeHost(d, &c.hosts.out, c.hosts.wlChains, c.hosts.wlSets)
}

// cloneSlicePtr copies a pointer to a slice, keeping nil and empty apart
// (an empty failsafe list is not an unset one).
func cloneSlicePtr[T any](p *[]T) *[]T {
	if p == nil {
		return nil
	}
	v := append([]T{}, (*p)...)
	return &v
}

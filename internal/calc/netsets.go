package calc

import (
	"maps"
	"slices"

	"github.com/calico-docker/calico/internal/api"
)

// Network sets (GlobalNetworkSet, NetworkSet) are what rule selectors see
// besides workload endpoints: labelled lists of networks, whose nets join
// the address set of every rule selector that matches them. They are never
// subjects of policy (no chains, no routes). As in Calico:
//   - a GlobalNetworkSet has its own labels and no namespace: a
//     namespaceSelector matches it only when it is global() (or when the
//     namespace selector is satisfied by a namespace without labels, e.g.
//     !has(x)), and a NetworkPolicy's rule selectors, confined to its
//     namespace, never match it;
//   - a NetworkSet also has projectcalico.org/namespace = its namespace
//     (which wins over its own labels) and its namespace's labels for
//     namespaceSelector, like a workload endpoint of that namespace.

// Key prefixes of network sets among the entries selectors are matched
// against (never equal to a workload endpoint's namespace/name).
const (
	gnsKeyPrefix = "globalnetworkset:"
	nsKeyPrefix  = "networkset:"
)

// netSetEntry builds the entry of a network set: a wepEntry that only
// selector sets (setIdx) ever see.
func netSetEntry(key, ns string, labels map[string]string, nets []string) *wepEntry {
	w := &api.WorkloadEndpoint{}
	w.Name, w.Namespace = key, ns
	w.Labels = maps.Clone(labels)
	w.Spec.IPNetworks = slices.Clone(nets)
	return &wepEntry{id: key, w: w, view: netSetView(ns, labels), addrs: parseNets(nets),
		sets: map[*setEntry]struct{}{}, pols: map[*policyEntry]struct{}{}}
}

// netSetView is a network set as selectors see it; ns is "" for a
// GlobalNetworkSet.
func netSetView(ns string, labels map[string]string) epView {
	l := make(map[string]string, len(labels)+1)
	maps.Copy(l, labels)
	if ns == "" {
		delete(l, labelNamespace)
		return epView{labels: l, nsLabels: map[string]string{}, global: true}
	}
	l[labelNamespace] = ns
	return epView{labels: l, nsLabels: map[string]string{labelName: ns}}
}

// computeNetSets lists the network sets of s (later duplicates win) as
// computeEPs, sorted by key.
func computeNetSets(s *Snapshot) []*computeEP {
	byKey := map[string]*computeEP{}
	add := func(key, ns string, labels map[string]string, nets []string) {
		byKey[key] = &computeEP{view: netSetView(ns, labels), addrs: parseNets(nets)}
	}
	for i := range s.GlobalNetworkSets {
		g := &s.GlobalNetworkSets[i]
		add(gnsKeyPrefix+g.Name, "", g.Labels, g.Spec.Nets)
	}
	for i := range s.NetworkSets {
		n := &s.NetworkSets[i]
		add(nsKeyPrefix+n.Namespace+"/"+n.Name, n.Namespace, n.Labels, n.Spec.Nets)
	}
	out := make([]*computeEP, 0, len(byKey))
	for _, k := range sortedKeys(byKey) {
		out = append(out, byKey[k])
	}
	return out
}

// UpsertGlobalNetworkSet adds or replaces a GlobalNetworkSet.
func (c *Calculator) UpsertGlobalNetworkSet(s *api.GlobalNetworkSet) {
	c.upsertNetSet(gnsKeyPrefix+s.Name, "", s.Labels, s.Spec.Nets)
}

// DeleteGlobalNetworkSet removes a GlobalNetworkSet.
func (c *Calculator) DeleteGlobalNetworkSet(name string) {
	c.deleteNetSet(gnsKeyPrefix + name)
}

// UpsertNetworkSet adds or replaces a NetworkSet.
func (c *Calculator) UpsertNetworkSet(s *api.NetworkSet) {
	c.upsertNetSet(nsKeyPrefix+s.Namespace+"/"+s.Name, s.Namespace, s.Labels, s.Spec.Nets)
}

// DeleteNetworkSet removes a NetworkSet.
func (c *Calculator) DeleteNetworkSet(namespace, name string) {
	c.deleteNetSet(nsKeyPrefix + namespace + "/" + name)
}

func (c *Calculator) upsertNetSet(key, ns string, labels map[string]string, nets []string) {
	if c.netsets == nil {
		c.netsets = map[string]*wepEntry{}
	}
	e := c.netsets[key]
	if e == nil {
		c.touch()
		e = netSetEntry(key, ns, labels, nets)
		c.netsets[key] = e
		c.setIdx.addEndpoint(e)
		return
	}
	sameLabels := maps.Equal(e.w.Labels, labels)
	sameNets := slices.Equal(e.w.Spec.IPNetworks, nets)
	if sameLabels && sameNets {
		return
	}
	c.touch()
	if !sameNets {
		addrs := parseNets(nets)
		for s := range e.sets {
			for _, a := range e.addrs {
				s.removeAddr(a)
			}
			for _, a := range addrs {
				s.addAddr(a)
			}
			c.setChanged(s)
		}
		e.addrs = addrs
		e.w.Spec.IPNetworks = slices.Clone(nets)
	}
	if !sameLabels {
		view := netSetView(ns, labels)
		var changed []string
		for k, v := range view.labels {
			if ov, ok := e.view.labels[k]; !ok || ov != v {
				changed = append(changed, k)
			}
		}
		for k := range e.view.labels {
			if _, ok := view.labels[k]; !ok {
				changed = append(changed, k)
			}
		}
		e.view = view
		e.w.Labels = maps.Clone(labels)
		c.setIdx.updateEndpoint(e, changed, false)
	}
}

func (c *Calculator) deleteNetSet(key string) {
	e := c.netsets[key]
	if e == nil {
		return
	}
	c.touch()
	c.setIdx.removeEndpoint(e)
	delete(c.netsets, key)
}

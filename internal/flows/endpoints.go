package flows

import (
	"maps"
	"net/netip"
	"sync"

	"github.com/calico-docker/calico/internal/api"
)

// Peer is what a flow record says about one side's workload endpoint.
type Peer struct {
	// Name is the container's name (label docker.container), else the
	// endpoint's ID.
	Name string
	// Network is the Docker network (label docker.network), else the first
	// profile.
	Network string
	Labels  map[string]string
	// Node is the host the endpoint lives on.
	Node string
}

// Directory maps addresses to the cluster's workload endpoints, local and
// remote, so that a record names the far side of a flow too (the
// dataplane's Desired only knows this host's endpoints). The node keeps it
// current from the datastore watch; it is safe for concurrent use.
type Directory struct {
	mu    sync.RWMutex
	byKey map[string][]netip.Addr // namespace/name -> its addresses
	peers map[netip.Addr]Peer
}

// NewDirectory makes an empty directory.
func NewDirectory() *Directory {
	return &Directory{byKey: map[string][]netip.Addr{}, peers: map[netip.Addr]Peer{}}
}

// Upsert records w (replacing what its name had).
func (d *Directory) Upsert(w *api.WorkloadEndpoint) {
	key := w.Namespace + "/" + w.Name
	p := Peer{Name: w.Labels["docker.container"], Network: w.Labels["docker.network"], Labels: maps.Clone(w.Labels), Node: w.Spec.Node}
	if p.Name == "" {
		p.Name = key
	}
	if p.Network == "" && len(w.Spec.Profiles) > 0 {
		p.Network = w.Spec.Profiles[0]
	}
	var addrs []netip.Addr
	for _, n := range w.Spec.IPNetworks {
		if pr, err := netip.ParsePrefix(n); err == nil && pr.IsSingleIP() {
			addrs = append(addrs, pr.Addr())
		} else if a, err := netip.ParseAddr(n); err == nil {
			addrs = append(addrs, a)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removeLocked(key)
	d.byKey[key] = addrs
	for _, a := range addrs {
		d.peers[a] = p
	}
}

// Delete forgets the endpoint namespace/name.
func (d *Directory) Delete(namespace, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removeLocked(namespace + "/" + name)
}

func (d *Directory) removeLocked(key string) {
	for _, a := range d.byKey[key] {
		delete(d.peers, a)
	}
	delete(d.byKey, key)
}

// Lookup returns the endpoint owning a.
func (d *Directory) Lookup(a netip.Addr) (Peer, bool) {
	if d == nil {
		return Peer{}, false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	p, ok := d.peers[a]
	return p, ok
}

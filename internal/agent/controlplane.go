package agent

import (
	"net"
	"net/url"
	"slices"
	"strconv"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
	"github.com/calico-docker/calico/internal/dataplane"
)

// controlPlanePorts are the TCP ports this node is configured to serve or
// use for its control plane beyond calc.DefaultControlPlanePorts: health,
// metrics, the embedded etcd's client and peer URLs, the datastore
// endpoints and the BGP port. Workloads may not reach them on any node
// (see calc.computeControlPlane); the cluster-wide list lives in calc.
func (c *Config) controlPlanePorts() []dataplane.ProtoPort {
	var ports []dataplane.ProtoPort
	add := func(p int) {
		if p > 0 && p <= 65535 {
			ports = append(ports, dataplane.ProtoPort{Protocol: calc.ProtoTCP, Port: uint16(p)})
		}
	}
	for _, hp := range []string{c.HealthAddr, c.MetricsAddr} {
		if _, p, err := net.SplitHostPort(hp); err == nil {
			n, _ := strconv.Atoi(p)
			add(n)
		}
	}
	urls := slices.Concat(c.EtcdListenURLs, []string{c.EtcdPeerURL}, c.Datastore.Endpoints)
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && u.Port() != "" {
			n, _ := strconv.Atoi(u.Port())
			add(n)
		}
	}
	add(c.BGPPort)
	add(c.FlowsPort)
	return ports
}

// bgpListenPorts are the BGP listen ports BGPConfiguration resources set
// (cluster-wide and per node): any node may listen on them.
func bgpListenPorts(cfgs map[string]*api.BGPConfiguration) []dataplane.ProtoPort {
	var ports []dataplane.ProtoPort
	for _, c := range cfgs {
		if c.Spec.ListenPort != 0 {
			ports = append(ports, dataplane.ProtoPort{Protocol: calc.ProtoTCP, Port: c.Spec.ListenPort})
		}
	}
	return ports
}

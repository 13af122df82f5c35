package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/hostports"
)

// Published ports (`docker run -p`). Docker maps ports itself only for its
// bridge driver; a remote driver gets the container's bindings in
// ProgramExternalConnectivity (Options["com.docker.network.portmap"]) when
// the container joins, and RevokeExternalConnectivity when it leaves. The
// driver picks the host ports (-P and host port ranges), reserves them on
// the host (hostports.Holder) and records them in the endpoint's
// spec.ports[]; the node's calc and nft driver turn those into DNAT rules.

const (
	optPortMap      = "com.docker.network.portmap"
	optExposedPorts = "com.docker.network.endpoint.exposedports"
)

// wirePortBinding is one element of the portmap option as Docker's
// libnetwork encodes it (types.PortBinding: Proto is the IP protocol
// number, addresses are strings, "" when unset).
type wirePortBinding struct {
	Proto       json.RawMessage
	IP          string
	Port        uint16
	HostIP      string
	HostPort    uint16
	HostPortEnd uint16
}

// portRequest is one binding Docker asks for.
type portRequest struct {
	proto string // "tcp" or "udp"
	port  uint16
	// hostIP as Docker gave it: "" (every address), "0.0.0.0", "::" or one address.
	hostIP      string
	first, last uint16 // host port range; 0, 0: any free port
}

func (r portRequest) String() string {
	hp := "0"
	if r.first != 0 {
		hp = strconv.Itoa(int(r.first))
		if r.last != r.first {
			hp += "-" + strconv.Itoa(int(r.last))
		}
	}
	ip := r.hostIP
	if ip != "" {
		ip += ":"
	}
	return fmt.Sprintf("-p %s%s:%d/%s", ip, hp, r.port, r.proto)
}

// parsePortMap reads the bindings of a ProgramExternalConnectivity request.
func parsePortMap(opts map[string]any) ([]portRequest, error) {
	raw, ok := opts[optPortMap]
	if !ok || raw == nil {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, badf("option %s: %v", optPortMap, err)
	}
	var wire []wirePortBinding
	if err := json.Unmarshal(b, &wire); err != nil {
		return nil, badf("option %s is not a list of port bindings: %v", optPortMap, err)
	}
	var out []portRequest
	for _, w := range wire {
		r := portRequest{port: w.Port, hostIP: strings.TrimSpace(w.HostIP), first: w.HostPort, last: w.HostPortEnd}
		switch p := strings.Trim(strings.ToLower(string(w.Proto)), `"`); p {
		case "6", "tcp":
			r.proto = "tcp"
		case "17", "udp":
			r.proto = "udp"
		case "132", "sctp":
			return nil, badf("-p %d/sctp: the calico driver publishes TCP and UDP ports only", w.Port)
		default:
			return nil, badf("port binding %d has an unknown protocol %s", w.Port, p)
		}
		if r.port == 0 {
			return nil, badf("port binding %s has no container port", r)
		}
		if r.hostIP != "" {
			a, err := netip.ParseAddr(r.hostIP)
			if err != nil || a.Zone() != "" {
				return nil, badf("port binding %s: host IP %q is not an IP address", r, r.hostIP)
			}
			a = a.Unmap()
			r.hostIP = a.String()
		}
		if r.last == 0 {
			r.last = r.first
		}
		if r.first == 0 && r.last != 0 || r.last < r.first {
			return nil, badf("port binding %s: bad host port range %d-%d", r, w.HostPort, w.HostPortEnd)
		}
		out = append(out, r)
	}
	return out, nil
}

// families lists the address families a binding is published on, given
// the endpoint's addresses.
func (r portRequest) families(v4, v6 netip.Addr) ([]int, error) {
	switch r.hostIP {
	case "":
		var fs []int
		if v4.IsValid() {
			fs = append(fs, 4)
		}
		if v6.IsValid() {
			fs = append(fs, 6)
		}
		return fs, nil
	}
	a := netip.MustParseAddr(r.hostIP)
	if a.Is4() {
		if !v4.IsValid() {
			return nil, badf("%s: the container has no IPv4 address on this network", r)
		}
		return []int{4}, nil
	}
	if !v6.IsValid() {
		return nil, badf("%s: the container has no IPv6 address on this network (create the network with --ipv6)", r)
	}
	return []int{6}, nil
}

// bindingsOf expands an endpoint port into host bindings.
func bindingsOf(proto, hostIP string, hostPort, port uint16, v4, v6 netip.Addr, fams []int) []hostports.Binding {
	var out []hostports.Binding
	for _, f := range fams {
		b := hostports.Binding{Proto: proto, Family: f, HostPort: hostPort}
		if a, err := netip.ParseAddr(hostIP); err == nil && !a.IsUnspecified() {
			b.HostIP = a.Unmap()
		}
		if f == 4 {
			b.Target = netip.AddrPortFrom(v4, port)
		} else {
			b.Target = netip.AddrPortFrom(v6, port)
		}
		out = append(out, b)
	}
	return out
}

// endpointAddrs returns the endpoint's first IPv4 and IPv6 address.
func endpointAddrs(w *api.WorkloadEndpoint) (v4, v6 netip.Addr) {
	for _, n := range w.Spec.IPNetworks {
		ip, err := parseAddr(n)
		if err != nil {
			continue
		}
		if ip.Is4() && !v4.IsValid() {
			v4 = ip
		}
		if ip.Is6() && !v6.IsValid() {
			v6 = ip
		}
	}
	return v4, v6
}

// publishedBindings lists the host bindings an endpoint's spec.ports holds.
func publishedBindings(w *api.WorkloadEndpoint) []hostports.Binding {
	v4, v6 := endpointAddrs(w)
	var out []hostports.Binding
	for _, p := range w.Spec.Ports {
		if p.HostPort == 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol.String())
		if n, err := p.Protocol.NumberValue(); err == nil {
			switch n {
			case 6:
				proto = "tcp"
			case 17:
				proto = "udp"
			}
		}
		r := portRequest{proto: proto, port: p.Port, hostIP: p.HostIP}
		fams, err := r.families(v4, v6)
		if err != nil {
			continue
		}
		out = append(out, bindingsOf(proto, p.HostIP, p.HostPort, p.Port, v4, v6, fams)...)
	}
	return out
}

// ephemeralRange is the host's ip_local_port_range, from which -P picks
// ports (as Docker does), else Linux's default.
func ephemeralRange() (uint16, uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, e1 := strconv.Atoi(f[0])
			hi, e2 := strconv.Atoi(f[1])
			if e1 == nil && e2 == nil && lo > 0 && hi <= 65535 && lo <= hi {
				return uint16(lo), uint16(hi)
			}
		}
	}
	return 32768, 60999
}

type programRequest struct {
	NetworkID  string
	EndpointID string
	Options    map[string]any
}

// programExternalConnectivity publishes the container's ports: host ports
// are chosen, reserved on the host and recorded on the endpoint. A port that
// is taken fails the call with the port named, and nothing is kept.
func (s *Server) programExternalConnectivity(ctx context.Context, req *programRequest) (empty, error) {
	if err := checkID("endpoint ID", req.EndpointID); err != nil {
		return empty{}, err
	}
	reqs, err := parsePortMap(req.Options)
	if err != nil {
		return empty{}, err
	}
	name := libnetworkWEPName(s.node, req.EndpointID)
	if len(reqs) == 0 {
		return empty{}, s.unpublish(ctx, name)
	}
	w, _, err := getWEP(ctx, s.store, name)
	if err != nil {
		if errors.Is(err, datastore.ErrNotFound) {
			return empty{}, badf("endpoint %.12s is unknown: it was not created by this node's calico driver", req.EndpointID)
		}
		return empty{}, fmt.Errorf("read endpoint %.12s: %w", req.EndpointID, err)
	}
	v4, v6 := endpointAddrs(w)
	// What other endpoints of this node publish.
	others, err := listWEPs(ctx, s.store, s.node)
	if err != nil {
		return empty{}, err
	}
	var taken []takenBinding
	for _, o := range others {
		if o.Name == name {
			continue
		}
		for _, b := range publishedBindings(o) {
			taken = append(taken, takenBinding{b: b, by: o.Spec.Workload})
		}
	}
	s.portMu.Lock()
	defer s.portMu.Unlock()
	var ports []api.WorkloadEndpointPort
	var all []hostports.Binding
	fail := func(err error) (empty, error) {
		if s.cfg.HostPorts != nil {
			// Back to what the endpoint held before (normally nothing).
			_ = s.cfg.HostPorts.Set(name, publishedBindings(w))
		}
		return empty{}, err
	}
	for _, r := range reqs {
		fams, err := r.families(v4, v6)
		if err != nil {
			return fail(err)
		}
		if len(fams) == 0 {
			continue
		}
		first, last := r.first, r.last
		random := first == 0
		if random {
			first, last = ephemeralRange()
		}
		n := int(last) - int(first) + 1
		start := 0
		if random {
			start = rand.IntN(n)
		}
		var lastErr error
		chosen := uint16(0)
		for i := 0; i < n && chosen == 0; i++ {
			hp := uint16(int(first) + (start+i)%n)
			bs := bindingsOf(r.proto, r.hostIP, hp, r.port, v4, v6, fams)
			if err := s.claim(name, bs, taken, all); err != nil {
				lastErr = err
				continue
			}
			chosen = hp
			all = append(all, bs...)
		}
		if chosen == 0 {
			if lastErr == nil {
				lastErr = fmt.Errorf("%s: no free host port", r)
			}
			if r.first != r.last && !random {
				lastErr = fmt.Errorf("no free host port in %d-%d: %w", r.first, r.last, lastErr)
			}
			return fail(lastErr)
		}
		proto := "TCP"
		if r.proto == "udp" {
			proto = "UDP"
		}
		ports = append(ports, api.WorkloadEndpointPort{Protocol: api.Protocol{Name: proto}, Port: r.port, HostPort: chosen, HostIP: r.hostIP})
	}
	if s.cfg.HostPorts != nil {
		if err := s.cfg.HostPorts.Set(name, all); err != nil {
			return fail(err)
		}
	}
	err = updateWEP(ctx, s.store, name, func(x *api.WorkloadEndpoint) bool {
		kept := slices.DeleteFunc(slices.Clone(x.Spec.Ports), func(p api.WorkloadEndpointPort) bool { return p.HostPort != 0 })
		x.Spec.Ports = append(kept, ports...)
		return true
	})
	if err != nil {
		return fail(fmt.Errorf("record the published ports of endpoint %.12s: %w", req.EndpointID, err))
	}
	s.log.Info("published ports", "endpoint", short(req.EndpointID), "ports", len(ports))
	return empty{}, nil
}

type takenBinding struct {
	b  hostports.Binding
	by string
}

// claim checks bs against other endpoints' ports and this call's earlier
// bindings, then reserves them on the host.
func (s *Server) claim(owner string, bs []hostports.Binding, taken []takenBinding, mine []hostports.Binding) error {
	for _, b := range bs {
		for _, t := range taken {
			if hostports.Overlaps(t.b, b) {
				return fmt.Errorf("bind for %s failed: %w (published by container %s)", b, hostports.ErrInUse, t.by)
			}
		}
		for _, m := range mine {
			if hostports.Overlaps(m, b) {
				return fmt.Errorf("bind for %s failed: %w (published twice by this container)", b, hostports.ErrInUse)
			}
		}
	}
	if s.cfg.HostPorts == nil {
		return nil
	}
	for _, b := range bs {
		if err := s.cfg.HostPorts.Reserve(owner, b); err != nil {
			// Keep what earlier requests of this call reserved.
			_ = s.cfg.HostPorts.Set(owner, mine)
			return err
		}
	}
	return nil
}

// revokeExternalConnectivity unpublishes the container's ports.
func (s *Server) revokeExternalConnectivity(ctx context.Context, req *endpointRequest) (empty, error) {
	if err := checkID("endpoint ID", req.EndpointID); err != nil {
		return empty{}, err
	}
	return empty{}, s.unpublish(ctx, libnetworkWEPName(s.node, req.EndpointID))
}

// unpublish removes an endpoint's published ports from the datastore and
// releases them on the host. A missing endpoint is success.
func (s *Server) unpublish(ctx context.Context, name string) error {
	err := updateWEP(ctx, s.store, name, func(x *api.WorkloadEndpoint) bool {
		n := len(x.Spec.Ports)
		x.Spec.Ports = slices.DeleteFunc(x.Spec.Ports, func(p api.WorkloadEndpointPort) bool { return p.HostPort != 0 })
		return len(x.Spec.Ports) != n
	})
	if err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("unpublish the ports of %s: %w", name, err)
	}
	if s.cfg.HostPorts != nil {
		s.cfg.HostPorts.Release(name)
	}
	return nil
}

// restorePorts reserves again the ports this node's endpoints publish (after
// a restart of the node). A port taken meanwhile is reported, not fatal: its
// DNAT still works, only the reservation and the loopback proxy are missing.
func (s *Server) restorePorts(ctx context.Context) {
	if s.cfg.HostPorts == nil {
		return
	}
	weps, err := listWEPs(ctx, s.store, s.node)
	if err != nil {
		s.log.Warn("cannot restore published ports", "err", err)
		return
	}
	for _, w := range weps {
		if bs := publishedBindings(w); len(bs) > 0 {
			if err := s.cfg.HostPorts.Set(w.Name, bs); err != nil {
				s.log.Warn("cannot reserve a published port again", "endpoint", w.Name, "err", err)
			}
		}
	}
}

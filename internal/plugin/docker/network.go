package docker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/workload"
	"github.com/moby/moby/client"
)

// The network driver: networks become profiles, endpoints become
// WorkloadEndpoints, Join creates the veth.

var idRE = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

// swarmIDRE: swarm's network IDs are 25 base-36 characters.
var swarmIDRE = regexp.MustCompile(`^[0-9a-z]{25}$`)

func checkID(what, id string) error {
	if !idRE.MatchString(id) && (what != "network ID" || !swarmIDRE.MatchString(id)) {
		if len(id) > 80 { // a hostile value: quote the start only
			return badf("%s %q... (%d bytes) is not a Docker ID (12-64 lower-case hex digits)", what, id[:64], len(id))
		}
		return badf("%s %q is not a Docker ID (12-64 lower-case hex digits)", what, id)
	}
	return nil
}

func (s *Server) netCapabilities(context.Context, *empty) (capabilitiesResponse, error) {
	// Scope local: each host creates the network itself (a global scope needs
	// swarm). Connectivity global: the same name on every host is one network.
	return capabilitiesResponse{Scope: "local", ConnectivityScope: "global"}, nil
}

// createNetwork checks the network's options and address data. Docker
// stores the network only after this call returns, so its name cannot be
// looked up here; the profile is made when the name is known (the network's
// "create" event, or its first endpoint).
func (s *Server) createNetwork(ctx context.Context, req *createNetworkRequest) (empty, error) {
	if err := checkID("network ID", req.NetworkID); err != nil {
		return empty{}, err
	}
	ni := &netInfo{}
	pool := ""
	for k, v := range req.Options {
		switch k {
		case optGeneric:
			generic, ok := v.(map[string]any)
			if !ok {
				return empty{}, badf("network options have an unexpected form (%T)", v)
			}
			for gk, gv := range generic {
				switch gk {
				case "mtu":
					mtu, err := parseMTU(gv)
					if err != nil {
						return empty{}, err
					}
					ni.mtu = mtu
				case optPool:
					pool, _ = gv.(string)
					if err := checkPoolName(pool); err != nil {
						return empty{}, err
					}
				default:
					return empty{}, badf("unknown network option -o %s: the calico driver accepts only -o mtu=N and -o %s=NAME", gk, optPool)
				}
			}
		case optEnableIPv6:
		case optInternal:
			if b, _ := v.(bool); b {
				return empty{}, badf("--internal is not supported by the calico driver: deny egress with a policy instead")
			}
		default:
			s.log.Debug("ignoring a network option", "option", k, "value", v)
		}
	}
	for _, d := range append(slices.Clone(req.IPv4Data), req.IPv6Data...) {
		if d.AddressSpace != LocalAddressSpace && d.AddressSpace != GlobalAddressSpace {
			return empty{}, badf("the calico driver needs the calico IPAM driver: add --ipam-driver %s", IPAMDriverName)
		}
	}
	if len(req.IPv4Data) == 0 && len(req.IPv6Data) == 0 {
		return empty{}, badf("the network has no address pool: create it with --ipam-driver %s", IPAMDriverName)
	}
	if err := s.bindPool(ctx, pool, req.IPv4Data, req.IPv6Data, true); err != nil {
		return empty{}, err
	}
	s.mu.Lock()
	s.networks[req.NetworkID] = ni
	s.mu.Unlock()
	if err := s.storeNetwork(ctx, req.NetworkID, *ni); err != nil {
		return empty{}, err
	}
	return empty{}, nil
}

func parseMTU(v any) (int, error) {
	var n int
	var err error
	switch t := v.(type) {
	case string:
		n, err = strconv.Atoi(strings.TrimSpace(t))
	case float64:
		n = int(t)
		if float64(n) != t {
			err = errors.New("not an integer")
		}
	default:
		err = fmt.Errorf("unexpected type %T", v)
	}
	if err != nil || n < minMTU || n > maxMTU {
		return 0, badf("-o mtu=%v is not valid: want an integer from %d to %d", v, minMTU, maxMTU)
	}
	return n, nil
}

func (s *Server) deleteNetwork(ctx context.Context, req *networkRequest) (empty, error) {
	// The profile stays: the same network name on other hosts uses it, and
	// an operator may have attached policy to it.
	if err := checkID("network ID", req.NetworkID); err != nil {
		return empty{}, err
	}
	s.mu.Lock()
	delete(s.networks, req.NetworkID)
	s.mu.Unlock()
	if err := s.store.Delete(ctx, networkKey(s.node, req.NetworkID), 0); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return empty{}, fmt.Errorf("forget network %.12s: %w", req.NetworkID, err)
	}
	return empty{}, nil
}

// NetworksPrefix holds what the driver knows of each node's Docker
// networks: /calico/docker/v1/networks/<node>/<network ID> = {"name", "mtu"}.
// Docker does not tell a driver the name of a network, and asking Docker's
// API from inside a driver call deadlocks while dockerd restores its
// containers at start-up (the API is not served yet); the record lets a
// restarted plugin answer without asking.
const NetworksPrefix = "/calico/docker/v1/networks/"

func networkKey(node, id string) string { return NetworksPrefix + node + "/" + id }

type storedNetwork struct {
	Name string `json:"name,omitempty"`
	MTU  int    `json:"mtu,omitempty"`
}

func (s *Server) storeNetwork(ctx context.Context, id string, ni netInfo) error {
	b, _ := json.Marshal(storedNetwork{Name: ni.name, MTU: ni.mtu})
	if _, err := s.store.Update(ctx, networkKey(s.node, id), b, 0); err != nil {
		return fmt.Errorf("record network %.12s: %w", id, err)
	}
	return nil
}

// dockerCallTimeout bounds a Docker API call made inside a driver call, so a
// dockerd that cannot answer (it is starting) fails the call in good time.
const dockerCallTimeout = 10 * time.Second

// network returns what is known of a Docker network, asking Docker for its
// name (and options, after a restart of this server) when needed.
func (s *Server) network(ctx context.Context, id string) (netInfo, error) {
	s.mu.Lock()
	ni, ok := s.networks[id]
	var cached netInfo
	if ok {
		cached = *ni
	}
	s.mu.Unlock()
	if ok && cached.name != "" {
		return cached, nil
	}
	if kv, err := s.store.Get(ctx, networkKey(s.node, id)); err == nil {
		var sn storedNetwork
		if json.Unmarshal(kv.Value, &sn) == nil && sn.Name != "" {
			info := netInfo{name: sn.Name, mtu: sn.MTU}
			s.setNetworkName(id, info.name, info.mtu)
			return info, nil
		}
	} else if !errors.Is(err, datastore.ErrNotFound) {
		return netInfo{}, fmt.Errorf("read network %.12s: %w", id, err)
	}
	if s.cfg.Docker == nil {
		return netInfo{}, fmt.Errorf("cannot look up the name of network %.12s: no Docker client configured", id)
	}
	dctx, cancel := context.WithTimeout(ctx, dockerCallTimeout)
	defer cancel()
	res, err := s.cfg.Docker.NetworkInspect(dctx, id, client.NetworkInspectOptions{})
	if err != nil {
		return netInfo{}, fmt.Errorf("look up network %.12s in Docker: %w", id, err)
	}
	info := netInfo{name: res.Network.Name, mtu: cached.mtu}
	if v, ok := res.Network.Options["mtu"]; ok && info.mtu == 0 {
		if m, err := parseMTU(v); err == nil {
			info.mtu = m
		}
	}
	s.setNetworkName(id, info.name, info.mtu)
	if err := s.storeNetwork(ctx, id, info); err != nil {
		return netInfo{}, err
	}
	return info, nil
}

// learnNetwork records a network's name (from its "create" event).
func (s *Server) learnNetwork(ctx context.Context, id, name string) error {
	s.setNetworkName(id, name, 0)
	s.mu.Lock()
	info := *s.networks[id]
	s.mu.Unlock()
	return s.storeNetwork(ctx, id, info)
}

func (s *Server) setNetworkName(id, name string, mtu int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ni := s.networks[id]
	if ni == nil {
		ni = &netInfo{}
		s.networks[id] = ni
	}
	ni.name = name
	if mtu > 0 {
		ni.mtu = mtu
	}
}

// createEndpoint writes the WorkloadEndpoint of a new endpoint: its
// addresses (assigned by RequestAddress just before), its network's
// profile, its host interface name and MAC. The IPAM handle holding the
// addresses is adopted: recorded on the endpoint and named in the
// addresses' attributes, so `calico ipam check` and the reconcile see who
// owns them. Creating an endpoint that exists with the same addresses is
// success (a retry).
func (s *Server) createEndpoint(ctx context.Context, req *createEndpointRequest) (createEndpointResponse, error) {
	if err := checkID("network ID", req.NetworkID); err != nil {
		return createEndpointResponse{}, err
	}
	if err := checkID("endpoint ID", req.EndpointID); err != nil {
		return createEndpointResponse{}, err
	}
	if req.Interface == nil || (req.Interface.Address == "" && req.Interface.AddressIPv6 == "") {
		return createEndpointResponse{}, badf("endpoint %.12s has no address: the network must use --ipam-driver %s", req.EndpointID, IPAMDriverName)
	}
	var addrs []netip.Addr
	for _, a := range []string{req.Interface.Address, req.Interface.AddressIPv6} {
		if a == "" {
			continue
		}
		ip, err := parseAddr(a)
		if err != nil {
			return createEndpointResponse{}, badf("endpoint address %q is not an IP address", a)
		}
		addrs = append(addrs, ip)
	}
	var resp createEndpointResponse
	mac := req.Interface.MacAddress
	if mac == "" {
		// Docker generates one when the IPAM driver asks for it; without,
		// give the container a random locally administered MAC.
		hw := make(net.HardwareAddr, 6)
		_, _ = rand.Read(hw)
		hw[0] = hw[0]&0xfe | 0x02
		mac = hw.String()
		resp.Interface = &endpointInterface{MacAddress: mac}
	} else if _, err := net.ParseMAC(mac); err != nil {
		return createEndpointResponse{}, badf("endpoint MAC %q is not a MAC address", mac)
	}
	nw, err := s.network(ctx, req.NetworkID)
	if err != nil {
		return createEndpointResponse{}, err
	}
	if err := ensureProfile(ctx, s.store, nw.name); err != nil {
		return createEndpointResponse{}, err
	}
	name := libnetworkWEPName(s.node, req.EndpointID)
	handle, err := s.adoptAddresses(ctx, name, addrs)
	if err != nil {
		return createEndpointResponse{}, err
	}
	nets := make([]string, len(addrs))
	for i, ip := range addrs {
		nets[i] = hostPrefix(ip)
	}
	w := &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Name: name, Annotations: map[string]string{HandleAnnotation: handle}},
		Spec: api.WorkloadEndpointSpec{
			Orchestrator:  OrchestratorLibnetwork,
			Node:          s.node,
			Endpoint:      req.EndpointID,
			IPNetworks:    nets,
			Profiles:      []string{nw.name},
			InterfaceName: workload.HostIfaceName(req.EndpointID),
			MAC:           mac,
		},
	}
	if err := createWEP(ctx, s.store, w); err != nil {
		if !errors.Is(err, datastore.ErrExists) {
			return createEndpointResponse{}, err
		}
		old, _, gerr := getWEP(ctx, s.store, name)
		if gerr != nil {
			return createEndpointResponse{}, fmt.Errorf("read workload endpoint %s: %w", name, gerr)
		}
		if !slices.Equal(old.Spec.IPNetworks, nets) {
			return createEndpointResponse{}, fmt.Errorf("endpoint %.12s exists with other addresses (%s)", req.EndpointID, strings.Join(old.Spec.IPNetworks, ", "))
		}
		if resp.Interface != nil {
			resp.Interface.MacAddress = old.Spec.MAC
		}
	}
	s.mu.Lock()
	s.eps[req.EndpointID] = &epInfo{ipv6: slices.ContainsFunc(addrs, netip.Addr.Is6), network: req.NetworkID}
	s.mu.Unlock()
	return resp, nil
}

// adoptAddresses checks that the endpoint's addresses are held by one of
// this node's endpoint handles and by no other existing endpoint, and names
// the endpoint in their IPAM attributes. It returns the handle.
func (s *Server) adoptAddresses(ctx context.Context, wep string, addrs []netip.Addr) (string, error) {
	handle := ""
	for _, ip := range addrs {
		info, err := s.ipam.ShowIP(ctx, ip)
		if err != nil {
			return "", fmt.Errorf("look up %s: %w", ip, err)
		}
		if !info.Assigned {
			return "", badf("address %s was not assigned by calico-ipam (the network must use --ipam-driver %s)", ip, IPAMDriverName)
		}
		if !strings.HasPrefix(info.Handle, libnetworkHandlePrefix+s.node+".") && !isSwarmHandle(info.Handle) {
			return "", badf("address %s is held by %q, not by an endpoint of node %s", ip, info.Handle, s.node)
		}
		if info.Attrs != nil && info.Attrs.Endpoint != "" && info.Attrs.Endpoint != endpointRef(wep) {
			other := strings.TrimPrefix(info.Attrs.Endpoint, Namespace+"/")
			if _, _, err := getWEP(ctx, s.store, other); err == nil {
				return "", badf("address %s already belongs to endpoint %s (do two endpoints share a MAC address?)", ip, other)
			}
		}
		if handle != "" && handle != info.Handle {
			return "", badf("the endpoint's addresses are held by two handles (%s, %s)", handle, info.Handle)
		}
		handle = info.Handle
	}
	err := s.ipam.SetHandleAttrs(ctx, handle, ipam.Attrs{Kind: ipam.KindWorkload, Node: s.node, Endpoint: endpointRef(wep)})
	if err != nil {
		return "", fmt.Errorf("record endpoint %s on its addresses: %w", wep, err)
	}
	return handle, nil
}

func (s *Server) endpointInfo(context.Context, *endpointRequest) (endpointInfoResponse, error) {
	return endpointInfoResponse{Value: map[string]any{}}, nil
}

// deleteEndpoint removes the WorkloadEndpoint. The addresses are freed by
// the ReleaseAddress calls Docker makes next (and by the reconcile if they
// never come).
func (s *Server) deleteEndpoint(ctx context.Context, req *endpointRequest) (empty, error) {
	if err := checkID("endpoint ID", req.EndpointID); err != nil {
		return empty{}, err
	}
	if w, _, err := getWEP(ctx, s.store, libnetworkWEPName(s.node, req.EndpointID)); err == nil {
		defer s.swarmEndpointGone(ctx, w)
	}
	if err := deleteWEP(ctx, s.store, libnetworkWEPName(s.node, req.EndpointID)); err != nil {
		return empty{}, err
	}
	if s.cfg.HostPorts != nil {
		s.cfg.HostPorts.Release(libnetworkWEPName(s.node, req.EndpointID))
	}
	s.mu.Lock()
	delete(s.eps, req.EndpointID)
	s.mu.Unlock()
	return empty{}, nil
}

// join creates the veth: the host side is cali<endpoint ID prefix>, the
// other end gets a temporary name that Docker moves into the container and
// renames eth<N>. The container routes everything through the link-local
// gateway, which the host answers for.
func (s *Server) join(ctx context.Context, req *joinRequest) (joinResponse, error) {
	if err := checkID("endpoint ID", req.EndpointID); err != nil {
		return joinResponse{}, err
	}
	ep, err := s.endpoint(ctx, req.NetworkID, req.EndpointID)
	if err != nil {
		return joinResponse{}, err
	}
	nw, err := s.network(ctx, ep.network)
	if err != nil {
		return joinResponse{}, err
	}
	mtu, err := s.vethMTU(ctx, nw.mtu)
	if err != nil {
		return joinResponse{}, err
	}
	hostName := workload.HostIfaceName(req.EndpointID)
	peer := tempIfaceName(req.EndpointID)
	if err := workload.CreateVeth(hostName, peer, mtu, s.cfg.NetNS); err != nil {
		return joinResponse{}, fmt.Errorf("create veth %s: %w", hostName, err)
	}
	resp := joinResponse{
		InterfaceName: interfaceName{SrcName: peer, DstPrefix: "eth"},
		Gateway:       GatewayIPv4,
		StaticRoutes:  []staticRoute{{Destination: GatewayIPv4 + "/32", RouteType: routeConnected}},
	}
	if ep.ipv6 {
		// CreateVeth gives every host side the same link-local address.
		if err := hasAddr(hostName, s.cfg.NetNS, workload.HostIPv6Gateway); err != nil {
			return joinResponse{}, fmt.Errorf("the endpoint has an IPv6 address but %w (is IPv6 disabled on this host?)", err)
		}
		ll := workload.HostIPv6Gateway
		resp.GatewayIPv6 = ll.String()
		resp.StaticRoutes = append(resp.StaticRoutes, staticRoute{Destination: hostPrefix(ll), RouteType: routeConnected})
	}
	return resp, nil
}

// endpoint returns what Join needs, from memory or (after a restart of
// this server) from the datastore.
func (s *Server) endpoint(ctx context.Context, networkID, endpointID string) (epInfo, error) {
	s.mu.Lock()
	ep, ok := s.eps[endpointID]
	s.mu.Unlock()
	if ok {
		return *ep, nil
	}
	w, _, err := getWEP(ctx, s.store, libnetworkWEPName(s.node, endpointID))
	if err != nil {
		if errors.Is(err, datastore.ErrNotFound) {
			return epInfo{}, badf("endpoint %.12s is unknown: it was not created by this node's calico driver", endpointID)
		}
		return epInfo{}, fmt.Errorf("read endpoint %.12s: %w", endpointID, err)
	}
	info := epInfo{network: networkID}
	for _, n := range w.Spec.IPNetworks {
		if ip, err := parseAddr(n); err == nil && ip.Is6() {
			info.ipv6 = true
		}
	}
	s.mu.Lock()
	s.eps[endpointID] = &info
	s.mu.Unlock()
	return info, nil
}

// tempIfaceName is the container side's name until Docker renames it.
func tempIfaceName(endpointID string) string {
	if len(endpointID) > 11 {
		endpointID = endpointID[:11]
	}
	return "tmp" + endpointID
}

// leave removes the veth (deleting the host side removes both ends).
func (s *Server) leave(_ context.Context, req *endpointRequest) (empty, error) {
	if err := checkID("endpoint ID", req.EndpointID); err != nil {
		return empty{}, err
	}
	if err := workload.DeleteVeth(workload.HostIfaceName(req.EndpointID), s.cfg.NetNS); err != nil {
		return empty{}, fmt.Errorf("delete veth of endpoint %.12s: %w", req.EndpointID, err)
	}
	return empty{}, nil
}

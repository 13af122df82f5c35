package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/workload"
)

// The IPAM driver. Docker asks it for a pool when a network is created and
// for an address each time an endpoint is created. See doc.go for the
// handle design that makes RequestAddress idempotent and leak-free.

// Handle names. A libnetwork endpoint's addresses are held under
// "libnetwork.<node>.<mac>" (the 12 hex digits of the MAC Docker generated
// for the endpoint and passes in RequestAddress because the driver asks for
// it); a container networked by `calico container add` under
// "container.<node>.<container ID>".
const (
	libnetworkHandlePrefix = "libnetwork."
	containerHandlePrefix  = "container."
)

// endpointHandle derives the handle of a libnetwork endpoint from its MAC,
// or returns a random one when Docker sent none (then a retried request is
// not recognised, but nothing leaks: the reconcile frees it).
func endpointHandle(node, mac string) string {
	if hw, err := net.ParseMAC(mac); err == nil && len(hw) == 6 {
		return libnetworkHandlePrefix + node + "." + hex.EncodeToString(hw)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return libnetworkHandlePrefix + node + ".r" + hex.EncodeToString(b[:])
}

// containerHandle is the handle of a `calico container add` container.
func containerHandle(node, containerID string) string {
	return containerHandlePrefix + node + "." + containerID
}

// ownHandle reports whether handle is one this node's plugin or CLI made.
func ownHandle(node, handle string) bool {
	for _, p := range []string{libnetworkHandlePrefix, containerHandlePrefix} {
		if rest, ok := strings.CutPrefix(handle, p+node+"."); ok && rest != "" && !strings.Contains(rest, ".") {
			return true
		}
	}
	return false
}

func (s *Server) ipamCapabilities(context.Context, *empty) (ipamCapabilitiesResponse, error) {
	// RequiresMACAddress: Docker then generates the endpoint's MAC before
	// asking for its address and passes it along; the handle is derived from it.
	return ipamCapabilitiesResponse{RequiresMACAddress: true}, nil
}

func (s *Server) addressSpaces(context.Context, *empty) (addressSpacesResponse, error) {
	return addressSpacesResponse{LocalDefaultAddressSpace: LocalAddressSpace, GlobalDefaultAddressSpace: GlobalAddressSpace}, nil
}

// requestPool answers a network's pool request. Without --subnet the
// network gets the whole address space ("0.0.0.0/0" or "::/0"), which keeps
// Docker from checking overlaps or allocating a gateway itself; addresses
// then come from every enabled IPPool. With --subnet the subnet must be an
// IPPool's CIDR exactly.
func (s *Server) requestPool(ctx context.Context, req *requestPoolRequest) (requestPoolResponse, error) {
	if req.SubPool != "" {
		return requestPoolResponse{}, badf("--ip-range is not supported by calico-ipam: addresses come from the whole IPPool given with --subnet")
	}
	for k := range req.Options {
		if k == optSerialAlloc {
			continue // swarm's allocator asks for serial allocation; blocks decide
		}
		return requestPoolResponse{}, badf("calico-ipam takes no --ipam-opt options (got %q)", k)
	}
	fam, whole, poolID := 4, "0.0.0.0/0", PoolIDv4
	gw := GatewayIPv4 + "/32"
	if req.V6 {
		fam, whole, poolID = 6, "::/0", PoolIDv6
		gw = gatewayIPv6Pool + "/128"
	}
	if req.Pool == "" || req.Pool == whole {
		// "" from `docker network create`; the whole space again on a swarm
		// node, which creates the network with the pool the manager got.
		// A pool ID of its own, which the network's -o pool can bind to a
		// pool (poolopt.go), and a swarm network's ReleasePool uses to
		// free what the swarm allocator still holds in it.
		tok := newPoolToken()
		s.addPendingPool(fam, tok)
		return requestPoolResponse{PoolID: poolID + swarmPoolSep + tok, Pool: whole, Data: map[string]string{dataGateway: gw}}, nil
	}
	if req.AddressSpace == GlobalAddressSpace {
		poolID += swarmPoolSep + newPoolToken()
	}
	want, err := netip.ParsePrefix(req.Pool)
	if err != nil {
		return requestPoolResponse{}, badf("--subnet %q is not a CIDR", req.Pool)
	}
	if (fam == 6) != want.Addr().Is6() {
		return requestPoolResponse{}, badf("--subnet %s is not an IPv%d subnet", req.Pool, fam)
	}
	pools, err := s.ipam.Pools(ctx)
	if err != nil {
		return requestPoolResponse{}, fmt.Errorf("read the IPPools: %w", err)
	}
	var names []string
	for _, p := range pools {
		if p.CIDR == want.Masked() && want.Addr() == want.Masked().Addr() {
			if p.Disabled {
				return requestPoolResponse{}, badf("--subnet %s is IPPool %q, which is disabled", req.Pool, p.Name)
			}
			id := p.CIDR.String()
			if tok, ok := strings.CutPrefix(poolID, PoolIDv4+swarmPoolSep); ok {
				id += swarmPoolSep + tok
			} else if tok, ok := strings.CutPrefix(poolID, PoolIDv6+swarmPoolSep); ok {
				id += swarmPoolSep + tok
			}
			return requestPoolResponse{PoolID: id, Pool: p.CIDR.String(), Data: map[string]string{dataGateway: gw}}, nil
		}
		if p.Family() == fam && !p.Disabled {
			names = append(names, fmt.Sprintf("%s (%s)", p.CIDR, p.Name))
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return requestPoolResponse{}, badf("--subnet %s is not the CIDR of an IPPool, and there are no enabled IPv%d pools: create one with `calico apply`", req.Pool, fam)
	}
	return requestPoolResponse{}, badf("--subnet %s is not the CIDR of an IPPool; the IPv%d pools are: %s", req.Pool, fam, strings.Join(names, ", "))
}

func (s *Server) releasePool(ctx context.Context, req *releasePoolRequest) (empty, error) {
	// Pools are the IPPools themselves; nothing was reserved. A swarm
	// network's pool frees what the swarm allocator still holds in it.
	if _, tok, ok := strings.Cut(req.PoolID, swarmPoolSep); ok {
		return empty{}, errors.Join(s.swarmReleasePool(ctx, tok), s.forgetPoolChoice(ctx, tok))
	}
	return empty{}, nil
}

// poolFamily returns the family and the pool restriction of a pool ID.
func poolFamily(poolID string) (int, []netip.Prefix, error) {
	poolID, _, _ = strings.Cut(poolID, swarmPoolSep)
	switch poolID {
	case PoolIDv4:
		return 4, nil, nil
	case PoolIDv6:
		return 6, nil, nil
	}
	p, err := netip.ParsePrefix(poolID)
	if err != nil {
		return 0, nil, badf("unknown pool ID %q: the network was not created by calico-ipam", poolID)
	}
	if p.Addr().Is4() {
		return 4, []netip.Prefix{p}, nil
	}
	return 6, []netip.Prefix{p}, nil
}

func hostPrefix(ip netip.Addr) string {
	return netip.PrefixFrom(ip, ip.BitLen()).String()
}

// requestAddress assigns one address to an endpoint. Gateway requests (a
// network created with --gateway) are answered with the given address, or
// the link-local gateway, without touching the pools: containers never use
// a pool address as their gateway.
func (s *Server) requestAddress(ctx context.Context, req *requestAddressRequest) (requestAddressResponse, error) {
	fam, pools, err := poolFamily(req.PoolID)
	if err != nil {
		return requestAddressResponse{}, err
	}
	var ip netip.Addr
	if req.Address != "" {
		if ip, err = parseAddr(req.Address); err != nil {
			return requestAddressResponse{}, badf("address %q is not an IP address", req.Address)
		}
		if (fam == 6) != ip.Is6() {
			return requestAddressResponse{}, badf("address %s is not an IPv%d address", ip, fam)
		}
	}
	if pools == nil && req.Options[optAddressType] != addrTypeGateway {
		_, tok, _ := strings.Cut(req.PoolID, swarmPoolSep)
		p, ok, err := s.chosenPool(ctx, tok)
		if err != nil {
			return requestAddressResponse{}, err
		}
		if ok {
			if ip.IsValid() && !p.CIDR.Contains(ip) {
				return requestAddressResponse{}, badf("address %s is not in IPPool %q (%s), chosen for the network with -o %s", ip, p.Name, p.CIDR, optPool)
			}
			pools = []netip.Prefix{p.CIDR}
		}
	}
	if req.Options[optAddressType] == addrTypeGateway {
		if !ip.IsValid() {
			if fam == 4 {
				ip = netip.MustParseAddr(GatewayIPv4)
			} else {
				ip = netip.MustParseAddr(gatewayIPv6Pool)
			}
		}
		return requestAddressResponse{Address: hostPrefix(ip)}, nil
	}
	if req.Options[optMAC] == "" && isSwarmRequest(req.Options) {
		_, tok, _ := strings.Cut(req.PoolID, swarmPoolSep)
		return s.swarmAllocate(ctx, fam, pools, ip, tok)
	}
	handle := endpointHandle(s.node, req.Options[optMAC])
	attrs := ipam.Attrs{Kind: ipam.KindWorkload, Node: s.node}
	if ip.IsValid() {
		info, err := s.ipam.ShowIP(ctx, ip)
		if err != nil {
			return requestAddressResponse{}, fmt.Errorf("look up %s: %w", ip, err)
		}
		if ok, err := s.swarmTakeUp(ctx, info, req.Options[optMAC]); err != nil || ok {
			if err != nil {
				return requestAddressResponse{}, err
			}
			return requestAddressResponse{Address: hostPrefix(ip)}, nil
		}
		if err := s.ipam.AssignIP(ctx, ip, handle, s.node, attrs); err != nil {
			var inUse *ipam.InUseError
			if errors.As(err, &inUse) {
				return requestAddressResponse{}, badf("address %s is already in use", ip)
			}
			return requestAddressResponse{}, fmt.Errorf("assign %s: %w", ip, err)
		}
		return requestAddressResponse{Address: hostPrefix(ip)}, nil
	}
	args := ipam.AssignArgs{Handle: handle, Node: s.node, Attrs: attrs}
	if fam == 4 {
		args.Num4, args.Pools4 = 1, pools
	} else {
		args.Num6, args.Pools6 = 1, pools
	}
	res, err := s.ipam.AutoAssign(ctx, args)
	if err != nil {
		switch {
		case errors.Is(err, ipam.ErrNoPool):
			return requestAddressResponse{}, fmt.Errorf("no enabled IPv%d IPPool applies to node %s: create one with `calico apply`", fam, s.node)
		case errors.Is(err, ipam.ErrExhausted):
			return requestAddressResponse{}, fmt.Errorf("no free IPv%d address is left in the IPPools", fam)
		}
		return requestAddressResponse{}, fmt.Errorf("assign an IPv%d address: %w", fam, err)
	}
	got := res.IPv4
	if fam == 6 {
		got = res.IPv6
	}
	if len(got) == 0 {
		return requestAddressResponse{}, fmt.Errorf("assign an IPv%d address: the allocator returned none", fam)
	}
	return requestAddressResponse{Address: hostPrefix(got[0])}, nil
}

// releaseAddress frees an endpoint's address. Docker names only the
// address, so it is freed only while one of this node's endpoint handles
// holds it: a late or repeated release never frees an address that has
// since gone to another endpoint of another node or a manual reservation.
func (s *Server) releaseAddress(ctx context.Context, req *releaseAddressRequest) (empty, error) {
	ip, err := parseAddr(req.Address)
	if err != nil {
		return empty{}, badf("address %q is not an IP address", req.Address)
	}
	if isGatewayAddr(ip) {
		return empty{}, nil
	}
	info, err := s.ipam.ShowIP(ctx, ip)
	if err != nil {
		return empty{}, fmt.Errorf("look up %s: %w", ip, err)
	}
	if !info.Assigned {
		return empty{}, nil
	}
	if isSwarmHandle(info.Handle) {
		_, tok, _ := strings.Cut(req.PoolID, swarmPoolSep)
		return empty{}, s.swarmRelease(ctx, ip, tok)
	}
	if !strings.HasPrefix(info.Handle, libnetworkHandlePrefix+s.node+".") {
		s.log.Info("not releasing an address that another owner holds", "ip", ip, "handle", info.Handle)
		return empty{}, nil
	}
	if err := s.dropStaleEndpoint(ctx, info); err != nil {
		return empty{}, err
	}
	if _, err := s.ipam.ReleaseIPs(ctx, ip); err != nil {
		return empty{}, fmt.Errorf("release %s: %w", ip, err)
	}
	return empty{}, nil
}

// dropStaleEndpoint removes the endpoint an address being released still
// belongs to. Docker normally calls DeleteEndpoint first; when it drops an
// endpoint without the driver (its start-up cleanup of endpoints it could
// not restore deletes them before the remote driver is loaded), only the
// release arrives, and the endpoint must go with its address.
func (s *Server) dropStaleEndpoint(ctx context.Context, info ipam.IPInfo) error {
	if info.Attrs == nil || info.Attrs.Endpoint == "" {
		return nil
	}
	name, ok := strings.CutPrefix(info.Attrs.Endpoint, Namespace+"/")
	if !ok {
		return nil
	}
	w, _, err := getWEP(ctx, s.store, name)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read endpoint %s: %w", name, err)
	}
	if w.Spec.Node != s.node || w.Spec.Orchestrator != OrchestratorLibnetwork {
		return nil
	}
	s.log.Warn("Docker released the address of an endpoint it did not delete; removing the endpoint", "endpoint", name, "ip", info.IP)
	if w.Spec.InterfaceName != "" {
		if err := workload.DeleteVeth(w.Spec.InterfaceName, s.cfg.NetNS); err != nil {
			s.log.Warn("cannot remove the veth of a dropped endpoint", "interface", w.Spec.InterfaceName, "error", err)
		}
	}
	if err := deleteWEP(ctx, s.store, name); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.eps, w.Spec.Endpoint)
	s.mu.Unlock()
	return nil
}

func isGatewayAddr(ip netip.Addr) bool {
	return ip == netip.MustParseAddr(GatewayIPv4) || ip == netip.MustParseAddr(gatewayIPv6Pool)
}

// parseAddr accepts "10.0.0.1" or "10.0.0.1/32" (Docker sends both forms).
func parseAddr(s string) (netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, err
		}
		return p.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err
}

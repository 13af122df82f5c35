package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
)

// Choosing a pool by name: `docker network create -o pool=NAME` or, in a
// compose file or stack, `driver_opts: {pool: NAME}` (compose and stack
// drop `ipam.options`, and `--subnet` needs the pool's CIDR).
//
// The option is the network driver's, but the addresses are the IPAM
// driver's, and Docker never tells the IPAM driver a network's options or
// even its ID: it asks RequestPool first, then gives the network driver the
// network's options (CreateNetwork; on a swarm manager AllocateNetwork),
// then asks RequestAddress with only the pool ID RequestPool answered. So:
//   - RequestPool for the whole address space (no --subnet) answers a pool
//     ID of its own, "CalicoPoolIPv4~<token>", and keeps the token pending
//     (per family) for a short while;
//   - CreateNetwork/AllocateNetwork, which follow at once, take the pending
//     token of the pool's family and bind it to the pool:
//     /calico/docker/v1/pool-choice/<token> = pool name;
//   - RequestAddress with that pool ID assigns from that pool only, and
//     ReleasePool forgets the binding.
//
// Docker itself only checks that an address is inside the network's
// subnet, which stays the whole space (0.0.0.0/0): `docker network inspect`
// shows that, not the pool's CIDR. If two networks are being created at the
// same moment, their pending tokens cannot be told apart: a network that
// names a pool is then refused ("create it again"), never bound to the
// other network's pool. A swarm manager's allocator creates networks one at
// a time; compose creates its networks one after another.

// optPool is the network option naming the IPPool.
const optPool = "pool"

// PoolChoicePrefix holds the pool chosen for each pool ID:
// /calico/docker/v1/pool-choice/<token> = IPPool name.
const PoolChoicePrefix = "/calico/docker/v1/pool-choice/"

// pendingPoolTTL is how long a pool token waits for its network's options:
// Docker gives them (CreateNetwork, AllocateNetwork) right after the pool
// request, and a stale token only makes a later -o pool ambiguous.
const pendingPoolTTL = 10 * time.Second

type pendingPool struct {
	token string
	at    time.Time
}

func poolChoiceKey(tok string) string { return PoolChoicePrefix + tok }

// addPendingPool remembers a fresh whole-space pool token of family fam.
func (s *Server) addPendingPool(fam int, tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowFunc()
	s.pending[fam] = append(s.livePending(fam, now), pendingPool{token: tok, at: now})
}

// livePending returns the unexpired pending tokens of a family; s.mu held.
func (s *Server) livePending(fam int, now time.Time) []pendingPool {
	return slices.DeleteFunc(s.pending[fam], func(p pendingPool) bool { return now.Sub(p.at) > pendingPoolTTL })
}

// takePending removes and returns the only pending token of a family; n is
// how many were pending (0 or more than 1: none is taken).
func (s *Server) takePending(fam int) (tok string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.livePending(fam, s.nowFunc())
	s.pending[fam] = live
	if len(live) != 1 {
		return "", len(live)
	}
	s.pending[fam] = nil
	return live[0].token, 1
}

// dropPending forgets a token that was released before any network took it.
func (s *Server) dropPending(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fam, ps := range s.pending {
		s.pending[fam] = slices.DeleteFunc(ps, func(p pendingPool) bool { return p.token == tok })
	}
}

// poolByName finds an enabled IPPool by name; the error names the option.
func (s *Server) poolByName(ctx context.Context, name string) (ipam.Pool, error) {
	pools, err := s.ipam.Pools(ctx)
	if err != nil {
		return ipam.Pool{}, fmt.Errorf("read the IPPools: %w", err)
	}
	var names []string
	for _, p := range pools {
		if p.Name == name {
			if p.Disabled {
				return ipam.Pool{}, badf("-o %s=%s: IPPool %q is disabled", optPool, name, name)
			}
			return p, nil
		}
		if !p.Disabled {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return ipam.Pool{}, badf("-o %s=%s: there is no IPPool named %q, and no enabled IPPool at all: create one with `calico apply`", optPool, name, name)
	}
	return ipam.Pool{}, badf("-o %s=%s: there is no IPPool named %q; the enabled pools are: %s", optPool, name, name, strings.Join(names, ", "))
}

// checkPoolName checks the value of -o pool before anything is bound.
func checkPoolName(v string) error {
	if v == "" || len(v) > 253 || strings.ContainsAny(v, "/ \t\n") {
		return badf("-o %s=%q is not an IPPool name", optPool, v)
	}
	return nil
}

// bindPool binds the pending pool token of the named pool's family to the
// pool. subnets are the network's pools of that family as Docker gives
// them (nil when Docker does not say: AllocateNetwork has no IPv6 data).
// Without a pool name, a single pending token is just taken (it needs no
// binding).
func (s *Server) bindPool(ctx context.Context, name string, v4, v6 []ipamData, v6Known bool) error {
	if name == "" {
		s.takePending(4)
		s.takePending(6)
		return nil
	}
	p, err := s.poolByName(ctx, name)
	if err != nil {
		return err
	}
	fam, whole, data := p.Family(), "0.0.0.0/0", v4
	if fam == 6 {
		whole, data = "::/0", v6
	}
	if fam == 4 || v6Known {
		if len(data) == 0 {
			return badf("-o %s=%s: IPPool %q is an IPv%d pool, but the network has no IPv%d addresses (add --ipv6)", optPool, name, name, fam, fam)
		}
		for _, d := range data {
			if d.Pool != whole {
				return badf("-o %s=%s cannot be combined with --subnet %s: give one of them", optPool, name, d.Pool)
			}
		}
	}
	tok, n := s.takePending(fam)
	switch {
	case n == 0:
		return badf("-o %s=%s: the network's IPv%d pool was not requested from calico-ipam just before (create the network with --ipam-driver %s)", optPool, name, fam, IPAMDriverName)
	case n > 1:
		return badf("-o %s=%s: %d networks are being created at the same time, and calico-ipam cannot tell which is this one: create it again", optPool, name, n)
	}
	if _, err := s.store.Update(ctx, poolChoiceKey(tok), []byte(name), 0); err != nil {
		return fmt.Errorf("record the pool chosen with -o %s=%s: %w", optPool, name, err)
	}
	s.mu.Lock()
	s.poolChoice[tok] = name
	s.mu.Unlock()
	s.log.Info("network bound to an IPPool", "pool", name, "token", tok)
	return nil
}

// chosenPool returns the CIDR of the pool bound to a pool token, or false
// when the network chose none.
func (s *Server) chosenPool(ctx context.Context, tok string) (ipam.Pool, bool, error) {
	if tok == "" {
		return ipam.Pool{}, false, nil
	}
	s.mu.Lock()
	name, ok := s.poolChoice[tok]
	s.mu.Unlock()
	if !ok {
		kv, err := s.store.Get(ctx, poolChoiceKey(tok))
		switch {
		case errors.Is(err, datastore.ErrNotFound):
		case err != nil:
			return ipam.Pool{}, false, fmt.Errorf("read the network's pool choice: %w", err)
		default:
			name = string(kv.Value)
		}
		s.mu.Lock()
		s.poolChoice[tok] = name
		s.mu.Unlock()
	}
	if name == "" {
		return ipam.Pool{}, false, nil
	}
	pools, err := s.ipam.Pools(ctx)
	if err != nil {
		return ipam.Pool{}, false, fmt.Errorf("read the IPPools: %w", err)
	}
	for _, p := range pools {
		if p.Name == name {
			return p, true, nil
		}
	}
	return ipam.Pool{}, false, fmt.Errorf("IPPool %q, chosen for this network with -o %s, no longer exists", name, optPool)
}

// forgetPoolChoice drops a released pool's binding.
func (s *Server) forgetPoolChoice(ctx context.Context, tok string) error {
	s.dropPending(tok)
	s.mu.Lock()
	delete(s.poolChoice, tok)
	s.mu.Unlock()
	if err := s.store.Delete(ctx, poolChoiceKey(tok), 0); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("forget the network's pool choice: %w", err)
	}
	return nil
}

// allocateNetwork answers a swarm manager's AllocateNetwork for a network
// of the managed plugin: it checks the options as CreateNetwork does, binds
// -o pool, and returns the options, which swarm hands to every node's
// CreateNetwork as the network's driver options.
func (s *Server) allocateNetwork(ctx context.Context, req *allocateNetworkRequest) (allocateNetworkResponse, error) {
	if err := checkID("network ID", req.NetworkID); err != nil {
		return allocateNetworkResponse{}, err
	}
	out := map[string]string{}
	pool := ""
	for k, v := range req.Options {
		switch k {
		case "mtu":
			if _, err := parseMTU(v); err != nil {
				return allocateNetworkResponse{}, err
			}
		case optPool:
			if err := checkPoolName(v); err != nil {
				return allocateNetworkResponse{}, err
			}
			pool = v
		default:
			return allocateNetworkResponse{}, badf("unknown network option -o %s: the calico driver accepts only -o mtu=N and -o %s=NAME", k, optPool)
		}
		out[k] = v
	}
	if err := s.bindPool(ctx, pool, req.IPv4Data, req.IPv6Data, false); err != nil {
		return allocateNetworkResponse{}, err
	}
	s.rememberSwarmNetwork(req.NetworkID)
	return allocateNetworkResponse{Options: out}, nil
}

// freeNetwork: nothing is kept per swarm network (the pool's release frees
// its addresses and binding).
func (s *Server) freeNetwork(context.Context, *networkRequest) (empty, error) {
	return empty{}, nil
}

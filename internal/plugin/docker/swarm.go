package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
)

// Swarm. In swarm mode Docker's IPAM for a swarm-scoped network runs on
// the manager: its allocator (swarmkit's cnmallocator) asks the manager's
// IPAM driver for every task's address, with no MAC address in the
// options, and keeps the result in the swarm's raft state. The node that
// runs the task then asks its own IPAM driver for that exact address (with
// the endpoint's MAC), creates the endpoint and, when the task goes,
// releases it locally; the manager's allocator releases it for good.
//
// So:
//   - a request with no MAC is the swarm allocator's: the address is
//     assigned under a handle of its own, "docker-swarm.<random>", from the
//     manager node's blocks (a restored request for an address already held
//     by such a handle succeeds: the allocator replays its state when a
//     manager starts);
//   - a request with a MAC for an address a swarm handle holds is the task's
//     node taking it up: it is answered with the address and remembered
//     under /calico/docker/v1/swarm/<node>/<address>; the endpoint then
//     adopts the swarm handle (it names the endpoint in the address's
//     attributes, so `calico ipam check` judges it as any endpoint's);
//   - a release of such an address on a node that remembers taking it up
//     is that node's local release: only the memory goes (the address stays
//     the swarm's); any other release of it is the allocator's and frees it.
//     Either order of the two releases frees the address exactly once;
//   - when the endpoint goes, its name is cleared from the address's
//     attributes: until the allocator releases it, the address is the
//     swarm's (ipam check lists it as held by swarm, not as a leak).
//
// The task's address usually comes from a block of the manager's node; the
// task's node routes it as a borrowed /32, like any borrowed address.

// SwarmPrefix holds the swarm addresses each node has taken up:
// /calico/docker/v1/swarm/<node>/<address> = {"handle", "mac"}.
const SwarmPrefix = "/calico/docker/v1/swarm/"

// swarmNote is the note on an address the swarm allocator holds.
const swarmNote = "docker swarm: allocated by the swarm manager"

type swarmTaken struct {
	Handle string `json:"handle"`
	MAC    string `json:"mac,omitempty"`
	// At is when the node took the address up (the reconcile gives the
	// endpoint the grace period to appear).
	At time.Time `json:"at,omitzero"`
}

func swarmKey(node string, ip netip.Addr) string {
	return SwarmPrefix + node + "/" + strings.ReplaceAll(ip.String(), ":", "-")
}

func isSwarmHandle(h string) bool { return strings.HasPrefix(h, ipam.SwarmHandlePrefix) }

func newSwarmHandle() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return ipam.SwarmHandlePrefix + hex.EncodeToString(b[:])
}

func (s *Server) swarmAttrs() ipam.Attrs {
	return ipam.Attrs{Kind: ipam.KindWorkload, Node: s.node, Note: swarmNote}
}

// swarmAllocate answers the swarm allocator's RequestAddress.
func (s *Server) swarmAllocate(ctx context.Context, fam int, pools []netip.Prefix, ip netip.Addr, tok string) (requestAddressResponse, error) {
	if ip.IsValid() {
		info, err := s.ipam.ShowIP(ctx, ip)
		if err != nil {
			return requestAddressResponse{}, fmt.Errorf("look up %s: %w", ip, err)
		}
		if info.Assigned && isSwarmHandle(info.Handle) {
			// The allocator restoring its state (a manager started).
			return requestAddressResponse{Address: hostPrefix(ip)}, s.swarmPoolRecord(ctx, tok, ip, info.Handle)
		}
		h := newSwarmHandle()
		if err := s.swarmPoolRecord(ctx, tok, ip, h); err != nil {
			return requestAddressResponse{}, err
		}
		if err := s.ipam.AssignIP(ctx, ip, h, s.node, s.swarmAttrs()); err != nil {
			var inUse *ipam.InUseError
			if errors.As(err, &inUse) {
				return requestAddressResponse{}, badf("address %s is already in use", ip)
			}
			return requestAddressResponse{}, fmt.Errorf("assign %s: %w", ip, err)
		}
		return requestAddressResponse{Address: hostPrefix(ip)}, nil
	}
	args := ipam.AssignArgs{Handle: newSwarmHandle(), Node: s.node, Attrs: s.swarmAttrs()}
	if fam == 4 {
		args.Num4, args.Pools4 = 1, pools
	} else {
		args.Num6, args.Pools6 = 1, pools
	}
	res, err := s.ipam.AutoAssign(ctx, args)
	if err != nil {
		if errors.Is(err, ipam.ErrExhausted) {
			return requestAddressResponse{}, fmt.Errorf("no free IPv%d address is left in the IPPools", fam)
		}
		return requestAddressResponse{}, fmt.Errorf("assign an IPv%d address for a swarm task: %w", fam, err)
	}
	got := res.IPv4
	if fam == 6 {
		got = res.IPv6
	}
	if len(got) == 0 {
		return requestAddressResponse{}, fmt.Errorf("assign an IPv%d address: the allocator returned none", fam)
	}
	if err := s.swarmPoolRecord(ctx, tok, got[0], args.Handle); err != nil {
		return requestAddressResponse{}, err
	}
	return requestAddressResponse{Address: hostPrefix(got[0])}, nil
}

// swarmTakeUp answers the request of the task's node for an address the
// swarm allocator holds (info: its IPAM state). ok is false when the
// address is not the swarm's.
func (s *Server) swarmTakeUp(ctx context.Context, info ipam.IPInfo, mac string) (bool, error) {
	if !info.Assigned || !isSwarmHandle(info.Handle) {
		return false, nil
	}
	b, _ := json.Marshal(swarmTaken{Handle: info.Handle, MAC: mac, At: s.now().UTC()})
	if _, err := s.store.Update(ctx, swarmKey(s.node, info.IP), b, 0); err != nil {
		return false, fmt.Errorf("record swarm address %s: %w", info.IP, err)
	}
	return true, nil
}

// swarmRelease handles the release of an address a swarm handle holds.
func (s *Server) swarmRelease(ctx context.Context, ip netip.Addr, tok string) error {
	key := swarmKey(s.node, ip)
	_, err := s.store.Get(ctx, key)
	switch {
	case err == nil:
		// This node took the address up: its local release. The address
		// stays the swarm's until the allocator releases it.
		if err := s.store.Delete(ctx, key, 0); err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("forget swarm address %s: %w", ip, err)
		}
		return nil
	case !errors.Is(err, datastore.ErrNotFound):
		return fmt.Errorf("read swarm address %s: %w", ip, err)
	}
	if _, err := s.ipam.ReleaseIPs(ctx, ip); err != nil {
		return fmt.Errorf("release %s: %w", ip, err)
	}
	if tok != "" {
		if err := s.store.Delete(ctx, swarmPoolKey(tok, ip), 0); err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("forget swarm address %s: %w", ip, err)
		}
	}
	s.log.Debug("released a swarm address", "ip", ip)
	return nil
}

// Swarm pools. Removing a swarm network makes the allocator release the
// network's pool without releasing its tasks' addresses one by one, so
// each address the allocator takes is listed under the pool it came from:
// /calico/docker/v1/swarm-pools/<pool token>/<address> = handle. The pool
// ID of a swarm network (one asked for in the global address space) is
// "<pool>~<token>", a token per RequestPool.
const swarmPoolsPrefix = "/calico/docker/v1/swarm-pools/"

const swarmPoolSep = "~"

func newPoolToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func swarmPoolKey(tok string, ip netip.Addr) string {
	return swarmPoolsPrefix + tok + "/" + strings.ReplaceAll(ip.String(), ":", "-")
}

func (s *Server) swarmPoolRecord(ctx context.Context, tok string, ip netip.Addr, handle string) error {
	if tok == "" {
		return nil
	}
	if _, err := s.store.Update(ctx, swarmPoolKey(tok, ip), []byte(handle), 0); err != nil {
		return fmt.Errorf("record swarm address %s: %w", ip, err)
	}
	return nil
}

// swarmReleasePool frees every address listed under the pool that its
// handle still holds (an address released and taken again since is not).
func (s *Server) swarmReleasePool(ctx context.Context, tok string) error {
	kvs, _, err := s.store.List(ctx, swarmPoolsPrefix+tok+"/")
	if err != nil {
		return fmt.Errorf("list the swarm pool's addresses: %w", err)
	}
	var errs []error
	for _, kv := range kvs {
		ipS := strings.TrimPrefix(kv.Key, swarmPoolsPrefix+tok+"/")
		if strings.Count(ipS, "-") > 0 {
			ipS = strings.ReplaceAll(ipS, "-", ":")
		}
		ip, err := netip.ParseAddr(ipS)
		if err == nil {
			info, err := s.ipam.ShowIP(ctx, ip)
			if err != nil {
				errs = append(errs, fmt.Errorf("look up %s: %w", ip, err))
				continue
			}
			if info.Assigned && info.Handle == string(kv.Value) {
				if _, err := s.ipam.ReleaseIPs(ctx, ip); err != nil {
					errs = append(errs, fmt.Errorf("release %s: %w", ip, err))
					continue
				}
				s.log.Info("released a swarm address with its network's pool", "ip", ip)
			}
		}
		if err := s.store.Delete(ctx, kv.Key, 0); err != nil && !errors.Is(err, datastore.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// swarmEndpointGone clears the endpoint's name from the attributes of a
// swarm address it had adopted (the address stays the swarm's).
func (s *Server) swarmEndpointGone(ctx context.Context, w *api.WorkloadEndpoint) {
	s.swarmHandleUnused(ctx, w.Annotations[HandleAnnotation], w.Name)
}

// swarmHandleUnused gives a swarm handle's addresses back their swarm
// attributes (no endpoint).
func (s *Server) swarmHandleUnused(ctx context.Context, h, endpoint string) {
	if !isSwarmHandle(h) {
		return
	}
	if err := s.ipam.SetHandleAttrs(ctx, h, s.swarmAttrs()); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		s.log.Warn("cannot clear the endpoint from a swarm address", "handle", h, "endpoint", endpoint, "error", err)
	}
}

// optSerialAlloc is the option swarm's allocator puts on its requests
// (swarmkit's setIPAMSerialAlloc); Docker's own endpoint requests carry the
// MAC instead (the driver asks for it).
const optSerialAlloc = "com.docker.network.ipam.serial"

// isSwarmRequest reports whether a RequestAddress without a MAC comes from
// the swarm allocator.
func isSwarmRequest(opts map[string]string) bool {
	_, ok := opts[optSerialAlloc]
	return ok
}

// reconcileSwarmRecords drops this node's memories of swarm addresses that
// no endpoint of the node uses (referenced: the handles live endpoints
// hold): the task went without its release reaching this node (a dockerd
// killed or restarted with the host, a node drained while this node was
// down). A stale memory would make the node take the allocator's later
// release of that address for its own local one, and the address would
// leak. A memory younger than the grace period is kept: the endpoint is
// created just after the address is taken up.
func (s *Server) reconcileSwarmRecords(ctx context.Context, referenced map[string]bool, now time.Time) ([]string, error) {
	prefix := SwarmPrefix + s.node + "/"
	kvs, _, err := s.store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list swarm address records: %w", err)
	}
	var dropped []string
	var errs []error
	for _, kv := range kvs {
		var rec swarmTaken
		if err := json.Unmarshal(kv.Value, &rec); err != nil || rec.Handle == "" {
			continue // not ours to judge: never drop what is not understood
		}
		if referenced[rec.Handle] {
			continue
		}
		ipS := strings.TrimPrefix(kv.Key, prefix)
		ip, err := netip.ParseAddr(strings.ReplaceAll(ipS, "-", ":"))
		if err != nil {
			continue
		}
		info, err := s.ipam.ShowIP(ctx, ip)
		if err != nil {
			errs = append(errs, fmt.Errorf("look up %s: %w", ip, err))
			continue
		}
		stillSwarms := info.Assigned && info.Handle == rec.Handle
		if stillSwarms && !rec.At.IsZero() && now.Sub(rec.At) <= s.grace {
			continue
		}
		if err := s.store.Delete(ctx, kv.Key, kv.Revision); err != nil && !errors.Is(err, datastore.ErrNotFound) && !errors.Is(err, datastore.ErrConflict) {
			errs = append(errs, fmt.Errorf("forget swarm address %s: %w", ip, err))
			continue
		}
		if stillSwarms {
			// The address stays the swarm allocator's; its release frees it.
			s.swarmHandleUnused(ctx, rec.Handle, "")
		}
		dropped = append(dropped, ip.String())
	}
	return dropped, errors.Join(errs...)
}

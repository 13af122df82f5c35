package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/compat"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/resources"
)

// Default pools, created by the first node when no pool of a family exists
// (Calico's behaviour). Environment variables use Calico's names.
const (
	DefaultIPv4PoolCIDR = "192.168.0.0/16"
	// DefaultIPv6PoolCIDR is a fixed unique-local /48 (Calico picks a random
	// one; a fixed one keeps labs and docs reproducible).
	DefaultIPv6PoolCIDR = "fd80:24e2:f998::/48"
)

// ensureDefaultPools creates default-ipv4-ippool (and default-ipv6-ippool when
// this node has IPv6) unless a pool of that family exists or NO_DEFAULT_POOLS
// is set. Racing nodes are fine: creation of an existing pool is success.
func (a *Agent) ensureDefaultPools(ctx context.Context) error {
	if v, _ := strconv.ParseBool(os.Getenv("NO_DEFAULT_POOLS")); v {
		return nil
	}
	rc := resources.New(a.store)
	pools, _, err := rc.List(ctx, api.KindIPPool, "")
	if err != nil && !resources.Undecodable(err) {
		return err
	}
	have4, have6 := false, false
	for _, r := range pools {
		p := r.(*api.IPPool)
		if c, err := netip.ParsePrefix(p.Spec.CIDR); err == nil {
			if c.Addr().Is4() {
				have4 = true
			} else {
				have6 = true
			}
		}
	}
	type want struct {
		name, cidrEnv, def, blockEnv, vxlanEnv, natEnv string
		need                                           bool
	}
	a.mu.Lock()
	hasV6 := a.ipv6.IsValid()
	a.mu.Unlock()
	for _, w := range []want{
		{"default-ipv4-ippool", "CALICO_IPV4POOL_CIDR", DefaultIPv4PoolCIDR, "CALICO_IPV4POOL_BLOCK_SIZE", "CALICO_IPV4POOL_VXLAN", "CALICO_IPV4POOL_NAT_OUTGOING", !have4},
		{"default-ipv6-ippool", "CALICO_IPV6POOL_CIDR", DefaultIPv6PoolCIDR, "CALICO_IPV6POOL_BLOCK_SIZE", "CALICO_IPV6POOL_VXLAN", "CALICO_IPV6POOL_NAT_OUTGOING", !have6 && hasV6},
	} {
		if !w.need {
			continue
		}
		pool := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: w.name}}
		pool.Spec.CIDR = envOr(w.cidrEnv, w.def)
		if bs := os.Getenv(w.blockEnv); bs != "" {
			n, err := strconv.Atoi(bs)
			if err != nil {
				return fmt.Errorf("%s=%q: not a number", w.blockEnv, bs)
			}
			pool.Spec.BlockSize = n
		}
		pool.Spec.VXLANMode = envOr(w.vxlanEnv, api.EncapNever)
		nat := strings.HasPrefix(w.name, "default-ipv4")
		if v := os.Getenv(w.natEnv); v != "" {
			nat, _ = strconv.ParseBool(v)
		}
		pool.Spec.NATOutgoing = nat
		api.Default(pool)
		if err := api.Validate(pool); err != nil {
			return fmt.Errorf("default pool from environment: %w", err)
		}
		// The client also checks the pool against every other one.
		_, err := rc.Create(ctx, pool)
		switch {
		case err == nil:
			a.log.Info("created default IP pool", "name", w.name, "cidr", pool.Spec.CIDR)
		case errors.Is(err, datastore.ErrExists):
		default:
			return fmt.Errorf("default pool from environment: %w", err)
		}
	}
	return nil
}

// vtepFamily is what differs between this node's IPv4 and IPv6 VXLAN
// tunnel address: Calico's IPAM handle and attribute type, and the Node
// fields that publish the address and MAC.
type vtepFamily struct {
	v6      bool
	handle  string // prefix; the node name follows
	ipamTyp string
	// fields points at the Node's tunnel address and MAC of this family.
	fields func(*api.NodeSpec) (addr, mac *string)
}

var vtepFamilies = []vtepFamily{
	{handle: "vxlan-tunnel-addr-", ipamTyp: ipam.TypeVXLANTunnel,
		fields: func(s *api.NodeSpec) (*string, *string) { return &s.IPv4VXLANTunnelAddr, &s.VXLANTunnelMACAddr }},
	{v6: true, handle: "vxlan-v6-tunnel-addr-", ipamTyp: ipam.TypeVXLANV6Tunnel,
		fields: func(s *api.NodeSpec) (*string, *string) { return &s.IPv6VXLANTunnelAddr, &s.VXLANTunnelMACAddrV6 }},
}

// ensureVXLANTunnel gives this node a VXLAN tunnel address and MAC of each
// family whose enabled pools use VXLAN, recording them on its Node resource
// (other nodes build their routes from it), and releases them when none does.
func (a *Agent) ensureVXLANTunnel(ctx context.Context) error {
	var errs []error
	for _, f := range vtepFamilies {
		if err := a.ensureVTEP(ctx, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// vtepPools are the CIDRs of the family's enabled VXLAN pools that a tunnel
// address may come from: as in Calico, only pools whose allowedUses include
// Tunnel (no allowedUses: Workload and Tunnel); IPAM refuses the others.
func vtepPools(pools map[string]*api.IPPool, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range pools {
		if p.Spec.Disabled || p.Spec.VXLANMode == "" || p.Spec.VXLANMode == api.EncapNever {
			continue
		}
		if len(p.Spec.AllowedUses) > 0 && !slices.Contains(p.Spec.AllowedUses, api.AllowedUseTunnel) {
			continue
		}
		if c, err := netip.ParsePrefix(p.Spec.CIDR); err == nil && c.Addr().Is6() == v6 {
			out = append(out, c.Masked())
		}
	}
	return out
}

func (a *Agent) ensureVTEP(ctx context.Context, f vtepFamily) error {
	s := a.calc
	s.mu.Lock()
	vxPools := vtepPools(s.pools, f.v6)
	me := s.nodes[a.cfg.NodeName]
	s.mu.Unlock()
	if me == nil {
		return errors.New("own Node resource not registered yet")
	}
	alloc := ipam.New(a.store)
	handle := f.handle + a.cfg.NodeName
	curp, macp := f.fields(&me.Spec)
	cur := *curp
	if len(vxPools) == 0 {
		if cur == "" {
			return nil
		}
		if _, err := alloc.ReleaseByHandle(ctx, handle); err != nil {
			return err
		}
		return a.updateNode(ctx, func(n *api.Node) {
			addr, mac := f.fields(&n.Spec)
			*addr, *mac = "", ""
		})
	}
	if cur != "" {
		if ip, err := netip.ParseAddr(cur); err == nil {
			for _, p := range vxPools {
				if p.Contains(ip) {
					return nil
				}
			}
		}
		// The address is no longer in a VXLAN pool: take a new one.
		if _, err := alloc.ReleaseByHandle(ctx, handle); err != nil {
			return err
		}
	}
	args := ipam.AssignArgs{
		Handle: handle, Node: a.cfg.NodeName,
		// Calico's attributes for a tunnel address: calicoctl ipam check
		// and ours see it in use through the Node's tunnel address field.
		Attrs: ipam.Attrs{Node: a.cfg.NodeName, Type: f.ipamTyp},
	}
	if f.v6 {
		args.Num6, args.Pools6 = 1, vxPools
	} else {
		args.Num4, args.Pools4 = 1, vxPools
	}
	res, err := alloc.AutoAssign(ctx, args)
	if err != nil {
		return fmt.Errorf("assign VXLAN tunnel address: %w", err)
	}
	got := res.IPv4
	if f.v6 {
		got = res.IPv6
	}
	if len(got) == 0 {
		return errors.New("assign VXLAN tunnel address: none returned")
	}
	mac := *macp
	if mac == "" {
		mac = randomMAC()
	}
	ip := got[0].String()
	a.log.Info("VXLAN tunnel address", "ip", ip, "mac", mac)
	return a.updateNode(ctx, func(n *api.Node) {
		addr, m := f.fields(&n.Spec)
		*addr, *m = ip, mac
	})
}

// updateNode applies f to this node's Node resource with compare-and-swap.
func (a *Agent) updateNode(ctx context.Context, f func(*api.Node)) error {
	// Fields this version does not know (a newer calico/node's, or
	// calicoctl's) are kept.
	_, err := resources.New(a.store).Modify(ctx, api.KindNode, "", a.cfg.NodeName, func(r api.Resource) (bool, error) {
		f(r.(*api.Node))
		return true, nil
	})
	return err
}

// randomMAC is a locally administered unicast MAC.
func randomMAC() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = b[0]&0xfe | 0x02
	return net.HardwareAddr(b).String()
}

// Empty IPAM blocks affine to this node go back to the pool after
// emptyBlockGrace, checked every emptyBlockCheck, so other hosts can claim them.
const (
	emptyBlockGrace = 15 * time.Minute
	emptyBlockCheck = 5 * time.Minute
)

func (a *Agent) releaseEmptyBlocks(ctx context.Context) {
	released, err := ipam.New(a.store).ReleaseEmptyBlocks(ctx, a.cfg.NodeName, emptyBlockGrace)
	if err != nil {
		a.log.Warn("release empty blocks", "err", err)
		return
	}
	if len(released) > 0 {
		a.log.Info("released empty blocks", "blocks", released)
	}
}

// maintain runs the datastore housekeeping this node owns: default pools once
// after the first sync, and the VXLAN tunnel address whenever pools or nodes
// change. Failures are retried on the next change or after a short delay.
func (a *Agent) maintain(ctx context.Context) {
	poolsDone, initDone := false, false
	var retry <-chan time.Time
	blocks := time.NewTicker(emptyBlockCheck)
	defer blocks.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.maint:
		case <-retry:
			retry = nil
		case <-blocks.C:
			a.releaseEmptyBlocks(ctx)
			continue
		}
		a.mu.Lock()
		synced := a.everInSync
		a.mu.Unlock()
		if !synced {
			continue
		}
		failed := false
		if !initDone {
			if err := compat.Initialize(ctx, a.store); err != nil {
				a.log.Warn("initialise the datastore as Calico does", "err", err)
				failed = true
			} else if _, err := compat.MigratePolicyKeys(ctx, a.store, a.log); err != nil {
				a.log.Warn("move policies to Calico's keys", "err", err)
				failed = true
			} else {
				initDone = true
			}
		}
		if !poolsDone {
			if err := a.ensureDefaultPools(ctx); err != nil {
				a.log.Warn("default pools", "err", err)
				failed = true
			} else {
				poolsDone = true
			}
		}
		if err := a.ensureVXLANTunnel(ctx); err != nil {
			a.log.Debug("vxlan tunnel address", "err", err)
			failed = true
		}
		if err := a.ensureAutoHostEndpoint(ctx); err != nil {
			a.log.Warn("automatic host endpoint", "err", err)
			failed = true
		}
		if failed && ctx.Err() == nil {
			retry = time.After(2 * time.Second)
		}
	}
}

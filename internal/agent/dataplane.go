package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/dockerfw"
	"github.com/calico-docker/calico/internal/dataplane/nft"
	"github.com/calico-docker/calico/internal/dataplane/routes"
)

// nftAdapter and routesAdapter give the drivers the agent's narrow interfaces.
type nftAdapter struct{ d *nft.Driver }

func (n nftAdapter) SetDesired(d *dataplane.Desired)                { n.d.SetDesired(d) }
func (n nftAdapter) Apply(ctx context.Context) error                { _, err := n.d.Apply(ctx); return err }
func (n nftAdapter) Resync(ctx context.Context) error               { return n.d.Resync(ctx) }
func (n nftAdapter) WatchTable(ctx context.Context) <-chan struct{} { return n.d.WatchTable(ctx) }
func (n nftAdapter) WatchAddrs(ctx context.Context) <-chan struct{} { return n.d.WatchAddrs(ctx) }

type routesAdapter struct{ d *routes.Driver }

func (r routesAdapter) SetDesired(d *dataplane.Desired) { r.d.SetDesired(d) }
func (r routesAdapter) Apply(ctx context.Context) error {
	_, err := r.d.Apply(ctx)
	return err
}
func (r routesAdapter) Resync(ctx context.Context) error {
	_, err := r.d.Resync(ctx)
	return err
}
func (r routesAdapter) LinkEvents(ctx context.Context) <-chan string { return r.d.WatchLinks(ctx) }
func (r routesAdapter) RouteEvents(ctx context.Context) <-chan struct{} {
	return r.d.WatchRoutes(ctx)
}
func (r routesAdapter) HostIPv4() (netip.Prefix, error)           { return r.d.HostIPv4() }
func (r routesAdapter) HostMTU(addr netip.Addr) int               { return r.d.HostMTU(addr) }
func (r routesAdapter) LearnedRoutes() ([]dataplane.Route, error) { return r.d.LearnedRoutes() }
func (r routesAdapter) HostRoutes() ([]netip.Prefix, error)       { return r.d.HostRoutes() }
func (r routesAdapter) ForwardingProblem(v6 bool) string          { return r.d.ForwardingProblem(v6) }

// errDepsDrivers: injecting one dataplane driver without the other would
// mix a fake with the kernel.
var errDepsDrivers = errors.New("agent deps: give both dataplane drivers (NFT and Routes) or neither")

// openDataplane creates the drivers, or takes the injected ones. Creating
// them reads nothing from and writes nothing to the kernel; the first Apply
// (after the first datastore sync) does.
func (a *Agent) openDataplane() error {
	if a.deps.NFT != nil {
		a.nft, a.rt = a.deps.NFT, a.deps.Routes
		if a.cfg.DockerFirewall && a.deps.Firewall != nil {
			a.fw = a.deps.Firewall
		}
		return nil
	}
	nd, err := nft.New(nft.Options{NetNS: a.cfg.NetNS, Logger: a.cfg.Logger.With("component", "nft")})
	if err != nil {
		return fmt.Errorf("nftables driver: %w", err)
	}
	rd, err := routes.New(routes.Options{NetNS: a.cfg.NetNS, Logger: a.cfg.Logger.With("component", "routes")})
	if err != nil {
		return fmt.Errorf("routes driver: %w", err)
	}
	a.nft, a.rt = nftAdapter{nd}, routesAdapter{rd}
	_ = a.m.reg.Register(newRuleCollector(nd))
	if a.cfg.DockerFirewall {
		if a.deps.Firewall != nil {
			a.fw = a.deps.Firewall
			return nil
		}
		a.fw = dockerfw.New(dockerfw.Options{NetNS: a.cfg.NetNS, Logger: a.cfg.Logger.With("component", "dockerfw")})
	}
	return nil
}

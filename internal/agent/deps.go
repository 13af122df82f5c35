package agent

import (
	"context"
	"net/netip"

	"github.com/jonboulle/clockwork"

	"github.com/calico-docker/calico/internal/bgp"
	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/datastore"
)

// Deps are the agent's outside world: the dataplane drivers, the datastore,
// the BGP speaker and the clock. Every kernel read and write of the agent
// goes through NFT, Routes and Firewall, so an agent given fakes runs
// without root, and a test can make them fail on demand and move the clock
// instead of waiting. A nil field gets the production one.
type Deps struct {
	// NFT and Routes are the dataplane drivers (default: the nftables and
	// routes drivers on Config.NetNS). Give both or neither.
	NFT    NFTDriver
	Routes RoutesDriver
	// Firewall keeps our rule in Docker's firewall; used only with
	// Config.DockerFirewall (default: the dockerfw driver).
	Firewall FirewallDriver
	// Store is the datastore (default: Config.Datastore opened with retries;
	// the agent closes only a store it opened).
	Store datastore.Store
	// NewSpeaker makes the BGP speaker when Config.BGP is on (default:
	// bgp.NewGoBGP).
	NewSpeaker func(bgp.Config) bgp.Speaker
	// Clock drives the apply loop's timers, retries and grace periods
	// (default: the wall clock).
	Clock clockwork.Clock
}

// NFTDriver is the part of the nftables driver the agent uses.
type NFTDriver interface {
	SetDesired(*dataplane.Desired)
	Apply(ctx context.Context) error
	Resync(ctx context.Context) error
}

// RoutesDriver is the part of the routes driver the agent uses: routes and
// interface settings, and what the agent needs to know about the host's own
// network (read by the driver, so kernel access stays inside it).
type RoutesDriver interface {
	SetDesired(*dataplane.Desired)
	Apply(ctx context.Context) error
	// Resync re-reads what Apply trusts from memory (interface sysctls) and applies.
	Resync(ctx context.Context) error
	// LinkEvents reports names of workload interfaces that appeared or changed.
	LinkEvents(ctx context.Context) <-chan string
	// HostIPv4 autodetects the host's address (interface of the default route).
	HostIPv4() (netip.Prefix, error)
	// HostMTU is the MTU of the interface carrying addr (0: unknown).
	HostMTU(addr netip.Addr) int
	// LearnedRoutes are the BGP routes a previous agent left in the kernel.
	LearnedRoutes() ([]dataplane.Route, error)
	// HostRoutes are the destinations of the host's own (not our) routes.
	HostRoutes() ([]netip.Prefix, error)
	// ForwardingProblem says which forwarding sysctls are off ("" = none).
	ForwardingProblem(v6 bool) string
}

// NewWithDeps is New with the outside world given: tests pass fakes; a nil
// field of deps gets the production implementation, so New(cfg, v) is
// NewWithDeps(cfg, v, Deps{}).
func NewWithDeps(cfg Config, version string, deps Deps) (*Agent, error) {
	if (deps.NFT == nil) != (deps.Routes == nil) {
		return nil, errDepsDrivers
	}
	a, err := newAgent(cfg, version)
	if err != nil {
		return nil, err
	}
	if deps.Clock == nil {
		deps.Clock = clockwork.NewRealClock()
	}
	if deps.NewSpeaker == nil {
		deps.NewSpeaker = func(c bgp.Config) bgp.Speaker { return bgp.NewGoBGP(c) }
	}
	a.deps = deps
	a.clock = deps.Clock
	return a, nil
}

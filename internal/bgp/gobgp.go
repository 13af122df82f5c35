package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"google.golang.org/protobuf/proto"
)

// ExportCommunity marks, inside the cluster, the paths that may be sent to
// external peers (advertisements with ExportToExternal). It travels with a
// path from node to node and through route reflectors, so every node applies
// the originator's decision; it is removed before a path leaves for an
// external peer.
const ExportCommunity = "64512:4000"

// exportCommunityValue is ExportCommunity as the 32-bit attribute value.
const exportCommunityValue uint32 = 64512<<16 | 4000

// Names of the GoBGP policy objects the speaker owns.
const (
	externalNeighborSet = "calico-external-peers"
	exportCommunitySet  = "calico-exportable"
	exportPolicy        = "calico-export"
)

// neverANeighbor keeps the external-peer set from ever being empty: GoBGP
// treats an empty neighbor set as matching every neighbor, which would hide
// routes from mesh peers when there are no external ones. No session has
// 0.0.0.0 as its peer address.
const neverANeighbor = "0.0.0.0/32"

// Defaults of Config.
const (
	DefaultGracefulRestartTime = 120 * time.Second
	DefaultRestartDeferral     = 30 * time.Second
	DefaultConnectRetry        = 3 * time.Second
	DefaultHoldTime            = 90 * time.Second
	DefaultPrefixLimitRestart  = 5 * time.Minute
)

// Config configures a GoBGP speaker.
type Config struct {
	// RouterID is the BGP identifier, an IPv4 address; defaults to
	// IPv4Address.
	RouterID netip.Addr
	// ASN is this node's AS number; 0 means DefaultASN.
	ASN uint32
	// IPv4Address and IPv6Address are the node's addresses: the next hop of
	// the IPv4 and IPv6 advertisements. IPv4Address defaults to RouterID;
	// IPv6 advertisements are refused without IPv6Address.
	IPv4Address netip.Addr
	IPv6Address netip.Addr
	// ListenAddresses are the addresses to accept sessions on; empty means
	// IPv4Address and IPv6Address (never the wildcard).
	ListenAddresses []string
	// ListenPort is the port to accept sessions on: 0 means 179, a negative
	// value accepts none (sessions are then only made outwards).
	ListenPort int
	// Logger receives the speaker's and GoBGP's logs; nil means slog.Default().
	Logger *slog.Logger
	// DisableGracefulRestart turns graceful restart off (it is on by default).
	DisableGracefulRestart bool
	// GracefulRestartTime is the restart time announced to peers: how long
	// they keep this node's routes after it stops gracefully (default 120 s,
	// at most 4095 s).
	GracefulRestartTime time.Duration
	// Restarting announces that this node is coming back from a graceful
	// stop: peers keep its stale routes until it has sent its table, and it
	// defers sending until it has received the peers' tables or
	// RestartDeferral has passed. Set it when the previous instance stopped
	// gracefully (for example, when our routes are still in the kernel). It
	// applies to the sessions of the first SetPeers call, so call
	// SetAdvertisements first and SetPeers with the full set.
	Restarting bool
	// RestartDeferral bounds the wait of a restarting speaker for the peers'
	// tables (default 30 s).
	RestartDeferral time.Duration
	// ConnectRetry is the interval between connection attempts (default 3 s;
	// GoBGP's own default of 120 s is far too slow to bring sessions back).
	ConnectRetry time.Duration
	// HoldTime is the hold time offered to peers (default 90 s); the
	// keepalive interval is a third of it.
	HoldTime time.Duration
	// MaxPrefixes is the default limit of prefixes a peer may send
	// (Peer.MaxPrefixes overrides it); 0 means DefaultMaxPrefixes.
	MaxPrefixes uint32
	// PrefixLimitRestart is how long a session cut for exceeding its prefix
	// limit stays down before it is tried again (default 5 minutes).
	PrefixLimitRestart time.Duration
}

// GoBGP is a Speaker backed by an embedded GoBGP server.
type GoBGP struct {
	cfg      Config
	log      *slog.Logger
	learned  *learnedTable
	stopping atomic.Bool

	mu          sync.Mutex // serialises Start, SetPeers, SetAdvertisements, Stop
	srv         *server.BgpServer
	cancelWatch context.CancelFunc
	state       speakerState
	peers       map[netip.Addr]Peer
	configured  map[netip.Addr]time.Time
	peersSet    bool
	ads         map[netip.Prefix]*apiutil.Path
	adsExport   map[netip.Prefix]bool
	policies    *api.SetPoliciesRequest // last applied

	limitMu sync.Mutex
	limited map[netip.Addr]time.Time // peers cut for exceeding their prefix limit, and when
}

type speakerState int

const (
	stateNew speakerState = iota
	stateRunning
	stateStopped
)

var _ Speaker = (*GoBGP)(nil)

// NewGoBGP returns a speaker; Start starts it.
func NewGoBGP(cfg Config) *GoBGP {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &GoBGP{
		cfg:        cfg,
		log:        log,
		learned:    newLearnedTable(),
		peers:      map[netip.Addr]Peer{},
		configured: map[netip.Addr]time.Time{},
		ads:        map[netip.Prefix]*apiutil.Path{},
		adsExport:  map[netip.Prefix]bool{},
		limited:    map[netip.Addr]time.Time{},
	}
}

// withDefaults fills in defaults and checks the configuration.
func (c Config) withDefaults() (Config, error) {
	if c.ASN == 0 {
		c.ASN = DefaultASN
	}
	if !c.RouterID.IsValid() {
		c.RouterID = c.IPv4Address
	}
	if !c.RouterID.IsValid() || !c.RouterID.Unmap().Is4() {
		return c, fmt.Errorf("router ID %q: want an IPv4 address (set RouterID or IPv4Address to the node's IPv4 address)", c.RouterID)
	}
	c.RouterID = c.RouterID.Unmap()
	if !c.IPv4Address.IsValid() {
		c.IPv4Address = c.RouterID
	}
	if c.IPv4Address.IsValid() && !c.IPv4Address.Unmap().Is4() {
		return c, fmt.Errorf("IPv4Address %s is not an IPv4 address", c.IPv4Address)
	}
	c.IPv4Address = c.IPv4Address.Unmap()
	if c.IPv6Address.IsValid() && (c.IPv6Address.Is4() || c.IPv6Address.Is4In6()) {
		return c, fmt.Errorf("IPv6Address %s is not an IPv6 address", c.IPv6Address)
	}
	if len(c.ListenAddresses) == 0 && c.ListenPort >= 0 {
		for _, a := range []netip.Addr{c.IPv4Address, c.IPv6Address} {
			if a.IsValid() {
				c.ListenAddresses = append(c.ListenAddresses, a.String())
			}
		}
		if len(c.ListenAddresses) == 0 {
			return c, errors.New("no listen address: set IPv4Address, IPv6Address or ListenAddresses")
		}
	}
	for _, a := range c.ListenAddresses {
		if _, err := netip.ParseAddr(a); err != nil {
			return c, fmt.Errorf("listen address %q: %w", a, err)
		}
	}
	switch {
	case c.ListenPort == 0:
		c.ListenPort = int(DefaultPort)
	case c.ListenPort > 65535:
		return c, fmt.Errorf("listen port %d out of range", c.ListenPort)
	case c.ListenPort < 0:
		c.ListenPort = -1
	}
	if c.GracefulRestartTime <= 0 {
		c.GracefulRestartTime = DefaultGracefulRestartTime
	}
	if c.RestartDeferral <= 0 {
		c.RestartDeferral = DefaultRestartDeferral
	}
	if c.ConnectRetry <= 0 {
		c.ConnectRetry = DefaultConnectRetry
	}
	if c.HoldTime <= 0 {
		c.HoldTime = DefaultHoldTime
	}
	if c.PrefixLimitRestart <= 0 {
		c.PrefixLimitRestart = DefaultPrefixLimitRestart
	}
	if c.HoldTime < 3*time.Second {
		return c, fmt.Errorf("hold time %v: must be at least 3s", c.HoldTime)
	}
	return c, nil
}

// Start starts the embedded server, listens, installs the export policy and
// starts watching best paths.
func (g *GoBGP) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateNew {
		return errors.New("bgp speaker: already started")
	}
	cfg, err := g.cfg.withDefaults()
	if err != nil {
		return fmt.Errorf("bgp speaker config: %w", err)
	}
	g.cfg = cfg

	gobgpLog := slog.New(quietStopHandler{Handler: g.log.Handler(), stopping: &g.stopping}).With("component", "gobgp")
	srv := server.NewBgpServer(server.LoggerOption(gobgpLog, nil))
	go srv.Serve()

	fail := func(err error) error {
		g.stopping.Store(true)
		srv.Stop()
		return err
	}
	err = srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:             cfg.ASN,
		RouterId:        cfg.RouterID.String(),
		ListenPort:      int32(cfg.ListenPort),
		ListenAddresses: cfg.ListenAddresses,
	}})
	if err != nil {
		return fail(fmt.Errorf("starting BGP on %v port %d: %w", cfg.ListenAddresses, cfg.ListenPort, err))
	}
	if err := g.installPolicies(ctx, srv); err != nil {
		return fail(err)
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	err = srv.WatchEvent(watchCtx, server.WatchEventMessageCallbacks{
		OnBestPath: func(paths []*apiutil.Path, _ time.Time) {
			changes := make([]bestPath, 0, len(paths))
			for _, p := range paths {
				if bp, ok := toBestPath(p); ok {
					changes = append(changes, bp)
				}
			}
			g.learned.apply(changes)
		},
	}, server.WatchBestPath(true))
	if err != nil {
		cancel()
		return fail(fmt.Errorf("watching best paths: %w", err))
	}
	if err := g.watchPrefixLimits(watchCtx, srv); err != nil {
		cancel()
		return fail(fmt.Errorf("watching BGP sessions: %w", err))
	}
	go g.learned.run(watchCtx.Done())
	g.srv = srv
	g.cancelWatch = cancel
	g.state = stateRunning
	g.log.Info("BGP speaker started", "routerID", cfg.RouterID, "asn", cfg.ASN,
		"listen", cfg.ListenAddresses, "port", cfg.ListenPort,
		"gracefulRestart", !cfg.DisableGracefulRestart, "restarting", cfg.Restarting)
	return nil
}

// installPolicies installs the policies for no peers and assigns them
// globally; SetPeers replaces their content as the peers change.
func (g *GoBGP) installPolicies(ctx context.Context, srv *server.BgpServer) error {
	req := buildPolicies(nil)
	if err := srv.SetPolicies(ctx, req); err != nil {
		return fmt.Errorf("installing BGP policies: %w", err)
	}
	for _, a := range []struct {
		dir    api.PolicyDirection
		policy string
	}{{api.PolicyDirection_POLICY_DIRECTION_IMPORT, importPolicy}, {api.PolicyDirection_POLICY_DIRECTION_EXPORT, exportPolicy}} {
		err := srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name:          "global",
			Direction:     a.dir,
			Policies:      []*api.Policy{{Name: a.policy}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
		}})
		if err != nil {
			return fmt.Errorf("assigning BGP policy %s: %w", a.policy, err)
		}
	}
	g.policies = req
	return nil
}

// applyPolicies replaces the policies' content for the given peers if it
// changed, and soft-resets the sessions whose filters changed so that the
// new rules apply to routes already exchanged.
func (g *GoBGP) applyPolicies(ctx context.Context, peers []Peer) error {
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, comparePeers)
	req := buildPolicies(sorted)
	if g.policies != nil && proto.Equal(req, g.policies) {
		return nil
	}
	if err := g.srv.SetPolicies(ctx, req); err != nil {
		return fmt.Errorf("updating BGP policies: %w", err)
	}
	g.policies = req
	for _, p := range sorted {
		old, ok := g.peers[p.Address]
		if !ok {
			continue
		}
		var dir []api.ResetPeerRequest_Direction
		if !slices.Equal(old.Import, p.Import) || old.External != p.External {
			dir = append(dir, api.ResetPeerRequest_DIRECTION_IN)
		}
		if !slices.Equal(old.Export, p.Export) {
			dir = append(dir, api.ResetPeerRequest_DIRECTION_OUT)
		}
		for _, d := range dir {
			if err := g.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: p.Address.String(), Soft: true, Direction: d}); err != nil {
				g.log.Warn("BGP soft reset after a filter change", "peer", p.Address, "err", err)
			}
		}
	}
	return nil
}

// toBestPath converts a GoBGP best-path event for IPv4/IPv6 unicast.
func toBestPath(p *apiutil.Path) (bestPath, bool) {
	if p == nil || (p.Family != bgppkt.RF_IPv4_UC && p.Family != bgppkt.RF_IPv6_UC) {
		return bestPath{}, false
	}
	nlri, ok := p.Nlri.(*bgppkt.IPAddrPrefix)
	if !ok {
		return bestPath{}, false
	}
	var nh netip.Addr
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgppkt.PathAttributeNextHop:
			nh = a.Value
		case *bgppkt.PathAttributeMpReachNLRI:
			nh = a.Nexthop
		}
	}
	return bestPath{
		Prefix:    nlri.Prefix,
		NextHop:   nh.Unmap(),
		Peer:      p.PeerAddress.Unmap(),
		Withdrawn: p.Withdrawal,
	}, true
}

// SetPeers applies the difference between the configured and the given
// peers. A peer whose session settings change is deleted and added again.
func (g *GoBGP) SetPeers(ctx context.Context, peers []Peer) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateRunning {
		return errors.New("bgp speaker: not running")
	}
	want := make(map[netip.Addr]Peer, len(peers))
	for _, p := range peers {
		if !p.Address.IsValid() {
			return errors.New("bgp peer without an address")
		}
		p.Address = p.Address.Unmap()
		if _, dup := want[p.Address]; dup {
			return fmt.Errorf("bgp peer %s given twice", p.Address)
		}
		if p.ASN == 0 {
			return fmt.Errorf("bgp peer %s: AS number is 0", p.Address)
		}
		want[p.Address] = p
	}

	var remove, add []Peer
	for addr, old := range g.peers {
		p, ok := want[addr]
		if !ok || !sameSession(old, p) {
			remove = append(remove, old)
		}
	}
	for addr, p := range want {
		old, ok := g.peers[addr]
		if !ok || !sameSession(old, p) {
			add = append(add, p)
		}
	}
	slices.SortFunc(remove, comparePeers)
	slices.SortFunc(add, comparePeers)

	restarting := g.cfg.Restarting && !g.peersSet
	g.peersSet = true

	for _, p := range remove {
		if err := g.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()}); err != nil {
			return fmt.Errorf("deleting BGP peer %s: %w", p.Address, err)
		}
		delete(g.peers, p.Address)
		delete(g.configured, p.Address)
		g.clearLimited(p.Address)
		g.log.Info("BGP peer removed", "peer", p.Address, "type", p.Type)
	}
	// Policies for the new set of peers before any new session comes up,
	// so that no route passes unfiltered.
	all := make([]Peer, 0, len(want))
	for _, p := range want {
		all = append(all, p)
	}
	if err := g.applyPolicies(ctx, all); err != nil {
		return err
	}
	for addr, p := range want {
		if old, ok := g.peers[addr]; ok && sameSession(old, p) {
			g.peers[addr] = p // filters and display fields
		}
	}
	for _, p := range add {
		if err := g.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: g.apiPeer(p, restarting)}); err != nil {
			return fmt.Errorf("adding BGP peer %s (%s): %w", p.Address, p.Type, err)
		}
		g.peers[p.Address] = p
		g.configured[p.Address] = time.Now()
		g.clearLimited(p.Address)
		g.log.Info("BGP peer added", "peer", p.Address, "port", p.Port, "asn", p.ASN, "type", p.Type,
			"rrClient", p.RRClient, "external", p.External, "passive", p.Passive,
			"password", p.Password != "", "ttlSecurity", p.TTLSecurity, "maxPrefixes", g.maxPrefixes(p),
			"importRules", len(p.Import), "exportRules", len(p.Export))
	}
	return nil
}

// sameSession reports whether two peers need the same session (their
// display fields and filters may differ: a filter change is applied to the
// running session).
func sameSession(a, b Peer) bool {
	clear := func(p *Peer) {
		p.Type, p.Name = "", ""
		p.Import, p.Export = nil, nil
		p.PasswordSecret = SecretRef{}
	}
	clear(&a)
	clear(&b)
	return a.Address == b.Address && a.Port == b.Port && a.ASN == b.ASN &&
		a.RRClient == b.RRClient && a.RRClusterID == b.RRClusterID && a.External == b.External &&
		a.Passive == b.Passive && a.SourceAddress == b.SourceAddress && a.RestartTime == b.RestartTime &&
		a.Password == b.Password && a.TTLSecurity == b.TTLSecurity && a.MaxPrefixes == b.MaxPrefixes
}

func comparePeers(a, b Peer) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

func seconds(d time.Duration) uint64 {
	return uint64((d + time.Second - 1) / time.Second)
}

// apiPeer builds GoBGP's description of a session.
func (g *GoBGP) apiPeer(p Peer, restarting bool) *api.Peer {
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.Address.Is6() {
		family = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	gr := !g.cfg.DisableGracefulRestart
	restart := p.RestartTime
	if restart <= 0 {
		restart = g.cfg.GracefulRestartTime
	}
	hold := seconds(g.cfg.HoldTime)
	out := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			Description:     strings.TrimSpace(p.Type + " " + p.Name),
			AuthPassword:    p.Password,
		},
		Transport: &api.Transport{
			RemotePort:  uint32(p.Port),
			PassiveMode: p.Passive,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           seconds(g.cfg.ConnectRetry),
			IdleHoldTimeAfterReset: seconds(g.cfg.ConnectRetry),
			HoldTime:               hold,
			KeepaliveInterval:      max(hold/3, 1),
		}},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: family, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: gr}},
			PrefixLimits: &api.PrefixLimit{
				Family:               family,
				MaxPrefixes:          g.maxPrefixes(p),
				ShutdownThresholdPct: 90,
			},
		}},
	}
	if p.SourceAddress.IsValid() {
		out.Transport.LocalAddress = p.SourceAddress.Unmap().String()
	}
	if gr {
		out.GracefulRestart = &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     uint32(min(seconds(restart), 4095)),
			DeferralTime:    uint32(min(seconds(g.cfg.RestartDeferral), 65535)),
			LocalRestarting: restarting,
		}
	}
	if p.RRClient {
		out.RouteReflector = &api.RouteReflector{
			RouteReflectorClient:    true,
			RouteReflectorClusterId: p.RRClusterID,
		}
	}
	if p.TTLSecurity > 0 {
		// GTSM: we send with TTL 255, the kernel drops what arrives with
		// less than 256-hops. Without it an eBGP session is single-hop
		// (GoBGP sends with TTL 1), as BGP has it by default.
		out.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: uint32(256 - int(p.TTLSecurity))}
	}
	return out
}

func (g *GoBGP) maxPrefixes(p Peer) uint32 {
	if p.MaxPrefixes > 0 {
		return p.MaxPrefixes
	}
	if g.cfg.MaxPrefixes > 0 {
		return g.cfg.MaxPrefixes
	}
	return DefaultMaxPrefixes
}

// SetAdvertisements announces new prefixes and withdraws the ones no longer
// given. A prefix whose ExportToExternal changes is announced again with the
// new marking, which withdraws it from external peers that may no longer
// have it.
func (g *GoBGP) SetAdvertisements(ctx context.Context, ads []Advertisement) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateRunning {
		return errors.New("bgp speaker: not running")
	}
	want := make(map[netip.Prefix]bool, len(ads))
	for _, a := range ads {
		if !a.Prefix.IsValid() {
			return errors.New("advertisement without a prefix")
		}
		p := a.Prefix.Masked()
		if p.Addr().Is4In6() {
			return fmt.Errorf("advertisement %s: give IPv4 prefixes in IPv4 form", a.Prefix)
		}
		if p.Addr().Is6() && !g.cfg.IPv6Address.IsValid() {
			return fmt.Errorf("advertising %s: the speaker has no IPv6Address to use as next hop", p)
		}
		if p.Addr().Is4() && !g.cfg.IPv4Address.IsValid() {
			return fmt.Errorf("advertising %s: the speaker has no IPv4Address to use as next hop", p)
		}
		want[p] = want[p] || a.ExportToExternal
	}

	// Hide our own prefixes from Learned before announcing them, and show
	// peers' paths for the ones we drop only after withdrawing them.
	own := make([]netip.Prefix, 0, len(want)+len(g.ads))
	for p := range want {
		own = append(own, p)
	}
	for p := range g.ads {
		own = append(own, p)
	}
	g.learned.setOwn(own)

	var withdraw []netip.Prefix
	for p := range g.ads {
		if _, ok := want[p]; !ok {
			withdraw = append(withdraw, p)
		}
	}
	slices.SortFunc(withdraw, comparePrefix)
	var announce []netip.Prefix
	for p, export := range want {
		if _, ok := g.ads[p]; !ok || g.adsExport[p] != export {
			announce = append(announce, p)
		}
	}
	slices.SortFunc(announce, comparePrefix)

	var errs []error
	// One request for all changes; only if it fails, one per prefix to
	// find out which (GoBGP reports only the last error of a batch).
	if len(withdraw) > 0 {
		paths := make([]*apiutil.Path, len(withdraw))
		for i, p := range withdraw {
			paths[i] = g.ads[p]
		}
		if err := g.srv.DeletePath(apiutil.DeletePathRequest{Paths: paths}); err == nil {
			for _, p := range withdraw {
				delete(g.ads, p)
				delete(g.adsExport, p)
			}
		} else {
			for _, p := range withdraw {
				if err := g.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{g.ads[p]}}); err != nil {
					errs = append(errs, fmt.Errorf("withdrawing %s: %w", p, err))
					continue
				}
				delete(g.ads, p)
				delete(g.adsExport, p)
			}
		}
	}
	if len(announce) > 0 {
		paths := make([]*apiutil.Path, 0, len(announce))
		prefixes := make([]netip.Prefix, 0, len(announce))
		for _, p := range announce {
			path, err := g.localPath(p, want[p])
			if err != nil {
				errs = append(errs, fmt.Errorf("announcing %s: %w", p, err))
				continue
			}
			paths = append(paths, path)
			prefixes = append(prefixes, p)
		}
		record := func(i int) {
			g.ads[prefixes[i]] = paths[i]
			g.adsExport[prefixes[i]] = want[prefixes[i]]
		}
		if len(paths) > 0 {
			if _, err := g.srv.AddPath(apiutil.AddPathRequest{Paths: paths}); err == nil {
				for i := range paths {
					record(i)
				}
			} else {
				for i, path := range paths {
					if _, err := g.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}}); err != nil {
						errs = append(errs, fmt.Errorf("announcing %s: %w", prefixes[i], err))
						continue
					}
					record(i)
				}
			}
		}
	}
	if len(withdraw) > 0 || len(announce) > 0 {
		g.log.Debug("BGP advertisements updated", "announced", len(announce), "withdrawn", len(withdraw), "total", len(g.ads))
	}

	own = own[:0]
	for p := range g.ads {
		own = append(own, p)
	}
	g.learned.setOwn(own)
	return errors.Join(errs...)
}

// localPath builds the path this node originates for a prefix: origin IGP,
// an empty AS path, our address as next hop.
func (g *GoBGP) localPath(p netip.Prefix, export bool) (*apiutil.Path, error) {
	nlri, err := bgppkt.NewIPAddrPrefix(p)
	if err != nil {
		return nil, err
	}
	attrs := []bgppkt.PathAttributeInterface{
		bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgppkt.NewPathAttributeAsPath(nil),
	}
	family := bgppkt.RF_IPv4_UC
	if p.Addr().Is4() {
		nh, err := bgppkt.NewPathAttributeNextHop(g.cfg.IPv4Address)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		family = bgppkt.RF_IPv6_UC
		mp, err := bgppkt.NewPathAttributeMpReachNLRI(family, []bgppkt.PathNLRI{{NLRI: nlri}}, g.cfg.IPv6Address)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if export {
		attrs = append(attrs, bgppkt.NewPathAttributeCommunities([]uint32{exportCommunityValue}))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}, nil
}

// Learned returns the channel of learned best paths.
func (g *GoBGP) Learned() <-chan []LearnedRoute { return g.learned.out }

// Status reports every configured session.
func (g *GoBGP) Status(ctx context.Context) ([]PeerStatus, error) {
	g.mu.Lock()
	srv := g.srv
	running := g.state == stateRunning
	peers := make(map[netip.Addr]Peer, len(g.peers))
	configured := make(map[netip.Addr]time.Time, len(g.configured))
	for a, p := range g.peers {
		peers[a] = p
		configured[a] = g.configured[a]
	}
	g.mu.Unlock()
	if !running {
		return nil, errors.New("bgp speaker: not running")
	}

	out := []PeerStatus{}
	err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetState() == nil {
			return
		}
		addr, err := netip.ParseAddr(p.GetState().GetNeighborAddress())
		if err != nil {
			addr, err = netip.ParseAddr(p.GetConf().GetNeighborAddress())
			if err != nil {
				return
			}
		}
		addr = addr.Unmap()
		st := PeerStatus{
			Address:   addr,
			Type:      peers[addr].Type,
			State:     sessionState(p.GetState().GetSessionState()),
			AdminDown: p.GetState().GetAdminState() == api.PeerState_ADMIN_STATE_DOWN,
			Since:     configured[addr],
		}
		timers := p.GetTimers().GetState()
		if st.State == "Established" {
			if t := timers.GetUptime(); t != nil && t.GetSeconds() > 0 {
				st.Since = t.AsTime()
			}
		} else {
			if t := timers.GetDowntime(); t != nil && t.GetSeconds() > 0 {
				st.Since = t.AsTime()
			}
			st.Info = disconnectInfo(p.GetState())
			if li := g.limitInfo(peers[addr], p.GetState()); li != "" {
				st.Info = li
			}
		}
		out = append(out, st)
	})
	if err != nil {
		return nil, fmt.Errorf("listing BGP peers: %w", err)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out, nil
}

func sessionState(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_IDLE:
		return "Idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "Connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "Active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "OpenSent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "OpenConfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "Established"
	default:
		return "Idle"
	}
}

// disconnectInfo says why the last session went down, if it did.
func disconnectInfo(st *api.PeerState) string {
	r := st.GetDisconnectReason()
	if r == api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
		return ""
	}
	s := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(r.String(), "DISCONNECT_REASON_"), "_", " "))
	if m := strings.TrimSpace(st.GetDisconnectMessage()); m != "" {
		s += ": " + m
	}
	return "(last down: " + s + ")"
}

// Stop stops the speaker; see Speaker.Stop.
func (g *GoBGP) Stop(ctx context.Context, graceful bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateRunning {
		g.state = stateStopped
		return nil
	}
	g.state = stateStopped
	g.cancelWatch()
	g.stopping.Store(true)
	var err error
	if graceful && !g.cfg.DisableGracefulRestart {
		// Close every session without a NOTIFICATION; Stop below then
		// finds the server already stopped and only releases the rest.
		err = g.srv.StopBgp(ctx, &api.StopBgpRequest{AllowGracefulRestart: true})
	} else {
		g.shutdownSessions(ctx)
	}
	g.srv.Stop()
	g.log.Info("BGP speaker stopped", "graceful", graceful && !g.cfg.DisableGracefulRestart)
	if err != nil {
		return fmt.Errorf("stopping BGP gracefully: %w", err)
	}
	return nil
}

// shutdownSessions brings every established session down with a CEASE
// NOTIFICATION and waits (a few seconds at most) until each has been sent.
//
// GoBGP's own StopBgp queues the NOTIFICATION to each session's goroutine
// and closes the listeners in the same step, and closing a listener closes
// the sessions it accepted: the NOTIFICATION is then often lost, and a peer
// that sees the connection drop without one treats it as a graceful restart
// and keeps our routes for the restart time. An administrative shutdown is
// sent by the session's goroutine before it reports the session down, so
// the state change is the signal that the peer has been told.
func (g *GoBGP) shutdownSessions(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var mu sync.Mutex
	down := map[netip.Addr]bool{}
	changed := make(chan struct{}, 1)
	err := g.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE || ev.Peer.State.SessionState == bgppkt.BGP_FSM_ESTABLISHED {
				return
			}
			mu.Lock()
			down[ev.Peer.State.NeighborAddress.Unmap()] = true
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	}, server.WatchPeer())
	if err != nil {
		g.log.Warn("BGP stop: cannot watch sessions; peers may not be told", "err", err)
		return
	}
	var established []netip.Addr
	err = g.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetState().GetSessionState() != api.PeerState_SESSION_STATE_ESTABLISHED {
			return
		}
		if a, err := netip.ParseAddr(p.GetState().GetNeighborAddress()); err == nil {
			established = append(established, a.Unmap())
		}
	})
	if err != nil {
		g.log.Warn("BGP stop: cannot list sessions; peers may not be told", "err", err)
		return
	}
	for _, a := range established {
		if err := g.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: a.String(), Communication: "calico node stopping"}); err != nil {
			g.log.Warn("BGP stop: cannot shut session down", "peer", a, "err", err)
		}
	}
	for {
		mu.Lock()
		all := true
		for _, a := range established {
			all = all && down[a]
		}
		mu.Unlock()
		if all {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			g.log.Warn("BGP stop: sessions still up after shutdown request", "peers", established)
			return
		}
	}
}

// quietStopHandler drops the one error GoBGP logs when its Stop finds the
// server already stopped by our graceful StopBgp; it would otherwise look
// like a failure in the logs of every clean shutdown.
type quietStopHandler struct {
	slog.Handler
	stopping *atomic.Bool
}

func (h quietStopHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.stopping.Load() && r.Level == slog.LevelError && r.Message == "failed to stop BGP server" {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietStopHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietStopHandler{Handler: h.Handler.WithAttrs(attrs), stopping: h.stopping}
}

func (h quietStopHandler) WithGroup(name string) slog.Handler {
	return quietStopHandler{Handler: h.Handler.WithGroup(name), stopping: h.stopping}
}

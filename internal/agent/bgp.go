package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/bgp"
	"github.com/calico-docker/calico/internal/dataplane"
)

// gracefulMarker records that the previous node instance stopped its BGP
// speaker gracefully, so that the next one announces a restart and peers keep
// its routes until it has sent them again.
const gracefulMarker = "bgp-graceful-stop"

// bgpRunner drives the speaker from the datastore (peers) and from what the
// dataplane holds (advertisements), and feeds learned routes to the agent.
type bgpRunner struct {
	a    *Agent
	kick chan struct{}

	mu       sync.Mutex
	sp       bgp.Speaker
	settings bgp.NodeSettings
	local    []netip.Prefix // local endpoint addresses, from the last apply
	peers    []netip.Addr   // addresses of the sessions last configured
}

// peerAddresses returns the addresses of the configured BGP peers.
func (r *bgpRunner) peerAddresses() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.peers)
}

func (a *Agent) startBGP(ctx context.Context, wg *sync.WaitGroup) (*bgpRunner, error) {
	r := &bgpRunner{a: a, kick: make(chan struct{}, 1)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.run(ctx)
	}()
	return r, nil
}

func (r *bgpRunner) trigger() { kickChan(r.kick) }

func (r *bgpRunner) configChanged() { r.trigger() }

// localChanged is called by the apply loop with what it just applied.
func (r *bgpRunner) localChanged(d *dataplane.Desired) {
	var addrs []netip.Prefix
	for _, e := range d.Endpoints {
		addrs = append(addrs, e.Addrs...)
	}
	slices.SortFunc(addrs, comparePrefix)
	r.mu.Lock()
	same := slices.Equal(addrs, r.local)
	r.local = addrs
	r.mu.Unlock()
	if !same {
		r.trigger()
	}
}

func (r *bgpRunner) run(ctx context.Context) {
	log := r.a.log.With("component", "bgp")
	markerDir := "/var/run/calico"
	if r.a.cfg.NetNS != "" {
		markerDir = "" // tests: no shared state directory
	}
	defer func() {
		r.mu.Lock()
		sp := r.sp
		r.mu.Unlock()
		if sp == nil {
			return
		}
		// Graceful: peers keep our routes while the node restarts.
		if err := sp.Stop(context.Background(), true); err != nil {
			log.Warn("bgp stop", "err", err)
		}
		if markerDir != "" {
			_ = os.WriteFile(filepath.Join(markerDir, gracefulMarker), nil, 0o644)
		}
	}()
	// Password secrets are files: read them again now and then, so that a
	// changed password takes effect without a datastore change.
	secrets := time.NewTicker(secretRereadInterval)
	defer secrets.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-secrets.C:
		}
		r.a.mu.Lock()
		synced := r.a.everInSync
		r.a.mu.Unlock()
		if !synced {
			continue
		}
		if err := r.reconcile(ctx, markerDir); err != nil && ctx.Err() == nil {
			log.Warn("bgp reconcile", "err", err)
		}
	}
}

func (r *bgpRunner) input() (bgp.PeerInput, map[netip.Prefix]string, []api.IPPool) {
	s := r.a.calc
	s.mu.Lock()
	defer s.mu.Unlock()
	in := bgp.PeerInput{NodeName: r.a.cfg.NodeName}
	for _, n := range s.nodes {
		in.Nodes = append(in.Nodes, *n)
	}
	for _, p := range s.bgpPeers {
		in.Peers = append(in.Peers, *p)
	}
	for _, c := range s.bgpConfig {
		in.Configs = append(in.Configs, *c)
	}
	for _, f := range s.bgpFilter {
		in.Filters = append(in.Filters, *f)
	}
	blocks := make(map[netip.Prefix]string, len(s.blocks))
	for k, v := range s.blocks {
		blocks[k] = v
	}
	pools := make([]api.IPPool, 0, len(s.pools))
	for _, p := range s.pools {
		pools = append(pools, *p)
	}
	return in, blocks, pools
}

func (r *bgpRunner) reconcile(ctx context.Context, markerDir string) error {
	in, blocks, pools := r.input()
	settings, err := bgp.Settings(in)
	if err != nil {
		// Typically: our Node is not registered yet; a later update retries.
		return err
	}
	if err := r.ensureSpeaker(ctx, settings, markerDir); err != nil {
		return err
	}
	peers, perr := bgp.DesiredPeers(in)
	peers, serr := withSecrets(peers, r.a.cfg.BGPSecretDir)
	perr = errors.Join(perr, serr)
	r.mu.Lock()
	sp := r.sp
	local := r.local
	r.mu.Unlock()
	// Advertisements first: a restarting speaker sends its table to the
	// peers of its first SetPeers, so that table must be complete by then.
	if err := sp.SetAdvertisements(ctx, advertisements(r.a.cfg.NodeName, blocks, pools, local)); err != nil {
		return err
	}
	if peers != nil {
		if err := sp.SetPeers(ctx, peers); err != nil {
			return err
		}
		addrs := make([]netip.Addr, 0, len(peers))
		for _, p := range peers {
			addrs = append(addrs, p.Address)
		}
		r.mu.Lock()
		r.peers = addrs
		r.mu.Unlock()
	}
	return perr
}

// ensureSpeaker starts the speaker, or restarts it when settings it was
// started with (AS number, addresses, port) changed.
func (r *bgpRunner) ensureSpeaker(ctx context.Context, s bgp.NodeSettings, markerDir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sp != nil && r.settings == s {
		return nil
	}
	if r.sp != nil {
		r.a.log.Info("bgp settings changed; restarting the speaker", "asn", s.ASN)
		_ = r.sp.Stop(ctx, true)
		r.sp = nil
	}
	restarting := false
	if markerDir != "" {
		if err := os.Remove(filepath.Join(markerDir, gracefulMarker)); err == nil {
			restarting = true
		}
	}
	port := int(s.ListenPort)
	if r.a.cfg.BGPPort != 0 && r.a.cfg.BGPPort != 179 {
		port = r.a.cfg.BGPPort
	}
	cfg := bgp.Config{
		RouterID:    s.IPv4,
		ASN:         s.ASN,
		IPv4Address: s.IPv4,
		IPv6Address: s.IPv6,
		ListenPort:  port,
		Logger:      r.a.log.With("component", "bgp"),
		Restarting:  restarting,
		MaxPrefixes: r.a.cfg.BGPMaxPrefixes,
	}
	sp := r.a.deps.NewSpeaker(cfg)
	if err := sp.Start(ctx); err != nil {
		return err
	}
	r.sp, r.settings = sp, s
	go r.forwardLearned(ctx, sp)
	r.a.log.Info("bgp speaker started", "routerID", s.IPv4, "asn", s.ASN, "port", port, "restarting", restarting)
	return nil
}

func (r *bgpRunner) forwardLearned(ctx context.Context, sp bgp.Speaker) {
	for {
		select {
		case <-ctx.Done():
			return
		case learned, ok := <-sp.Learned():
			if !ok {
				return
			}
			routes := make([]dataplane.Route, 0, len(learned))
			for _, l := range learned {
				routes = append(routes, dataplane.Route{Dst: l.Prefix, Type: dataplane.RouteVia, Gateway: l.NextHop})
			}
			r.a.setLearned(routes)
		}
	}
}

// advertisements: this node's affine blocks, plus /32 (/128) routes for
// local endpoint addresses outside them (borrowed from other nodes' blocks).
// A prefix goes to external peers when its pool does not disable BGP export.
func advertisements(node string, blocks map[netip.Prefix]string, pools []api.IPPool, local []netip.Prefix) []bgp.Advertisement {
	type poolInfo struct {
		cidr   netip.Prefix
		export bool
	}
	var ps []poolInfo
	for _, p := range pools {
		c, err := netip.ParsePrefix(p.Spec.CIDR)
		if err == nil {
			ps = append(ps, poolInfo{c.Masked(), !p.Spec.DisableBGPExport})
		}
	}
	export := func(pfx netip.Prefix) bool {
		for _, p := range ps {
			if p.cidr.Contains(pfx.Addr()) && p.cidr.Bits() <= pfx.Bits() {
				return p.export
			}
		}
		return false
	}
	var own []netip.Prefix
	var ads []bgp.Advertisement
	for b, n := range blocks {
		if n == node {
			own = append(own, b)
			ads = append(ads, bgp.Advertisement{Prefix: b, ExportToExternal: export(b)})
		}
	}
	for _, a := range local {
		covered := false
		for _, b := range own {
			if b.Contains(a.Addr()) {
				covered = true
				break
			}
		}
		if !covered {
			ads = append(ads, bgp.Advertisement{Prefix: a, ExportToExternal: export(a)})
		}
	}
	slices.SortFunc(ads, func(x, y bgp.Advertisement) int { return comparePrefix(x.Prefix, y.Prefix) })
	return ads
}

func comparePrefix(x, y netip.Prefix) int {
	if c := x.Addr().Compare(y.Addr()); c != 0 {
		return c
	}
	return x.Bits() - y.Bits()
}

func (r *bgpRunner) statusJSON(ctx context.Context) (json.RawMessage, error) {
	r.mu.Lock()
	sp := r.sp
	r.mu.Unlock()
	if sp == nil {
		return nil, errors.New("bgp speaker not started")
	}
	st, err := sp.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = []bgp.PeerStatus{}
	}
	return json.Marshal(st)
}

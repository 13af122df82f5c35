package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/syncer"
)

// Agent is one node daemon.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	version string
	m       *metrics

	// deps are the injected outside world (deps.go); clock is deps.Clock.
	deps  Deps
	clock clockwork.Clock

	store datastore.Store
	calc  *calcState
	nft   NFTDriver
	rt    RoutesDriver
	fw    FirewallDriver // nil when DockerFirewall is off
	bgp   *bgpRunner
	// cluster is the managed datastore's state (nil with an external etcd).
	cluster *cluster
	// flows records flow logs once FelixConfiguration turns them on.
	flows flowRunner

	kick chan struct{}
	// resyncReq asks the loop for a resync before its next apply (our
	// nftables table was deleted).
	resyncReq atomic.Bool
	maint     chan struct{}

	mu           sync.Mutex
	inSync       bool
	everInSync   bool
	applied      bool
	lastApplyErr error
	endpoints    int
	loopBeat     time.Time
	resyncEvery  time.Duration
	learned      []dataplane.Route
	stale        []dataplane.Route // learned by a previous instance, kept until staleUntil
	staleUntil   time.Time
	ipv4, ipv6   netip.Prefix
	healthAddr   string
	metricsAddr  string
	wantV6       bool   // the desired state has IPv6 (forwarding is then checked)
	fwChecked    bool   // checkFirewall has run since the first sync
	fwSummary    string // what the Docker firewall driver found and keeps
	fwErr        error
	fwdProblem   string // forwarding sysctls that are off, "" when fine
	guard        guardState
}

// New prepares an agent with the production drivers, datastore, speaker
// and clock; Run starts it.
func New(cfg Config, version string) (*Agent, error) {
	return NewWithDeps(cfg, version, Deps{})
}

func newAgent(cfg Config, version string) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "agent", "node", cfg.NodeName),
		version:     version,
		m:           newMetrics(),
		kick:        make(chan struct{}, 1),
		maint:       make(chan struct{}, 1),
		resyncEvery: DefaultResyncInterval,
	}
	if cfg.ResyncInterval > 0 {
		a.resyncEvery = cfg.ResyncInterval
	}
	return a, nil
}

// HealthAddr is where health is served once Run has started (useful with port 0).
func (a *Agent) HealthAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.healthAddr
}

// MetricsAddr is where metrics are served once Run has started.
func (a *Agent) MetricsAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.metricsAddr
}

func (a *Agent) trigger() { kickChan(a.kick) }

// kickChan wakes a loop without blocking; wakes coalesce.
func kickChan(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run runs the agent until ctx is done. It returns nil on a clean stop; the
// dataplane is left exactly as it is.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if err := a.openDataplane(); err != nil {
		return err
	}
	if err := a.resolveAddrs(); err != nil {
		return err
	}
	switch {
	case a.cfg.ClusterMode():
		stop, err := a.startCluster(ctx)
		if err != nil {
			return err
		}
		defer stop()
	case a.cfg.EmbeddedEtcd:
		stop, err := a.startEmbeddedEtcd(ctx)
		if err != nil {
			return err
		}
		defer stop()
	}

	if a.cfg.HealthAddr != "" {
		addr, err := serveHTTP(ctx, a.cfg.HealthAddr, a.healthHandler())
		if err != nil {
			return fmt.Errorf("health server: %w", err)
		}
		a.mu.Lock()
		a.healthAddr = addr.String()
		a.mu.Unlock()
	}
	if a.cfg.MetricsAddr != "" {
		addr, err := serveHTTP(ctx, a.cfg.MetricsAddr, metricsHandler(a.m))
		if err != nil {
			return fmt.Errorf("metrics server: %w", err)
		}
		a.mu.Lock()
		a.metricsAddr = addr.String()
		a.mu.Unlock()
	}

	if a.cfg.BGP {
		stale, err := a.rt.LearnedRoutes()
		if err != nil {
			a.log.Warn("read routes learned by a previous instance", "err", err)
		}
		if len(stale) > 0 {
			a.log.Info("keeping routes learned by the previous instance while BGP re-learns them", "routes", len(stale), "for", staleRouteGrace)
			a.mu.Lock()
			a.stale, a.staleUntil = stale, a.clock.Now().Add(staleRouteGrace)
			a.mu.Unlock()
			a.clock.AfterFunc(staleRouteGrace, a.trigger)
		}
	}
	store := a.deps.Store
	if store == nil {
		var err error
		if store, err = a.openStore(ctx); err != nil {
			return err
		}
		defer store.Close()
	}
	a.store = store
	a.calc = newCalcState(a.cfg.NodeName)
	a.calc.setControlPlanePorts(a.cfg.controlPlanePorts())
	a.calc.setHostMTU(a.rt.HostMTU(a.ipv4.Addr()))

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	if a.cfg.BGP {
		r, err := a.startBGP(ctx, &wg)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.bgp = r
		a.mu.Unlock()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		a.registerNode(ctx)
	}()

	if a.cluster != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.maintainCluster(ctx)
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		a.maintain(ctx)
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		syncer.New(store, a, a.log.With("component", "syncer")).Run(ctx)
	}()

	if w, ok := a.nft.(interface {
		WatchTable(context.Context) <-chan struct{}
	}); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range w.WatchTable(ctx) {
				// Someone deleted our table: every workload of this host is
				// unprotected (and its allowed traffic dropped by Docker's
				// FORWARD policy) until it is back, so resync now.
				a.resyncReq.Store(true)
				a.trigger()
			}
		}()
	}

	if w, ok := a.rt.(interface {
		RouteEvents(context.Context) <-chan struct{}
	}); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range w.RouteEvents(ctx) {
				// Someone deleted a route we want: the driver already
				// forgot its memory of the routes, so this apply reads the
				// kernel and puts it back, not the next periodic resync.
				a.trigger()
			}
		}()
	}

	if w, ok := a.nft.(interface {
		WatchAddrs(context.Context) <-chan struct{}
	}); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range w.WatchAddrs(ctx) {
				// A HostEndpoint with only expectedIPs governs the
				// interfaces carrying them: apply to follow the address.
				a.trigger()
			}
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		for name := range a.rt.LinkEvents(ctx) {
			a.log.Debug("workload link event", "iface", name)
			a.trigger()
		}
	}()

	if a.cfg.DockerPlugin {
		if err := a.startDockerPlugin(ctx, &wg); err != nil {
			return err
		}
	}

	a.loop(ctx)
	a.log.Info("stopping; the dataplane is left in place")
	return nil
}

// OnUpdates implements syncer.Handler.
func (a *Agent) OnUpdates(us []syncer.Update) {
	changed := a.calc.apply(us)
	if changed.maint {
		kickChan(a.maint)
	}
	if changed.bgp {
		if a.bgp != nil {
			a.bgp.configChanged()
		}
		kickChan(a.maint)
	}
	if changed.felix {
		a.mu.Lock()
		a.resyncEvery = a.calc.resyncInterval(a.cfg.ResyncInterval)
		a.mu.Unlock()
	}
	a.trigger()
}

// OnStatus implements syncer.Handler.
func (a *Agent) OnStatus(inSync bool, err error) {
	a.mu.Lock()
	if !a.inSync && inSync && a.everInSync {
		a.m.dsReconnects.Inc()
	}
	a.inSync = inSync
	if inSync {
		a.everInSync = true
	}
	a.mu.Unlock()
	if inSync {
		kickChan(a.maint)
		if a.bgp != nil {
			a.bgp.configChanged()
		}
		a.m.datastoreInSync.Set(1)
		a.log.Info("datastore in sync")
	} else {
		a.m.datastoreInSync.Set(0)
		if err != nil {
			a.log.Warn("datastore not in sync; keeping the current dataplane", "err", err)
		}
	}
	a.trigger()
}

// setLearned replaces the BGP-learned routes.
func (a *Agent) setLearned(routes []dataplane.Route) {
	a.mu.Lock()
	a.learned = routes
	a.mu.Unlock()
	a.trigger()
}

// loop is the only goroutine that touches the kernel.
func (a *Agent) loop(ctx context.Context) {
	a.mu.Lock()
	every := a.resyncEvery
	a.mu.Unlock()
	resync := a.clock.NewTimer(every)
	defer resync.Stop()
	fwTick := a.clock.NewTicker(a.cfg.FirewallCheckInterval)
	defer fwTick.Stop()
	fwDue := false
	var retry <-chan time.Time
	backoff := 100 * time.Millisecond
	needResync := false
	for {
		a.mu.Lock()
		a.loopBeat = a.clock.Now()
		a.mu.Unlock()
		fwOnly := false
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-retry:
			retry = nil
		case <-fwTick.Chan():
			fwDue, fwOnly = true, true
		case <-resync.Chan():
			needResync = true
			a.mu.Lock()
			every = a.resyncEvery
			a.mu.Unlock()
			resync.Reset(every)
		}
		if a.resyncReq.Swap(false) {
			needResync = true
		}
		a.mu.Lock()
		ready := a.everInSync
		if a.resyncEvery != every {
			// FelixConfiguration changed the interval (it usually arrives
			// after the loop started with the default): use it from now on.
			every = a.resyncEvery
			resync.Reset(every)
		}
		a.mu.Unlock()
		if !ready {
			// Never program (and so never remove) anything before the first sync.
			continue
		}
		if fwOnly && a.firewallChecked() {
			a.mu.Lock()
			clean := a.applied && a.lastApplyErr == nil
			a.mu.Unlock()
			if clean {
				// Nothing else to do while the dataplane is as desired; a
				// forwarding sysctl found off is set again by a full apply.
				a.checkFirewall(ctx)
				a.mu.Lock()
				fwdOK := a.fwdProblem == ""
				a.mu.Unlock()
				if fwdOK {
					fwDue = false
					continue
				}
			}
		}
		if needResync {
			a.m.resyncRepairs.Inc()
			if err := a.nft.Resync(ctx); err != nil {
				a.log.Warn("nftables resync failed", "err", err)
			}
			if err := a.rt.Resync(ctx); err != nil {
				a.log.Warn("routes resync failed", "err", err)
			}
			needResync = false
		}
		err := a.applyOnce(ctx)
		if fwDue || !a.firewallChecked() {
			// After the apply, which sets the forwarding sysctls; it only
			// keeps our one rule in Docker's firewall and reads sysctls.
			a.checkFirewall(ctx)
			fwDue = false
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.m.applyErrors.Inc()
			a.log.Warn("dataplane apply failed; retrying", "err", err, "in", backoff)
			retry = a.clock.After(backoff)
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

func (a *Agent) applyOnce(ctx context.Context) error {
	start := time.Now()
	d := a.calc.desired()
	if learned := a.guardLearned(a.learnedRoutes()); len(learned) > 0 {
		d = withRoutes(d, learned)
	}
	d = a.withFlowLogs(ctx, d)
	a.nft.SetDesired(d)
	a.rt.SetDesired(d)
	errN := a.nft.Apply(ctx)
	errR := a.rt.Apply(ctx)
	err := errors.Join(errN, errR)
	a.m.applySeconds.Observe(time.Since(start).Seconds())
	rules := 0
	for _, c := range d.Chains {
		rules += len(c.Ingress) + len(c.Egress)
	}
	a.m.endpoints.Set(float64(len(d.Endpoints)))
	a.m.policies.Set(float64(len(d.Chains)))
	a.m.sets.Set(float64(len(d.Sets)))
	a.m.rules.Set(float64(rules))
	a.m.routes.Set(float64(len(d.Routes)))
	a.mu.Lock()
	a.lastApplyErr = err
	a.wantV6 = desiredHasIPv6(d)
	if err == nil {
		a.applied = true
	}
	a.endpoints = len(d.Endpoints)
	a.mu.Unlock()
	if a.bgp != nil {
		a.bgp.localChanged(d)
	}
	return err
}

// withRoutes returns a copy of d with extra routes merged in, kept sorted; a
// route for a destination d already has (local endpoints, own blocks) wins.
func withRoutes(d *dataplane.Desired, extra []dataplane.Route) *dataplane.Desired {
	out := *d
	have := make(map[netip.Prefix]bool, len(d.Routes))
	for _, r := range d.Routes {
		have[r.Dst] = true
	}
	routes := slices.Clone(d.Routes)
	for _, r := range extra {
		if !have[r.Dst] {
			routes = append(routes, r)
			have[r.Dst] = true
		}
	}
	slices.SortFunc(routes, func(x, y dataplane.Route) int { return comparePrefix(x.Dst, y.Dst) })
	out.Routes = routes
	return &out
}

package agent_test

// The agent's apply, retry, resync and readiness logic against the fakes
// of package agenttest: no root, no kernel, no etcd, and the clock moved by
// the test instead of waited for. The same behaviour against the real
// kernel and etcd is the root tier (lifecycle_e2e_test.go).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/agent/agenttest"
	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/bgp"
	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/testutil"
)

const (
	fakeNode = "h21-fake"
	// fakeWait bounds the polls of the agent's goroutines (real time; the
	// agent's own timers run on the fake clock).
	fakeWait = 20 * time.Second
	// The agent's own timers; long, so that only the test's Advance fires them.
	fakeResync  = 24 * time.Hour
	fakeFwCheck = 48 * time.Hour
	// maxApplyBackoff is the longest the agent waits before retrying a
	// failed apply.
	maxApplyBackoff = 10 * time.Second
	// staleGrace is how long BGP routes left by a previous agent are kept.
	staleGrace = 90 * time.Second
)

// fakeAgent is an agent running against fakes.
type fakeAgent struct {
	a     *agent.Agent
	nft   *agenttest.NFT
	rt    *agenttest.Routes
	store *agenttest.Store
	clock *clockwork.FakeClock
	// cfg and speaker may be changed by prepare (speaker is used with cfg.BGP).
	cfg     agent.Config
	speaker *agenttest.Speaker
	cancel  context.CancelFunc
	done    chan error
}

func startFakeAgent(t *testing.T, prepare func(f *fakeAgent)) *fakeAgent {
	t.Helper()
	f := &fakeAgent{
		nft:   &agenttest.NFT{},
		rt:    agenttest.NewRoutes(netip.MustParsePrefix("10.73.0.1/24")),
		store: agenttest.NewStore(),
		clock: clockwork.NewFakeClock(),
		cfg: agent.Config{
			NodeName: fakeNode,
			// Not a namespace the fakes enter (they enter none): a non-empty
			// NetNS keeps the agent from writing this host's node state
			// (the node name file, the BGP graceful-stop marker).
			NetNS:                 "/nonexistent/h21-fake-netns",
			ResyncInterval:        fakeResync,
			FirewallCheckInterval: fakeFwCheck,
			Logger:                slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
		speaker: agenttest.NewSpeaker(),
		done:    make(chan error, 1),
	}
	if testing.Verbose() {
		f.cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if prepare != nil {
		prepare(f)
	}
	a, err := agent.NewWithDeps(f.cfg, "test", agent.Deps{
		NFT: f.nft, Routes: f.rt, Store: f.store, Clock: f.clock, NewSpeaker: f.speaker.Factory(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-f.done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
		_ = f.store.Close()
	})
	return f
}

// testWriter sends agent logs to t.Log (with -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// putEndpoint writes a WorkloadEndpoint of this node through the store
// without faults (as another host's plugin would).
func putEndpoint(t *testing.T, s datastore.Store, name, addr string) {
	t.Helper()
	wep := api.WorkloadEndpoint{
		TypeMeta:   api.TypeMeta{Kind: api.KindWorkloadEndpoint, APIVersion: api.APIVersion},
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.WorkloadEndpointSpec{
			Node: fakeNode, Orchestrator: "libnetwork", Workload: "libnetwork", Endpoint: name,
			InterfaceName: "cali" + name, IPNetworks: []string{addr},
		},
	}
	b, err := api.EncodeStored(&wep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(context.Background(), datastore.ResourceKey("workloadendpoints", "default", name), b, 0); err != nil {
		t.Fatal(err)
	}
}

func deleteEndpoint(t *testing.T, s datastore.Store, name string) {
	t.Helper()
	if err := s.Delete(context.Background(), datastore.ResourceKey("workloadendpoints", "default", name), 0); err != nil {
		t.Fatal(err)
	}
}

// ifaces are the interfaces of the endpoints in d, sorted.
func ifaces(d *dataplane.Desired) []string {
	if d == nil {
		return nil
	}
	var out []string
	for _, e := range d.Endpoints {
		out = append(out, e.Iface)
	}
	slices.Sort(out)
	return out
}

// waitProgrammed waits until both fake drivers hold exactly the endpoints
// on the given interfaces.
func (f *fakeAgent) waitProgrammed(t *testing.T, want ...string) {
	t.Helper()
	testutil.Eventually(t, fakeWait, func() error { return f.programmed(want...) })
}

// programmed checks that both fake drivers hold exactly the endpoints on
// the given interfaces.
func (f *fakeAgent) programmed(want ...string) error {
	slices.Sort(want)
	for name, d := range map[string]*agenttest.Driver{"nft": &f.nft.Driver, "routes": &f.rt.Driver} {
		if got := ifaces(d.Applied()); !slices.Equal(got, want) {
			return fmt.Errorf("%s driver programmed %v, want %v", name, got, want)
		}
	}
	return nil
}

// waitStatus waits until cond holds for the agent's status.
func (f *fakeAgent) waitStatus(t *testing.T, what string, cond func(s statusView) bool) statusView {
	t.Helper()
	var st statusView
	testutil.Eventually(t, fakeWait, func() error {
		h := f.a.Status()
		st = statusView{Ready: h.Ready, InSync: h.InSync, Reason: h.Reason}
		if !cond(st) {
			return fmt.Errorf("status %+v, want %s", st, what)
		}
		return nil
	})
	return st
}

type statusView struct {
	Ready, InSync bool
	Reason        string
}

// waitTimers blocks until the agent's loop waits on n timers of the fake
// clock (the resync timer and the firewall check ticker, plus a retry).
func (f *fakeAgent) waitTimers(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fakeWait)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("the agent's loop never waited on %d timers: %v", n, err)
	}
}

// Nothing is programmed before the first sync: while the datastore is gone
// from the start the drivers are never called and the agent says why it is
// not ready; once it is back the endpoint is programmed and it is ready.
func TestFakeNothingAppliedBeforeFirstSync(t *testing.T) {
	f := startFakeAgent(t, func(f *fakeAgent) {
		putEndpoint(t, f.store.Inner(), "a", "10.73.1.1/32")
		f.store.SetDown(true)
	})
	st := f.waitStatus(t, "not ready, waiting for the datastore", func(s statusView) bool {
		return !s.Ready && strings.Contains(s.Reason, "waiting for the datastore")
	})
	f.waitTimers(t, 2) // the loop is running and has turned at least once
	if n, _, _ := f.nft.Counts(); n != 0 {
		t.Fatalf("nft Apply called %d times before the first sync (status %+v)", n, st)
	}
	f.store.SetDown(false)
	f.waitProgrammed(t, "calia")
	f.waitStatus(t, "ready", func(s statusView) bool { return s.Ready && s.InSync })
}

// A failed apply (netlink EBUSY, EINTR, an nftables transaction refused) is
// retried with a bounded backoff, on the clock; the agent is not ready while
// the dataplane cannot be programmed, with the kernel's reason, and ready
// again as soon as an apply succeeds.
func TestFakeFailedApplyRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(f *fakeAgent)
		want string
	}{
		{"routes EBUSY", func(f *fakeAgent) { f.rt.FailWith(agenttest.ErrBusy) }, "device or resource busy"},
		{"routes EINTR", func(f *fakeAgent) { f.rt.FailWith(agenttest.ErrInterrupted) }, "interrupted system call"},
		{"nft transaction refused", func(f *fakeAgent) { f.nft.FailWith(agenttest.ErrTxnRefused) }, "transaction refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeAgent(t, func(f *fakeAgent) {
				putEndpoint(t, f.store.Inner(), "a", "10.73.1.1/32")
				tc.fail(f)
			})
			f.waitStatus(t, "not ready: apply failed", func(s statusView) bool {
				return !s.Ready && s.InSync && strings.Contains(s.Reason, "last dataplane apply failed") && strings.Contains(s.Reason, tc.want)
			})
			// Each failure schedules a retry on the clock, backing off up
			// to maxApplyBackoff: moving the clock by that much always
			// brings the next attempt (the advance is repeated in case the
			// loop had not set its retry timer yet). Without the retry
			// nothing would call the drivers again.
			for i := range 3 {
				before, _, _ := f.nft.Counts()
				testutil.Eventually(t, fakeWait, func() error {
					f.clock.Advance(maxApplyBackoff)
					if n, _, _ := f.nft.Counts(); n <= before {
						return fmt.Errorf("no retry %d after the clock moved", i+1)
					}
					return nil
				})
				if st := f.a.Status(); st.Ready {
					t.Fatalf("ready while every apply fails: %+v", st)
				}
			}
			// The kernel recovers: the next retry programs it.
			f.nft.FailWith(nil)
			f.rt.FailWith(nil)
			testutil.Eventually(t, fakeWait, func() error {
				f.clock.Advance(maxApplyBackoff)
				return f.programmed("calia")
			})
			f.waitStatus(t, "ready", func(s statusView) bool { return s.Ready })
		})
	}
}

// A cut watch: the agent notices (not in sync), keeps the dataplane as it
// is (no apply of a partial state), and after the datastore is back it
// re-lists and applies what changed meanwhile, including a deletion.
func TestFakeResyncAfterWatchCut(t *testing.T) {
	f := startFakeAgent(t, func(f *fakeAgent) {
		putEndpoint(t, f.store.Inner(), "a", "10.73.1.1/32")
		putEndpoint(t, f.store.Inner(), "b", "10.73.1.2/32")
	})
	f.waitProgrammed(t, "calia", "calib")
	f.waitStatus(t, "ready", func(s statusView) bool { return s.Ready && s.InSync })

	f.store.SetDown(true)
	st := f.waitStatus(t, "not in sync", func(s statusView) bool { return !s.InSync })
	// Changes made by others while this agent cannot see the datastore.
	deleteEndpoint(t, f.store.Inner(), "a")
	putEndpoint(t, f.store.Inner(), "c", "10.73.1.3/32")
	if got := ifaces(f.nft.Applied()); !slices.Equal(got, []string{"calia", "calib"}) {
		t.Fatalf("dataplane changed during the outage: %v (status %+v)", got, st)
	}
	// Whether an outage also makes the node not ready is a design choice
	// (today it stays ready, serving its last state: TestDatastoreOutage);
	// either way the status must say the datastore is the cause.
	if !st.Ready && !strings.Contains(st.Reason, "datastore") {
		t.Errorf("not ready during the outage without naming the datastore: %+v", st)
	}

	f.store.SetDown(false)
	f.waitProgrammed(t, "calib", "calic")
	f.waitStatus(t, "ready and in sync", func(s statusView) bool { return s.Ready && s.InSync })

	// A plain cut (connection dropped, datastore still there) re-lists too.
	f.store.CutWatches()
	putEndpoint(t, f.store.Inner(), "d", "10.73.1.4/32")
	f.waitProgrammed(t, "calib", "calic", "cali"+"d")
}

// A watcher that fell behind a compaction re-lists: the agent then drops
// what was deleted meanwhile although it never saw the delete event.
func TestFakeResyncAfterCompaction(t *testing.T) {
	f := startFakeAgent(t, func(f *fakeAgent) {
		putEndpoint(t, f.store.Inner(), "a", "10.73.1.1/32")
		putEndpoint(t, f.store.Inner(), "b", "10.73.1.2/32")
	})
	f.waitProgrammed(t, "calia", "calib")
	f.store.Lag()
	deleteEndpoint(t, f.store.Inner(), "a")
	putEndpoint(t, f.store.Inner(), "e", "10.73.1.5/32")
	if err := f.store.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.waitProgrammed(t, "calib", "calie")
	f.waitStatus(t, "ready and in sync", func(s statusView) bool { return s.Ready && s.InSync })
}

// The periodic resync runs on the clock: moving it by the resync interval
// makes the agent resync both drivers, and a resync that fails is retried.
func TestFakePeriodicResync(t *testing.T) {
	f := startFakeAgent(t, func(f *fakeAgent) {
		putEndpoint(t, f.store.Inner(), "a", "10.73.1.1/32")
	})
	f.waitProgrammed(t, "calia")
	f.waitStatus(t, "ready", func(s statusView) bool { return s.Ready })
	if _, _, r := f.nft.Counts(); r != 0 {
		t.Fatalf("%d resyncs before the interval passed", r)
	}
	f.waitTimers(t, 2)
	f.clock.Advance(fakeResync)
	testutil.Eventually(t, fakeWait, func() error {
		_, _, rn := f.nft.Counts()
		_, _, rr := f.rt.Counts()
		if rn != 1 || rr != 1 {
			return fmt.Errorf("resyncs: nft %d, routes %d; want 1 each", rn, rr)
		}
		return nil
	})
}

// routeDsts are the destinations of the routes in d that go via a gateway
// (learned ones), sorted.
func routeDsts(d *dataplane.Desired) []string {
	if d == nil {
		return nil
	}
	var out []string
	for _, r := range d.Routes {
		if r.Type == dataplane.RouteVia {
			out = append(out, r.Dst.String())
		}
	}
	slices.Sort(out)
	return out
}

// After a restart the BGP routes the previous agent left in the kernel are
// kept while the (injected) speaker re-learns, and dropped when the grace
// period has passed on the clock, unless the speaker learned them again.
func TestFakeStaleLearnedRoutesGrace(t *testing.T) {
	gw := netip.MustParseAddr("10.73.0.2")
	f := startFakeAgent(t, func(f *fakeAgent) {
		f.cfg.BGP = true
		f.rt.Host.Learned = []dataplane.Route{
			{Dst: netip.MustParsePrefix("10.74.0.0/26"), Type: dataplane.RouteVia, Gateway: gw},
			{Dst: netip.MustParsePrefix("10.74.0.64/26"), Type: dataplane.RouteVia, Gateway: gw},
		}
		putEndpoint(t, f.store.Inner(), "a", "10.73.1.1/32")
	})
	waitRoutes := func(want ...string) {
		t.Helper()
		testutil.Eventually(t, fakeWait, func() error {
			if got := routeDsts(f.rt.Applied()); !slices.Equal(got, want) {
				return fmt.Errorf("learned routes programmed %v, want %v", got, want)
			}
			return nil
		})
	}
	waitRoutes("10.74.0.0/26", "10.74.0.64/26")
	testutil.Eventually(t, fakeWait, func() error {
		if n, cfg := f.speaker.Started(); n != 1 || cfg.IPv4Address != netip.MustParseAddr("10.73.0.1") {
			return fmt.Errorf("speaker started %d times with %+v; want once, on the host's address", n, cfg)
		}
		return nil
	})
	// The speaker re-learns one of them (and a new one).
	f.speaker.Learn([]bgp.LearnedRoute{
		{Prefix: netip.MustParsePrefix("10.74.0.64/26"), NextHop: gw},
		{Prefix: netip.MustParsePrefix("10.74.1.0/26"), NextHop: gw},
	})
	waitRoutes("10.74.0.0/26", "10.74.0.64/26", "10.74.1.0/26")
	// Grace over: the one not re-learned goes.
	f.clock.Advance(staleGrace)
	waitRoutes("10.74.0.64/26", "10.74.1.0/26")
}

// Half the dataplane injected would mix a fake with the kernel: refused,
// naming the fields.
func TestNewWithDepsRefusesOneDriver(t *testing.T) {
	cfg := agent.Config{NodeName: fakeNode}
	_, err := agent.NewWithDeps(cfg, "test", agent.Deps{NFT: &agenttest.NFT{}})
	if err == nil || !strings.Contains(err.Error(), "NFT") || !strings.Contains(err.Error(), "Routes") {
		t.Fatalf("NewWithDeps with only NFT: %v, want an error naming NFT and Routes", err)
	}
}

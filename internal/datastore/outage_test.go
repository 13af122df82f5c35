package datastore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/testutil"
)

// mirror applies watch events the way a consumer must, and records what it saw.
type mirror struct {
	state  map[string]string
	synced bool // an EventInSync came after the last EventReset
	errors int
	resets int
}

func (m *mirror) apply(ev datastore.Event) {
	switch ev.Type {
	case datastore.EventReset:
		m.state = map[string]string{}
		m.synced = false
		m.resets++
	case datastore.EventPut:
		m.state[ev.KV.Key] = string(ev.KV.Value)
	case datastore.EventDelete:
		delete(m.state, ev.KV.Key)
	case datastore.EventInSync:
		m.synced = true
	case datastore.EventError:
		m.errors++
	}
}

// waitFor applies events until cond holds.
func (m *mirror) waitFor(t *testing.T, ch <-chan datastore.Event, timeout time.Duration, what string, cond func(datastore.Event) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed while waiting for %s", what)
			}
			m.apply(ev)
			if cond(ev) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s within %v (state %v)", what, timeout, m.state)
		}
	}
}

func (m *mirror) equals(want map[string]string) bool {
	return m.synced && fmt.Sprint(m.state) == fmt.Sprint(want)
}

// The watcher of a single server that goes away reports the outage, keeps
// its place, and comes back in sync with the live state after a restart.
func TestWatchSurvivesServerRestart(t *testing.T) {
	srv := etcdtest.StartServer(t)
	s := etcdtest.Store(t, srv.Endpoints())
	ctx := ctxT(t)
	p := "/calico/outage/"
	mustCreate(t, s, p+"a", "1")
	mustCreate(t, s, p+"b", "1")

	ch := s.Watch(ctx, p)
	m := &mirror{}
	m.waitFor(t, ch, eventTimeout, "first sync", func(datastore.Event) bool {
		return m.equals(map[string]string{p + "a": "1", p + "b": "1"})
	})

	stopped := time.Now()
	srv.Stop()
	var outageErr error
	m.waitFor(t, ch, 15*time.Second, "EventError", func(ev datastore.Event) bool {
		outageErr = ev.Err
		return ev.Type == datastore.EventError
	})
	if !errors.Is(outageErr, datastore.ErrUnavailable) || !strings.Contains(outageErr.Error(), srv.Endpoints()[0]) {
		t.Fatalf("outage error should match ErrUnavailable and name the endpoint: %v", outageErr)
	}
	t.Logf("outage reported after %v: %v", time.Since(stopped).Round(time.Millisecond), outageErr)

	srv.Restart()
	restarted := time.Now()
	// A write right after the restart, through another client.
	w := etcdtest.Store(t, srv.Endpoints())
	if _, err := w.Update(ctx, p+"c", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(ctx, p+"a", 0); err != nil {
		t.Fatal(err)
	}
	resets := m.resets
	m.waitFor(t, ch, 15*time.Second, "catch-up after restart", func(datastore.Event) bool {
		return m.resets > resets && m.equals(map[string]string{p + "b": "1", p + "c": "1"})
	})
	t.Logf("caught up %v after the restart (%d error events during the outage)", time.Since(restarted).Round(time.Millisecond), m.errors)

	// Live again.
	d := mustCreate(t, w, p+"d", "1")
	m.waitFor(t, ch, eventTimeout, "live event", func(ev datastore.Event) bool {
		return ev.Type == datastore.EventPut && ev.KV.Key == p+"d" && ev.Revision == d.Revision
	})
}

// A watcher cut off from an external cluster (its only member is killed)
// while the rest of the cluster keeps taking writes catches up on all of
// them when its member returns.
func TestWatchCatchesUpAfterMemberOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: starts a 3-member etcd cluster")
	}
	c := etcdtest.StartCluster(t, 3)
	eps := c.Endpoints()
	watchSide := etcdtest.Store(t, eps[:1])
	writeSide := etcdtest.Store(t, eps[1:])
	ctx := ctxT(t)
	p := "/calico/member-outage/"
	mustCreate(t, writeSide, p+"a", "1")

	ch := watchSide.Watch(ctx, p)
	m := &mirror{}
	m.waitFor(t, ch, eventTimeout, "first sync", func(datastore.Event) bool {
		return m.equals(map[string]string{p + "a": "1"})
	})

	c.StopMember(0)
	m.waitFor(t, ch, 15*time.Second, "EventError", func(ev datastore.Event) bool {
		return ev.Type == datastore.EventError
	})
	// The remaining quorum takes writes the watcher cannot see yet.
	testutil.Eventually(t, 20*time.Second, func() error {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := writeSide.Update(actx, p+"b", []byte("during"), 0)
		return err
	})
	if err := writeSide.Delete(ctx, p+"a", 0); err != nil {
		t.Fatal(err)
	}

	c.RestartMember(0)
	m.waitFor(t, ch, 20*time.Second, "catch-up", func(datastore.Event) bool {
		return m.equals(map[string]string{p + "b": "during"})
	})
	e := mustCreate(t, writeSide, p+"e", "1")
	m.waitFor(t, ch, eventTimeout, "live event", func(ev datastore.Event) bool {
		return ev.Type == datastore.EventPut && ev.KV.Key == p+"e" && ev.Revision == e.Revision
	})
}

func TestNewEtcdUnreachableFailsFast(t *testing.T) {
	srv := etcdtest.StartServer(t)
	srv.Stop()
	start := time.Now()
	_, err := datastore.NewEtcd(context.Background(), datastore.Config{Endpoints: srv.Endpoints()})
	if !errors.Is(err, datastore.ErrUnavailable) || !strings.Contains(err.Error(), "datastore unreachable at "+srv.Endpoints()[0]) {
		t.Fatalf("want a clear unavailable error, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

// A member that loses its quorum cannot promise the watcher anything: the
// watcher connected to it reports the outage and re-syncs once the quorum
// is back.
func TestWatchReportsQuorumLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: starts a 3-member etcd cluster")
	}
	c := etcdtest.StartCluster(t, 3)
	eps := c.Endpoints()
	s := etcdtest.Store(t, eps[:1])
	ctx := ctxT(t)
	p := "/calico/quorum/"
	mustCreate(t, s, p+"a", "1")
	ch := s.Watch(ctx, p)
	m := &mirror{}
	m.waitFor(t, ch, eventTimeout, "first sync", func(datastore.Event) bool {
		return m.equals(map[string]string{p + "a": "1"})
	})
	lost := time.Now()
	c.StopMember(1)
	c.StopMember(2)
	var outageErr error
	m.waitFor(t, ch, 20*time.Second, "EventError", func(ev datastore.Event) bool {
		outageErr = ev.Err
		return ev.Type == datastore.EventError
	})
	t.Logf("quorum loss reported after %v: %v", time.Since(lost).Round(time.Millisecond), outageErr)
	c.RestartMember(1)
	c.RestartMember(2)
	resets := m.resets
	m.waitFor(t, ch, 20*time.Second, "re-sync", func(datastore.Event) bool {
		return m.resets > resets && m.equals(map[string]string{p + "a": "1"})
	})
	b := mustCreate(t, s, p+"b", "1")
	m.waitFor(t, ch, eventTimeout, "live event", func(ev datastore.Event) bool {
		return ev.Type == datastore.EventPut && ev.KV.Key == p+"b" && ev.Revision == b.Revision
	})
}

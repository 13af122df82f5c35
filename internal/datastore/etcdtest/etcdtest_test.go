package etcdtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/testutil"
)

func TestStartStopRestartKeepsData(t *testing.T) {
	begin := time.Now()
	srv := StartServer(t)
	t.Logf("embedded etcd ready in %v at %v", time.Since(begin).Round(time.Millisecond), srv.Endpoints())
	ctx := context.Background()
	st := Store(t, srv.Endpoints())
	if _, err := st.Create(ctx, "/calico/test/a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := st.Get(octx, "/calico/test/a")
	cancel()
	if !errors.Is(err, datastore.ErrUnavailable) {
		t.Fatalf("get from a stopped server: want ErrUnavailable, got %v", err)
	}
	begin = time.Now()
	srv.Restart()
	t.Logf("restarted in %v", time.Since(begin).Round(time.Millisecond))
	// The old client reconnects by itself.
	kv, err := st.Get(ctx, "/calico/test/a")
	if err != nil || string(kv.Value) != "1" {
		t.Fatalf("after restart: %v %q", err, kv.Value)
	}
}

func TestClusterSurvivesOneMember(t *testing.T) {
	begin := time.Now()
	c := StartCluster(t, 3)
	t.Logf("3-member etcd cluster healthy in %v at %v", time.Since(begin).Round(time.Millisecond), c.Endpoints())
	ctx := context.Background()
	st := Store(t, c.Endpoints())
	if _, err := st.Create(ctx, "/calico/test/a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	c.StopMember(0)
	// Two of three members keep the quorum: writes work again once a new
	// leader is elected (a write in flight during the election times out).
	begin = time.Now()
	testutil.Eventually(t, 20*time.Second, func() error {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := st.Update(actx, "/calico/test/a", []byte("2"), 0)
		return err
	})
	t.Logf("writable again %v after killing a member", time.Since(begin).Round(time.Millisecond))
	c.RestartMember(0)
	only0 := Store(t, c.Endpoints()[:1])
	kv, err := only0.Get(ctx, "/calico/test/a")
	if err != nil || string(kv.Value) != "2" {
		t.Fatalf("restarted member did not catch up: %v %q", err, kv.Value)
	}
}

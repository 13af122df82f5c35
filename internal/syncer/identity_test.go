package syncer

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/testutil"
)

// A value whose body names another resource than its key is refused, not
// delivered under either name. The values are written with etcd's own
// client, as someone with write access to one key range would.
func TestSyncerRefusesBodyThatDisagreesWithKey(t *testing.T) {
	eps := etcdtest.Start(t)
	raw, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	write := func(key, val string) {
		t.Helper()
		if _, err := raw.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	np := `{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"%s","namespace":"%s"},"spec":{"selector":"all()","ingress":[{"action":"Allow"}]}}`
	// Write access to tenant-a's keys must not program a policy in tenant-b.
	write(datastore.ResourceKey("networkpolicies", "tenant-a", "p1"), fmt.Sprintf(np, "p1", "tenant-b"))
	// A harmless-looking key must not stand in for another policy's name.
	write(datastore.ResourceKey("globalnetworkpolicies", "", "harmless"),
		`{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"allow-all"},"spec":{"selector":"all()"}}`)
	// Nor may a value of another kind be read as the key's kind.
	write(datastore.ResourceKey("profiles", "", "web"), fmt.Sprintf(np, "web", ""))
	// Agreeing values, and one without a name (the key's is taken), pass.
	write(datastore.ResourceKey("networkpolicies", "tenant-a", "p2"), fmt.Sprintf(np, "p2", "tenant-a"))
	write(datastore.ResourceKey("profiles", "", "anon"), `{"kind":"Profile","apiVersion":"projectcalico.org/v3","metadata":{},"spec":{}}`)

	st, err := datastore.NewEtcd(ctx, datastore.Config{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{state: map[string]Update{}}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { New(st, rec, nil).Run(sctx); close(done) }()
	defer func() { scancel(); <-done }()

	want := func(keys ...string) func() error {
		return rec.check(func(s map[string]Update, in bool) error {
			if !in {
				return fmt.Errorf("not in sync")
			}
			if len(s) != len(keys) {
				return fmt.Errorf("delivered %d objects %v, want %v", len(s), s, keys)
			}
			for _, k := range keys {
				u, ok := s[k]
				if !ok {
					return fmt.Errorf("%s not delivered (have %v)", k, s)
				}
				m := u.Object.(api.Resource).GetObjectMeta()
				if m.Namespace != u.Namespace || m.Name != u.Name {
					return fmt.Errorf("%s delivered as %s/%s", k, m.Namespace, m.Name)
				}
			}
			return nil
		})
	}
	testutil.Eventually(t, 10*time.Second, want("NetworkPolicy/tenant-a/p2", "Profile//anon"))

	// Live updates are judged the same way: a good value turning bad is
	// not delivered under the body's name, and fixing it delivers it.
	write(datastore.ResourceKey("networkpolicies", "tenant-a", "p2"), fmt.Sprintf(np, "p2", "tenant-b"))
	write(datastore.ResourceKey("networkpolicies", "tenant-a", "p1"), fmt.Sprintf(np, "p1", "tenant-a"))
	testutil.Eventually(t, 10*time.Second, want("NetworkPolicy/tenant-a/p1", "NetworkPolicy/tenant-a/p2", "Profile//anon"))
	rec.mu.Lock()
	p2 := rec.state["NetworkPolicy/tenant-a/p2"].Object.(*api.NetworkPolicy)
	rec.mu.Unlock()
	if p2.Namespace != "tenant-a" {
		t.Fatalf("p2 namespace %q", p2.Namespace)
	}
}

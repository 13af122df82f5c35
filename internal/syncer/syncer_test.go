package syncer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/testutil"
)

// recorder collects what the syncer delivers.
type recorder struct {
	mu      sync.Mutex
	state   map[string]Update // kind/ns/name -> last upsert
	inSync  bool
	batches int
}

func (r *recorder) OnUpdates(us []Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
	for _, u := range us {
		k := u.Kind + "/" + u.Namespace + "/" + u.Name
		if u.Object == nil {
			delete(r.state, k)
		} else {
			r.state[k] = u
		}
	}
}

func (r *recorder) OnStatus(inSync bool, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inSync = inSync
}

func (r *recorder) check(f func(map[string]Update, bool) error) func() error {
	return func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		return f(r.state, r.inSync)
	}
}

func put(t *testing.T, s datastore.Store, key, val string) {
	t.Helper()
	if _, err := s.Update(context.Background(), key, []byte(val), 0); err != nil {
		t.Fatal(err)
	}
}

func TestSyncerDeliversTypedUpdatesAndInSync(t *testing.T) {
	s := datastore.NewMemory()
	put(t, s, datastore.ResourceKey("profiles", "", "web"), `{"kind":"Profile","apiVersion":"projectcalico.org/v3","metadata":{"name":"web"},"spec":{"labelsToApply":{"a":"b"}}}`)
	put(t, s, datastore.ResourceKey("workloadendpoints", "default", "w1"), `{"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3","metadata":{"name":"w1","namespace":"default"},"spec":{"node":"h1","ipNetworks":["10.0.0.1/32"]}}`)
	put(t, s, BlockAssignmentPrefix+"ipv4/block/10.0.0.0-26", `{"cidr":"10.0.0.0/26","affinity":"host:h1"}`)
	put(t, s, datastore.ResourceKey("profiles", "", "broken"), `{not json`)

	rec := &recorder{state: map[string]Update{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { New(s, rec, nil).Run(ctx); close(done) }()

	testutil.Eventually(t, 5*time.Second, rec.check(func(st map[string]Update, in bool) error {
		if !in {
			return fmt.Errorf("not in sync")
		}
		if len(st) != 3 {
			return fmt.Errorf("have %d objects, want 3 (bad value skipped): %v", len(st), st)
		}
		w, ok := st["WorkloadEndpoint/default/w1"].Object.(*api.WorkloadEndpoint)
		if !ok || w.Spec.Node != "h1" {
			return fmt.Errorf("endpoint not decoded: %#v", st["WorkloadEndpoint/default/w1"])
		}
		b, ok := st[KindBlock+"//10.0.0.0/26"].Object.(*Block)
		if !ok || b.Node != "h1" {
			return fmt.Errorf("block not decoded: %#v", st)
		}
		return nil
	}))

	// Live delete and upsert.
	if err := s.Delete(context.Background(), datastore.ResourceKey("profiles", "", "web"), 0); err != nil {
		t.Fatal(err)
	}
	put(t, s, datastore.ResourceKey("globalnetworkpolicies", "", "gnp1"), `{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"gnp1"},"spec":{"selector":"all()"}}`)
	testutil.Eventually(t, 5*time.Second, rec.check(func(st map[string]Update, _ bool) error {
		if _, ok := st["Profile//web"]; ok {
			return fmt.Errorf("profile web still present")
		}
		if _, ok := st["GlobalNetworkPolicy//gnp1"]; !ok {
			return fmt.Errorf("gnp1 missing")
		}
		return nil
	}))
	cancel()
	<-done
}

func TestDecodeRejectsForeignKeys(t *testing.T) {
	for _, key := range []string{"/other/x", datastore.ResourcesRoot + "unknownthings/x", datastore.ResourcesRoot + "a/b/c/d"} {
		if _, err := Decode(datastore.KV{Key: key, Value: []byte("{}")}); err == nil {
			t.Errorf("Decode(%q) succeeded, want error", key)
		}
	}
}

// Policies are stored under Calico's tiered key; consumers see the client
// name, on upsert and delete, and a changed client name on the same key
// removes the old one.
func TestSyncerPolicyClientNames(t *testing.T) {
	s := datastore.NewMemory()
	key := datastore.ResourceKey("globalnetworkpolicies", "", "default.deny")
	put(t, s, key, `{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"default.deny","annotations":{"projectcalico.org/metadata":"{\"name\":\"deny\"}"}},"spec":{"selector":"all()"}}`)
	put(t, s, datastore.ResourceKey("ipamconfigurations", "", "default"), `{"kind":"IPAMConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{"strictAffinity":false}}`)
	rec := &recorder{state: map[string]Update{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { New(s, rec, nil).Run(ctx); close(done) }()
	only := func(want string) func(map[string]Update, bool) error {
		return func(st map[string]Update, in bool) error {
			if !in {
				return fmt.Errorf("not in sync")
			}
			if _, ok := st[want]; !ok || len(st) != 1 {
				return fmt.Errorf("have %v, want only %s", st, want)
			}
			return nil
		}
	}
	testutil.Eventually(t, 5*time.Second, rec.check(only("GlobalNetworkPolicy//deny")))
	// calicoctl's form without the annotation (Calico before 3.30) is the
	// same policy; then a client name "default.deny" on the same key.
	put(t, s, key, `{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"default.deny","annotations":{"projectcalico.org/metadata":"{\"name\":\"default.deny\"}"}},"spec":{"selector":"all()"}}`)
	testutil.Eventually(t, 5*time.Second, rec.check(only("GlobalNetworkPolicy//default.deny")))
	if err := s.Delete(context.Background(), key, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, rec.check(func(st map[string]Update, _ bool) error {
		if len(st) != 0 {
			return fmt.Errorf("left %v", st)
		}
		return nil
	}))
	cancel()
	<-done
}

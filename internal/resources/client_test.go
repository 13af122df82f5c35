package resources_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/resources"
)

func pool(name, cidr string) *api.IPPool {
	p := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: name}}
	p.Spec.CIDR = cidr
	return p
}

func gnp(name, selector string) *api.GlobalNetworkPolicy {
	p := &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: name}}
	p.Spec.Selector = selector
	return p
}

func stored(t *testing.T, st datastore.Store, key string) map[string]any {
	t.Helper()
	kv, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(kv.Value, &obj); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return obj
}

func meta(obj map[string]any) map[string]any { m, _ := obj["metadata"].(map[string]any); return m }

// TestCreateSetsMetadataOnce: a new resource gets uid, creationTimestamp
// and resourceVersion (the key's revision, never stored); an update keeps
// the uid and timestamp whatever the caller sends; creating again is
// ErrExists.
func TestCreateSetsMetadataOnce(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	p := pool("p1", "10.80.0.0/16")
	p.UID = "made-up"
	r, err := c.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	m := r.GetObjectMeta()
	if m.UID == "" || m.UID == "made-up" || m.CreationTimestamp == "" || m.ResourceVersion == "" {
		t.Fatalf("metadata not set on create: %+v", m)
	}
	key := datastore.ResourceKey("ippools", "", "p1")
	kv, _ := st.Get(ctx, key)
	if m.ResourceVersion != strconv.FormatInt(kv.Revision, 10) {
		t.Errorf("resourceVersion %s, key revision %d", m.ResourceVersion, kv.Revision)
	}
	if _, ok := meta(stored(t, st, key))["resourceVersion"]; ok {
		t.Error("resourceVersion was stored")
	}
	uid, created := m.UID, m.CreationTimestamp

	upd := pool("p1", "10.80.0.0/16")
	upd.UID, upd.CreationTimestamp = "other", "2000-01-01T00:00:00Z"
	upd.Spec.NATOutgoing = true
	if _, err := c.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, api.KindIPPool, "", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if gm := got.GetObjectMeta(); gm.UID != uid || gm.CreationTimestamp != created {
		t.Errorf("update changed identity: uid %s->%s, created %s->%s", uid, gm.UID, created, gm.CreationTimestamp)
	}
	if !got.(*api.IPPool).Spec.NATOutgoing {
		t.Error("update not stored")
	}
	if _, err := c.Create(ctx, pool("p1", "10.80.0.0/16")); !errors.Is(err, datastore.ErrExists) {
		t.Errorf("create of an existing pool: %v, want ErrExists", err)
	}
	if _, err := c.Update(ctx, pool("nope", "10.90.0.0/16")); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("update of a missing pool: %v, want ErrNotFound", err)
	}
}

// TestPoolOverlapRefused: every writer, not just the CLI, is refused an
// IPPool that overlaps another, and nothing is written.
func TestPoolOverlapRefused(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	if _, err := c.Create(ctx, pool("a", "10.81.0.0/16")); err != nil {
		t.Fatal(err)
	}
	for _, write := range []func(context.Context, api.Resource) (api.Resource, error){c.Create, c.Apply} {
		_, err := write(ctx, pool("b", "10.81.4.0/24"))
		if err == nil || !strings.Contains(err.Error(), `overlaps ippool "a"`) {
			t.Fatalf("overlapping pool: %v", err)
		}
	}
	if _, err := st.Get(ctx, datastore.ResourceKey("ippools", "", "b")); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("refused pool was stored: %v", err)
	}
	// A pool may be updated in place; its CIDR may not change.
	a := pool("a", "10.81.0.0/16")
	a.Spec.Disabled = true
	if _, err := c.Apply(ctx, a); err != nil {
		t.Errorf("update of a pool against itself: %v", err)
	}
	if _, err := c.Apply(ctx, pool("a", "10.82.0.0/16")); err == nil || !strings.Contains(err.Error(), "spec.cidr") {
		t.Errorf("CIDR change: %v", err)
	}
}

// TestInvalidRefused: validation errors name the field; nothing is written.
func TestInvalidRefused(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	_, err := c.Create(ctx, gnp("bad", "role ==== 'x'"))
	if err == nil || !strings.Contains(err.Error(), "spec.selector") || !strings.Contains(err.Error(), "GlobalNetworkPolicy bad") {
		t.Fatalf("invalid selector: %v", err)
	}
	kvs, _, _ := st.List(ctx, "/calico/")
	if len(kvs) != 0 {
		t.Errorf("stored after a refused write: %v", kvs)
	}
}

// TestPolicyKeysAndNames: a policy is stored under Calico's tiered name and
// found by either name.
func TestPolicyKeysAndNames(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	if _, err := c.Create(ctx, gnp("allow-web", "all()")); err != nil {
		t.Fatal(err)
	}
	obj := stored(t, st, datastore.ResourceKey("globalnetworkpolicies", "", "default.allow-web"))
	if meta(obj)["name"] != "default.allow-web" {
		t.Errorf("stored name %v", meta(obj)["name"])
	}
	for _, name := range []string{"allow-web", "default.allow-web"} {
		r, err := c.Get(ctx, "gnp", "", name)
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		if r.GetObjectMeta().Name != "allow-web" {
			t.Errorf("get %s: name %s", name, r.GetObjectMeta().Name)
		}
	}
	if err := c.Delete(ctx, api.KindGlobalNetworkPolicy, "", "allow-web", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, api.KindGlobalNetworkPolicy, "", "allow-web"); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

// TestIdentityFromKey: a stored value naming another resource than its key
// is refused on read.
func TestIdentityFromKey(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	val := `{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"other"},"spec":{"cidr":"10.83.0.0/16"}}`
	if _, err := st.Create(ctx, datastore.ResourceKey("ippools", "", "mine"), []byte(val)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, api.KindIPPool, "", "mine"); err == nil || !strings.Contains(err.Error(), "comes from its key") {
		t.Errorf("value named for another key: %v", err)
	}
	// List reports it and still returns the good ones.
	if _, err := c.Create(ctx, pool("good", "10.84.0.0/16")); err != nil {
		t.Fatal(err)
	}
	items, _, err := c.List(ctx, api.KindIPPool, "")
	if !resources.Undecodable(err) || len(items) != 1 || items[0].GetObjectMeta().Name != "good" {
		t.Errorf("list: %d items, err %v", len(items), err)
	}
}

// TestModifyKeepsUnknownAndRetries: Modify keeps fields this project does
// not know, and retries when another writer got in between.
func TestModifyKeepsUnknownAndRetries(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	key := datastore.ResourceKey("nodes", "", "n1")
	val := `{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"n1","uid":"u-1","creationTimestamp":"2020-01-01T00:00:00Z"},"spec":{"futureField":{"x":1}},"status":{}}`
	if _, err := st.Create(ctx, key, []byte(val)); err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err := c.Modify(ctx, api.KindNode, "", "n1", func(r api.Resource) (bool, error) {
		calls++
		if calls == 1 {
			// Another writer changes the node meanwhile.
			kv, _ := st.Get(ctx, key)
			if _, err := st.Update(ctx, key, []byte(strings.Replace(string(kv.Value), `"status":{}`, `"status":{"podCIDRs":[]}`, 1)), kv.Revision); err != nil {
				t.Fatal(err)
			}
		}
		r.GetObjectMeta().Labels = map[string]string{"a": "b"}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("change called %d times, want 2 (one conflict)", calls)
	}
	obj := stored(t, st, key)
	spec, _ := obj["spec"].(map[string]any)
	if _, ok := spec["futureField"]; !ok {
		t.Errorf("unknown field dropped: %v", obj)
	}
	if m := meta(obj); m["uid"] != "u-1" || m["creationTimestamp"] != "2020-01-01T00:00:00Z" {
		t.Errorf("identity changed: %v", m)
	}
	if l, _ := meta(obj)["labels"].(map[string]any); l["a"] != "b" {
		t.Errorf("change not written: %v", obj)
	}
}

// TestWriteAllOrNothing: one bad document and nothing is written; a stale
// resourceVersion is a conflict.
func TestWriteAllOrNothing(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	docs := []api.Document{
		{Resource: pool("w1", "10.85.0.0/16"), Document: 1},
		{Resource: pool("w2", "10.85.1.0/24"), Document: 2},
	}
	_, err := c.Write(ctx, docs, resources.ModeApply, false)
	if err == nil || !strings.Contains(err.Error(), "nothing was written") || !strings.Contains(err.Error(), "document 2") {
		t.Fatalf("overlap within a manifest: %v", err)
	}
	kvs, _, _ := st.List(ctx, datastore.ResourcePrefix("ippools"))
	if len(kvs) != 0 {
		t.Fatalf("partial write: %d pools", len(kvs))
	}
	res, err := c.Write(ctx, docs[:1], resources.ModeCreate, false)
	if err != nil || res.Handled != 1 {
		t.Fatalf("write: %v %+v", err, res)
	}
	stale := pool("w1", "10.85.0.0/16")
	stale.ResourceVersion = "1"
	if _, err := c.Write(ctx, []api.Document{{Resource: stale, Document: 1}}, resources.ModeApply, false); !errors.Is(err, datastore.ErrConflict) {
		t.Errorf("stale resourceVersion: %v", err)
	}
	res, err = c.DeleteAll(ctx, []api.Document{{Resource: pool("w1", ""), Document: 1}}, false, false)
	if err != nil || res.Handled != 1 {
		t.Fatalf("delete: %v %+v", err, res)
	}
	if _, err := c.DeleteAll(ctx, []api.Document{{Resource: pool("w1", ""), Document: 1}}, false, true); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("delete of a missing pool: %v", err)
	}
}

// TestBuiltinProfile: Calico's allow-all profile is read but never stored,
// changed or deleted.
func TestBuiltinProfile(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	r, err := c.Get(ctx, "profile", "", api.DefaultAllowProfile)
	if err != nil || r.GetObjectMeta().Name != api.DefaultAllowProfile {
		t.Fatalf("get built-in profile: %v", err)
	}
	items, _, err := c.List(ctx, api.KindProfile, "")
	if err != nil || len(items) != 1 {
		t.Errorf("list profiles: %d, %v", len(items), err)
	}
	if err := c.Delete(ctx, api.KindProfile, "", api.DefaultAllowProfile, ""); err == nil {
		t.Error("built-in profile deleted")
	}
	changed := api.NewDefaultAllowProfile()
	changed.Spec.Egress = nil
	if _, err := c.Apply(ctx, changed); err == nil {
		t.Error("built-in profile changed")
	}
}

// TestEtcd runs create, conditional update and delete against a real etcd:
// resourceVersion is etcd's mod revision.
func TestEtcd(t *testing.T) {
	ctx := context.Background()
	st := etcdtest.Store(t, etcdtest.Start(t))
	c := resources.New(st)
	r, err := c.Create(ctx, gnp("h18-etcd", "all()"))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := st.Get(ctx, datastore.ResourceKey("globalnetworkpolicies", "", "default.h18-etcd"))
	if err != nil {
		t.Fatal(err)
	}
	if r.GetObjectMeta().ResourceVersion != strconv.FormatInt(kv.Revision, 10) {
		t.Errorf("resourceVersion %s, etcd mod revision %d", r.GetObjectMeta().ResourceVersion, kv.Revision)
	}
	upd := gnp("h18-etcd", "role == 'x'")
	upd.ResourceVersion = r.GetObjectMeta().ResourceVersion
	if _, err := c.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	again := gnp("h18-etcd", "role == 'y'")
	again.ResourceVersion = r.GetObjectMeta().ResourceVersion // now stale
	if _, err := c.Update(ctx, again); !errors.Is(err, datastore.ErrConflict) {
		t.Errorf("stale update: %v, want ErrConflict", err)
	}
	got, err := c.Get(ctx, api.KindGlobalNetworkPolicy, "", "h18-etcd")
	if err != nil || got.(*api.GlobalNetworkPolicy).Spec.Selector != "role == 'x'" {
		t.Fatalf("get: %v %v", got, err)
	}
	if err := c.Delete(ctx, api.KindGlobalNetworkPolicy, "", "h18-etcd", r.GetObjectMeta().ResourceVersion); !errors.Is(err, datastore.ErrConflict) {
		t.Errorf("delete at a stale resourceVersion: %v, want ErrConflict", err)
	}
	if err := c.Delete(ctx, api.KindGlobalNetworkPolicy, "", "h18-etcd", got.GetObjectMeta().ResourceVersion); err != nil {
		t.Fatal(err)
	}
}

// TestTierRules: a policy is created only in a tier that exists (or is
// written with it); a tier with policies, or a built-in one, is not
// deleted.
func TestTierRules(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	c := resources.New(st)
	inTier := func(name, tier string) *api.GlobalNetworkPolicy {
		p := gnp(name, "all()")
		p.Spec.Tier = tier
		return p
	}
	order := 100.0
	tier := &api.Tier{ObjectMeta: api.ObjectMeta{Name: "h18-sec"}, Spec: api.TierSpec{Order: &order}}

	_, err := c.Create(ctx, inTier("h18-sec.p1", "h18-sec"))
	if err == nil || !strings.Contains(err.Error(), `spec.tier: tier "h18-sec" does not exist`) {
		t.Fatalf("policy in a missing tier: %v", err)
	}
	// The default tier needs no resource.
	if _, err := c.Create(ctx, gnp("p0", "all()")); err != nil {
		t.Fatalf("policy in the default tier: %v", err)
	}
	// Tier and policy in one write.
	docs := []api.Document{{Resource: inTier("h18-sec.p1", "h18-sec"), Document: 1}, {Resource: tier, Document: 2}}
	if _, err := c.Write(ctx, docs, resources.ModeApply, false); err != nil {
		t.Fatalf("tier and policy together: %v", err)
	}
	err = c.Delete(ctx, api.KindTier, "", "h18-sec", "")
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("delete of a tier with a policy: %v", err)
	}
	if err := c.Delete(ctx, api.KindTier, "", api.DefaultTier, ""); err == nil || !strings.Contains(err.Error(), "built in") {
		t.Errorf("delete of the default tier: %v", err)
	}
	// Deleting the tier with its policies in one transaction is fine.
	del := []api.Document{{Resource: inTier("h18-sec.p1", "h18-sec"), Document: 1}, {Resource: &api.Tier{ObjectMeta: api.ObjectMeta{Name: "h18-sec"}}, Document: 2}}
	if _, err := c.DeleteAll(ctx, del, false, false); err != nil {
		t.Fatalf("delete of a tier with its policies: %v", err)
	}
}

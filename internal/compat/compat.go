package compat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// Keys of the objects Initialize creates.
var (
	ClusterInformationKey = datastore.ResourceKey("clusterinformations", "", "default")
	KubeControllersKey    = datastore.ResourceKey("kubecontrollersconfigurations", "", "default")
)

// tier is one of Calico's built-in tiers (libcalico-go clientv3 client.go).
type tier struct {
	name   string
	order  float64
	action string
}

var tiers = []tier{
	{"default", 1000000, "Deny"},
	{"adminnetworkpolicy", 1000, "Pass"},
	{"baselineadminnetworkpolicy", 10000000, "Pass"},
}

// TierKey is the key of a tier.
func TierKey(name string) string { return datastore.ResourceKey("tiers", "", name) }

// Initialize creates Calico's ClusterInformation "default", its three
// built-in tiers and a KubeControllersConfiguration "default" when they are
// missing, and fills in a ClusterInformation's clusterGUID and
// datastoreReady when missing, as calicoctl does on its first write.
func Initialize(ctx context.Context, st datastore.Store) error {
	if err := ensureClusterInformation(ctx, st); err != nil {
		return fmt.Errorf("initialise cluster information: %w", err)
	}
	for _, t := range tiers {
		v := object("Tier", t.name, map[string]any{"order": t.order, "defaultAction": t.action})
		if err := create(ctx, st, TierKey(t.name), v); err != nil {
			return fmt.Errorf("initialise tier %s: %w", t.name, err)
		}
	}
	// What calico/kube-controllers writes in etcd mode, without any
	// controller: none runs here.
	kcc := object("KubeControllersConfiguration", "default", map[string]any{
		"logSeverityScreen": "Info", "healthChecks": "Enabled", "etcdV3CompactionPeriod": "10m0s", "controllers": map[string]any{},
	})
	if err := create(ctx, st, KubeControllersKey, kcc); err != nil {
		return fmt.Errorf("initialise kube-controllers configuration: %w", err)
	}
	return nil
}

// object is a stored value in the shape calicoctl writes it. These few
// values (ClusterInformation has no type here) are plain JSON objects, not
// written through resources.Client; their uid comes from resources.NewUID.
func object(kind, name string, spec map[string]any) map[string]any {
	return map[string]any{
		"kind": kind, "apiVersion": api.APIVersion,
		"metadata": map[string]any{"name": name, "uid": resources.NewUID(), "creationTimestamp": time.Now().UTC().Format(time.RFC3339)},
		"spec":     spec,
	}
}

func create(ctx context.Context, st datastore.Store, key string, v map[string]any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := st.Get(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, datastore.ErrNotFound) {
		return err
	}
	if _, err := st.Create(ctx, key, b); err != nil && !errors.Is(err, datastore.ErrExists) {
		return err
	}
	return nil
}

func ensureClusterInformation(ctx context.Context, st datastore.Store) error {
	for attempt := 0; attempt < 10; attempt++ {
		kv, err := st.Get(ctx, ClusterInformationKey)
		if errors.Is(err, datastore.ErrNotFound) {
			v := object("ClusterInformation", "default", map[string]any{"clusterGUID": newGUID(), "datastoreReady": true})
			b, _ := json.Marshal(v)
			if _, err := st.Create(ctx, ClusterInformationKey, b); errors.Is(err, datastore.ErrExists) {
				continue
			} else {
				return err
			}
		}
		if err != nil {
			return err
		}
		var obj map[string]any
		if err := json.Unmarshal(kv.Value, &obj); err != nil {
			return fmt.Errorf("stored cluster information is not JSON: %w", err)
		}
		spec, _ := obj["spec"].(map[string]any)
		if spec == nil {
			spec = map[string]any{}
			obj["spec"] = spec
		}
		changed := false
		if g, _ := spec["clusterGUID"].(string); g == "" {
			spec["clusterGUID"] = newGUID()
			changed = true
		}
		if _, ok := spec["datastoreReady"]; !ok {
			spec["datastoreReady"] = true
			changed = true
		}
		if !changed {
			return nil
		}
		b, _ := json.Marshal(obj)
		if _, err := st.Update(ctx, ClusterInformationKey, b, kv.Revision); errors.Is(err, datastore.ErrConflict) {
			continue
		} else {
			return err
		}
	}
	return errors.New("too many concurrent updates")
}

// MigratePolicyKeys moves policies stored under a bare name (no '.') to
// Calico's tiered key. It returns how many it moved. A policy whose new key
// already holds another policy is left where it is, with a warning.
func MigratePolicyKeys(ctx context.Context, st datastore.Store, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.Default()
	}
	moved := 0
	for _, kind := range []string{api.KindGlobalNetworkPolicy, api.KindNetworkPolicy} {
		ki, _ := api.LookupKind(kind)
		kvs, _, err := st.List(ctx, datastore.ResourcePrefix(ki.Plural))
		if err != nil {
			return moved, fmt.Errorf("list %s: %w", ki.Plural, err)
		}
		for _, kv := range kvs {
			_, ns, name, ok := datastore.ParseResourceKey(kv.Key)
			if !ok || strings.Contains(name, ".") {
				continue
			}
			r, err := api.DecodeStored(kind, name, kv.Value, 0)
			if err != nil {
				log.Warn("cannot migrate an unreadable policy to Calico's key", "key", kv.Key, "err", err)
				continue
			}
			// The client name is the bare name the old key had.
			r.GetObjectMeta().Name = name
			undoDisplayDefaults(r, kv.Value)
			value, err := api.EncodeStored(r, kv.Value)
			if err != nil {
				return moved, err
			}
			newKey := datastore.ResourceKey(ki.Plural, ns, api.StoredName(kind, name))
			_, err = st.Txn(ctx, []datastore.Op{
				{Type: datastore.OpCreate, Key: newKey, Value: value},
				{Type: datastore.OpDelete, Key: kv.Key, Revision: kv.Revision},
			})
			switch {
			case err == nil:
				moved++
				log.Info("moved policy to Calico's key", "from", kv.Key, "to", newKey)
			case errors.Is(err, datastore.ErrExists):
				log.Warn("policy stored under both the old and Calico's key: keeping both; delete one of them", "old", kv.Key, "new", newKey)
			case errors.Is(err, datastore.ErrConflict):
				// Changed or moved meanwhile: whoever did it, the next run sees the result.
			default:
				return moved, fmt.Errorf("move %s: %w", kv.Key, err)
			}
		}
	}
	return moved, nil
}

// undoDisplayDefaults removes what DecodeStored adds for display (spec.tier
// and the tier label) when the stored value did not have them, so that a
// migrated policy is stored as Calico would have stored it.
func undoDisplayDefaults(r api.Resource, stored []byte) {
	var raw struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Tier string `json:"tier"`
		} `json:"spec"`
	}
	_ = json.Unmarshal(stored, &raw)
	m := r.GetObjectMeta()
	if _, ok := raw.Metadata.Labels[api.LabelTier]; !ok {
		delete(m.Labels, api.LabelTier)
		if len(m.Labels) == 0 {
			m.Labels = nil
		}
	}
	if raw.Spec.Tier == "" {
		switch v := r.(type) {
		case *api.NetworkPolicy:
			v.Spec.Tier = ""
		case *api.GlobalNetworkPolicy:
			v.Spec.Tier = ""
		}
	}
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

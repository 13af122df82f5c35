package resources

import (
	"context"
	"errors"
	"fmt"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
)

// Tier rules, as Calico's client keeps them: a policy is created only in a
// tier that exists (the default tier always does: Calico creates it on its
// first write, compat.Initialize here); a tier is deleted only when no
// policy is in it, and the built-in tiers never.

// protectedTiers cannot be deleted.
var protectedTiers = map[string]bool{api.DefaultTier: true, api.AdminTier: true, api.BaselineAdminTier: true}

// tieredKinds are the kinds whose resources sit in a tier.
var tieredKinds = []string{api.KindNetworkPolicy, api.KindGlobalNetworkPolicy, api.KindStagedNetworkPolicy, api.KindStagedGlobalNetworkPolicy}

// tierOf is the tier of a tiered policy.
func tierOf(r api.Resource) string {
	if s := api.PolicySpecOf(r); s != nil && s.Tier != "" {
		return s.Tier
	}
	return api.DefaultTier
}

// tierChecker answers whether tiers exist, reading each at most once.
type tierChecker struct {
	c        *Client
	inBatch  map[string]bool // tiers written by the same write
	existing map[string]bool
}

func newTierChecker(c *Client, docs []api.Document) *tierChecker {
	t := &tierChecker{c: c, inBatch: map[string]bool{}, existing: map[string]bool{}}
	for _, d := range docs {
		if d.Resource.Kind() == api.KindTier {
			t.inBatch[d.Resource.GetObjectMeta().Name] = true
		}
	}
	return t
}

// check returns the refusal of creating r, a tiered policy, when its tier
// does not exist.
func (t *tierChecker) check(ctx context.Context, r api.Resource) (refusal, err error) {
	tier := tierOf(r)
	if tier == api.DefaultTier || t.inBatch[tier] {
		return nil, nil
	}
	ok, known := t.existing[tier]
	if !known {
		_, err := t.c.st.Get(ctx, datastore.ResourceKey("tiers", "", tier))
		switch {
		case err == nil:
			ok = true
		case errors.Is(err, datastore.ErrNotFound):
		default:
			return nil, fmt.Errorf("read tier %s: %w", tier, err)
		}
		t.existing[tier] = ok
	}
	if !ok {
		return fmt.Errorf("spec.tier: tier %q does not exist: create the Tier first (or in the same manifest)", tier), nil
	}
	return nil, nil
}

// checkTierDeletes refuses deleting a built-in tier or one that still has
// policies (other than those deleted by the same transaction). deleting
// holds the keys the transaction deletes.
func (c *Client) checkTierDeletes(ctx context.Context, tiers []string, deleting map[string]bool) (map[string]error, error) {
	out := map[string]error{}
	var need []string
	for _, name := range tiers {
		if protectedTiers[name] {
			out[name] = fmt.Errorf("tier %s is built in and cannot be deleted", name)
			continue
		}
		need = append(need, name)
	}
	if len(need) == 0 {
		return out, nil
	}
	for _, kind := range tieredKinds {
		ki, err := api.LookupKind(kind)
		if err != nil {
			continue
		}
		kvs, _, err := c.st.List(ctx, datastore.ResourcePrefix(ki.Plural))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", ki.Plural, err)
		}
		for _, kv := range kvs {
			if deleting[kv.Key] {
				continue
			}
			r, err := Decode(kind, kv)
			if err != nil {
				continue
			}
			for _, name := range need {
				if _, done := out[name]; !done && tierOf(r) == name {
					out[name] = fmt.Errorf("tier %s is not empty (%s is in it): delete or move its policies first", name, api.Ident(r))
				}
			}
		}
	}
	return out, nil
}

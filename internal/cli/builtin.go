package cli

import (
	"context"

	"encoding/json"
	"fmt"
	"github.com/calico-docker/calico/internal/compat"
	"github.com/calico-docker/calico/internal/datastore"

	"github.com/calico-docker/calico/internal/api"
)

// Calico's datastore always has the profile projectcalico-default-allow
// (allow all, both ways) without storing it: calicoctl lists it, and a
// `get -o yaml` of profiles holds it. Applying it unchanged is accepted and
// writes nothing; changing or deleting it is refused.

func defaultAllowProfile() api.Resource { return api.NewDefaultAllowProfile() }

func builtinProfile(r api.Resource) bool {
	return r.Kind() == api.KindProfile && r.GetObjectMeta().Name == api.DefaultAllowProfile
}

func checkBuiltinProfile(r api.Resource) error {
	want, _ := json.Marshal(api.NewDefaultAllowProfile().Spec)
	got, _ := json.Marshal(r.(*api.Profile).Spec)
	if string(want) != string(got) {
		return fmt.Errorf("profile %s is Calico's built-in allow-all profile and cannot be changed: give your profile another name", api.DefaultAllowProfile)
	}
	return nil
}

// openStoreForWrite opens the datastore for a command that writes and does
// what calicoctl does before its first write (cluster information, built-in
// tiers); it also moves policies an older version stored under bare names to
// Calico's keys.
func openStoreForWrite(ctx context.Context, cfg *datastore.Config) (datastore.Store, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := compat.Initialize(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	if _, err := compat.MigratePolicyKeys(ctx, st, nil); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

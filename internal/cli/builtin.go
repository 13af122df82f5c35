package cli

import (
	"context"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/compat"
	"github.com/calico-docker/calico/internal/datastore"
)

// Calico's datastore always has the profile projectcalico-default-allow
// (allow all, both ways) without storing it: calicoctl lists it, and a
// `get -o yaml` of profiles holds it. Applying it unchanged is accepted and
// writes nothing; changing or deleting it is refused.

// builtinProfile reports whether r is that profile (resources.Client
// serves it, refuses changes and never stores it).
func builtinProfile(r api.Resource) bool {
	return r.Kind() == api.KindProfile && r.GetObjectMeta().Name == api.DefaultAllowProfile
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

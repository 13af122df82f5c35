package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// TestDefaultPoolOverlapRefused: the default pools the agent creates go
// through the resource client, so an IPPool overlap is refused for them as
// for the CLI. CALICO_IPV6POOL_CIDR set by mistake to an IPv4 range inside
// an existing pool would otherwise be stored.
func TestDefaultPoolOverlapRefused(t *testing.T) {
	ctx := context.Background()
	st := datastore.NewMemory()
	p := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "h18-existing"}}
	p.Spec.CIDR = "10.86.0.0/16"
	if _, err := resources.New(st).Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NO_DEFAULT_POOLS", "")
	t.Setenv("CALICO_IPV6POOL_CIDR", "10.86.1.0/24")
	a := &Agent{store: st, log: slog.Default(), ipv6: netip.MustParsePrefix("fd86::1/64")}
	err := a.ensureDefaultPools(ctx)
	if err == nil || !strings.Contains(err.Error(), `overlaps ippool "h18-existing"`) {
		t.Fatalf("overlapping default pool: %v", err)
	}
	if _, err := st.Get(ctx, datastore.ResourceKey("ippools", "", "default-ipv6-ippool")); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("overlapping default pool stored: %v", err)
	}

	// Without the overlap the pool is created, with its metadata.
	t.Setenv("CALICO_IPV6POOL_CIDR", "fd86:1::/48")
	if err := a.ensureDefaultPools(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := resources.New(st).Get(ctx, api.KindIPPool, "", "default-ipv6-ippool")
	if err != nil {
		t.Fatal(err)
	}
	if m := r.GetObjectMeta(); m.UID == "" || m.CreationTimestamp == "" {
		t.Errorf("default pool without uid or creationTimestamp: %+v", m)
	}
}

package agent

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/calico-docker/calico/internal/api"
)

// The VXLAN tunnel address comes only from enabled VXLAN pools of the
// family that allow Tunnel use.
func TestVTEPPools(t *testing.T) {
	pool := func(cidr, vxlan string, disabled bool, uses ...string) *api.IPPool {
		return &api.IPPool{Spec: api.IPPoolSpec{CIDR: cidr, VXLANMode: vxlan, Disabled: disabled, AllowedUses: uses}}
	}
	pools := map[string]*api.IPPool{
		"default":  pool("10.1.0.0/16", api.EncapAlways, false),
		"both":     pool("10.2.0.0/16", "CrossSubnet", false, api.AllowedUseWorkload, api.AllowedUseTunnel),
		"tunnel":   pool("10.3.0.0/16", api.EncapAlways, false, api.AllowedUseTunnel),
		"workload": pool("10.4.0.0/16", api.EncapAlways, false, api.AllowedUseWorkload),
		"lb":       pool("10.5.0.0/16", "", false, api.AllowedUseLoadBalancer),
		"off":      pool("10.6.0.0/16", api.EncapAlways, true),
		"never":    pool("10.7.0.0/16", api.EncapNever, false),
		"v6":       pool("fd00::/48", api.EncapAlways, false),
	}
	got := vtepPools(pools, false)
	slices.SortFunc(got, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("10.3.0.0/16")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IPv4: %v, want %v", got, want)
	}
	if got := vtepPools(pools, true); !reflect.DeepEqual(got, []netip.Prefix{netip.MustParsePrefix("fd00::/48")}) {
		t.Errorf("IPv6: %v", got)
	}
}

package datastore

import "testing"

func TestResourceKeys(t *testing.T) {
	for _, tc := range []struct {
		plural, ns, name, key string
	}{
		{"ippools", "", "default-ipv4-ippool", "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool"},
		{"networkpolicies", "default", "allow-db", "/calico/resources/v3/projectcalico.org/networkpolicies/default/allow-db"},
		{"workloadendpoints", "ns1", "host1-docker-abc-eth0", "/calico/resources/v3/projectcalico.org/workloadendpoints/ns1/host1-docker-abc-eth0"},
	} {
		if got := ResourceKey(tc.plural, tc.ns, tc.name); got != tc.key {
			t.Errorf("ResourceKey(%q, %q, %q) = %q, want %q", tc.plural, tc.ns, tc.name, got, tc.key)
		}
		plural, ns, name, ok := ParseResourceKey(tc.key)
		if !ok || plural != tc.plural || ns != tc.ns || name != tc.name {
			t.Errorf("ParseResourceKey(%q) = %q %q %q %v", tc.key, plural, ns, name, ok)
		}
	}
	if got, want := ResourcePrefix("profiles"), "/calico/resources/v3/projectcalico.org/profiles/"; got != want {
		t.Errorf("ResourcePrefix = %q, want %q", got, want)
	}
	for _, bad := range []string{
		"/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26",
		"/calico/resources/v3/projectcalico.org/ippools",
		"/calico/resources/v3/projectcalico.org/ippools/",
		"/calico/resources/v3/projectcalico.org/a/b/c/d",
		"/calico/resources/v3/projectcalico.org/a//c",
	} {
		if _, _, _, ok := ParseResourceKey(bad); ok {
			t.Errorf("ParseResourceKey(%q) accepted", bad)
		}
	}
}

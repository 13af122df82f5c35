package bgp

import (
	"reflect"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
)

func i32(v int32) *int32 { return &v }

// A BGPPeer's password secret, GTSM and filters reach its sessions, per
// address family and in the order of spec.filters; a missing filter is
// skipped and reported.
func TestDesiredPeersSecurityAndFilters(t *testing.T) {
	ttl := uint8(2)
	filters := []api.BGPFilter{
		{ObjectMeta: api.ObjectMeta{Name: "f1"}, Spec: api.BGPFilterSpec{
			ImportV4: []api.BGPFilterRule{
				{CIDR: "10.0.0.0/8", MatchOperator: "In", PrefixLength: &api.BGPFilterPrefixLength{Min: i32(4), Max: i32(24)}, Action: "Reject"},
				{Action: "Accept"},
			},
			ExportV4: []api.BGPFilterRule{{CIDR: "10.65.0.0/26", MatchOperator: "NotEqual", Source: "RemotePeers", Action: "Reject"}},
			ImportV6: []api.BGPFilterRule{{CIDR: "fd00::/8", MatchOperator: "NotIn", Action: "Reject"}},
		}},
		{ObjectMeta: api.ObjectMeta{Name: "f2"}, Spec: api.BGPFilterSpec{
			ImportV4: []api.BGPFilterRule{{CIDR: "192.168.0.0/16", MatchOperator: "Equal", Action: "Accept"}},
		}},
	}
	in := PeerInput{
		NodeName: "a",
		Nodes:    []api.Node{node("a", "10.0.0.1/24", "fd00::1/64")},
		Peers: []api.BGPPeer{
			bgpPeer("v4", api.BGPPeerSpec{PeerIP: "10.0.0.9", ASNumber: 65001, TTLSecurity: &ttl, Filters: []string{"f1", "missing", "f2"},
				Password: &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "s", Key: "k"}}}),
			bgpPeer("v6", api.BGPPeerSpec{PeerIP: "fd00::9", ASNumber: 65001, Filters: []string{"f1"}}),
		},
		Filters: filters,
	}
	peers, err := DesiredPeers(in)
	if err == nil || !strings.Contains(err.Error(), "BGPPeer v4: spec.filters: BGPFilter [missing] not found") {
		t.Errorf("error %v: want the missing filter reported", err)
	}
	if len(peers) != 2 {
		t.Fatalf("peers %+v", peers)
	}
	v4, v6 := peers[0], peers[1]
	if v4.PasswordSecret != (SecretRef{Name: "s", Key: "k"}) || v4.TTLSecurity != 2 || v4.Password != "" {
		t.Errorf("v4 peer security: %+v", v4)
	}
	wantImp := []FilterRule{
		{CIDR: pfx("10.0.0.0/8"), Operator: "In", MinLen: 8, MaxLen: 24},
		{Accept: true},
		{CIDR: pfx("192.168.0.0/16"), Operator: "Equal", MinLen: 16, MaxLen: 32, Accept: true},
	}
	if !reflect.DeepEqual(v4.Import, wantImp) {
		t.Errorf("v4 import rules:\n got %+v\nwant %+v", v4.Import, wantImp)
	}
	wantExp := []FilterRule{{CIDR: pfx("10.65.0.0/26"), Operator: "NotEqual", MinLen: 26, MaxLen: 32, RemotePeers: true}}
	if !reflect.DeepEqual(v4.Export, wantExp) {
		t.Errorf("v4 export rules: %+v", v4.Export)
	}
	wantImp6 := []FilterRule{{CIDR: pfx("fd00::/8"), Operator: "NotIn", MinLen: 8, MaxLen: 128}}
	if !reflect.DeepEqual(v6.Import, wantImp6) || len(v6.Export) != 0 || v6.TTLSecurity != 0 {
		t.Errorf("v6 peer: %+v", v6)
	}

	// The policies: the rules become statements in order, after the
	// import-side removal of our community for external peers.
	req := buildPolicies(peers)
	var names []string
	for _, p := range req.Policies {
		for _, s := range p.Statements {
			names = append(names, s.Name)
		}
	}
	want := []string{"calico-import-external", "calico-import-0-0", "calico-import-0-1", "calico-import-0-2",
		"calico-import-1-0", "calico-export-0-0", "calico-export-0-0-ebgp", "calico-export-exportable", "calico-export-not-exportable"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("statements %v\nwant %v", names, want)
	}
}

// A rule with interface fails closed, since the speaker cannot see a
// route's interface: an Accept rule is dropped, a Reject rule keeps its
// other conditions on every interface; "*" matches every interface, so it
// changes nothing.
func TestFilterInterfaceFailsClosed(t *testing.T) {
	f := map[string]*api.BGPFilter{"f": {ObjectMeta: api.ObjectMeta{Name: "f"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{
			{CIDR: "10.1.0.0/16", MatchOperator: "In", Interface: "eth*", Action: "Accept"},
			{CIDR: "10.2.0.0/16", MatchOperator: "In", Interface: "eth1", Action: "Reject"},
			{Interface: "*", Action: "Accept"},
		},
		ExportV4: []api.BGPFilterRule{{Interface: "cali*", Action: "Reject"}},
	}}}
	imp, exp, err := peerFilters(f, []string{"f"}, false)
	if err != nil {
		t.Fatal(err)
	}
	wantImp := []FilterRule{
		{CIDR: pfx("10.2.0.0/16"), Operator: "In", MinLen: 16, MaxLen: 32},
		{Accept: true},
	}
	if !reflect.DeepEqual(imp, wantImp) {
		t.Errorf("import rules:\n got %+v\nwant %+v", imp, wantImp)
	}
	// A Reject with only an interface rejects every route.
	if wantExp := []FilterRule{{}}; !reflect.DeepEqual(exp, wantExp) {
		t.Errorf("export rules:\n got %+v\nwant %+v", exp, wantExp)
	}
}

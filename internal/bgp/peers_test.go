package bgp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
)

// node builds a Node with an IPv4 (and optional IPv6) BGP address.
func node(name, v4, v6 string, opts ...func(*api.Node)) api.Node {
	n := api.Node{ObjectMeta: api.ObjectMeta{Name: name}}
	if v4 != "" || v6 != "" {
		n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: v4, IPv6Address: v6}
	}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func labels(kv ...string) func(*api.Node) {
	return func(n *api.Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func nodeASN(a uint32) func(*api.Node) {
	return func(n *api.Node) { v := api.ASNumber(a); n.Spec.BGP.ASNumber = &v }
}

func rrCluster(id string) func(*api.Node) {
	return func(n *api.Node) { n.Spec.BGP.RouteReflectorClusterID = id }
}

func bgpPeer(name string, spec api.BGPPeerSpec) api.BGPPeer {
	return api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: name}, Spec: spec}
}

func defaultConfig(spec api.BGPConfigurationSpec) api.BGPConfiguration {
	return api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}, Spec: spec}
}

func boolp(b bool) *bool { return &b }

func asnp(a uint32) *api.ASNumber { v := api.ASNumber(a); return &v }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// mesh is a mesh peer as node "b" (10.0.0.2 / fd00::2) sees it.
func mesh(name, a string, passive bool) Peer {
	src := addr("10.0.0.2")
	if addr(a).Is6() {
		src = addr("fd00::2")
	}
	return Peer{Address: addr(a), Port: 179, ASN: 64512, Type: PeerTypeMesh, Name: name, Passive: passive, SourceAddress: src}
}

func threeNodes(opts ...func(*api.Node)) []api.Node {
	return []api.Node{
		node("a", "10.0.0.1/24", ""),
		node("b", "10.0.0.2/24", "", opts...),
		node("c", "10.0.0.3", ""),
	}
}

func TestDesiredPeers(t *testing.T) {
	tests := []struct {
		name    string
		in      PeerInput
		want    []Peer
		wantErr string // substring; the peers are checked as well
	}{
		{
			name: "full mesh, passive towards higher addresses",
			in:   PeerInput{NodeName: "b", Nodes: threeNodes()},
			want: []Peer{mesh("a", "10.0.0.1", false), mesh("c", "10.0.0.3", true)},
		},
		{
			name: "mesh disabled",
			in: PeerInput{NodeName: "b", Nodes: threeNodes(),
				Configs: []api.BGPConfiguration{defaultConfig(api.BGPConfigurationSpec{NodeToNodeMeshEnabled: boolp(false)})}},
			want: []Peer{},
		},
		{
			name: "nodes without BGP addresses and families we lack are skipped",
			in: PeerInput{NodeName: "b", Nodes: []api.Node{
				node("a", "10.0.0.1", "fd00::1"),
				node("b", "10.0.0.2", "fd00::2"),
				node("c", "", "fd00::3"),
				node("d", "", ""),
				{ObjectMeta: api.ObjectMeta{Name: "e"}},
			}},
			want: []Peer{mesh("a", "10.0.0.1", false), mesh("a", "fd00::1", false), mesh("c", "fd00::3", true)},
		},
		{
			name: "IPv6 peers need an IPv6 address of our own",
			in: PeerInput{NodeName: "b", Nodes: []api.Node{
				node("a", "10.0.0.1", "fd00::1"),
				node("b", "10.0.0.2", ""),
			}},
			want: []Peer{mesh("a", "10.0.0.1", false)},
		},
		{
			name: "AS numbers: node, then default BGPConfiguration, then 64512",
			in: PeerInput{NodeName: "b", Nodes: []api.Node{
				node("a", "10.0.0.1", "", nodeASN(65001)),
				node("b", "10.0.0.2", ""),
				node("c", "10.0.0.3", ""),
			}, Configs: []api.BGPConfiguration{defaultConfig(api.BGPConfigurationSpec{ASNumber: asnp(65000)})}},
			want: []Peer{
				{Address: addr("10.0.0.1"), Port: 179, ASN: 65001, Type: PeerTypeMesh, Name: "a", SourceAddress: addr("10.0.0.2")},
				{Address: addr("10.0.0.3"), Port: 179, ASN: 65000, Type: PeerTypeMesh, Name: "c", Passive: true, SourceAddress: addr("10.0.0.2")},
			},
		},
		{
			name: "listen ports: per-node BGPConfiguration, then default",
			in: PeerInput{NodeName: "b", Nodes: threeNodes(), Configs: []api.BGPConfiguration{
				defaultConfig(api.BGPConfigurationSpec{ListenPort: 1179}),
				{ObjectMeta: api.ObjectMeta{Name: "node.c"}, Spec: api.BGPConfigurationSpec{ListenPort: 2179}},
			}},
			want: []Peer{
				{Address: addr("10.0.0.1"), Port: 1179, ASN: 64512, Type: PeerTypeMesh, Name: "a", SourceAddress: addr("10.0.0.2")},
				{Address: addr("10.0.0.3"), Port: 2179, ASN: 64512, Type: PeerTypeMesh, Name: "c", Passive: true, SourceAddress: addr("10.0.0.2")},
			},
		},
		{
			name: "mesh restart time",
			in: PeerInput{NodeName: "b", Nodes: threeNodes()[:2], Configs: []api.BGPConfiguration{
				defaultConfig(api.BGPConfigurationSpec{NodeMeshMaxRestartTime: &api.Duration{Duration: 30 * time.Second}}),
			}},
			want: []Peer{{Address: addr("10.0.0.1"), Port: 179, ASN: 64512, Type: PeerTypeMesh, Name: "a", SourceAddress: addr("10.0.0.2"), RestartTime: 30 * time.Second}},
		},
		{
			name: "global external peer, with and without port, sourceAddress None",
			in: PeerInput{NodeName: "b", Nodes: threeNodes()[:2],
				Configs: []api.BGPConfiguration{defaultConfig(api.BGPConfigurationSpec{NodeToNodeMeshEnabled: boolp(false)})},
				Peers: []api.BGPPeer{
					bgpPeer("tor", api.BGPPeerSpec{PeerIP: "10.0.0.254", ASNumber: 65100, MaxRestartTime: &api.Duration{Duration: time.Minute}}),
					bgpPeer("tor2", api.BGPPeerSpec{PeerIP: "10.0.0.253:1179", ASNumber: 65100, SourceAddress: "None"}),
					bgpPeer("tor6", api.BGPPeerSpec{PeerIP: "[fd00::fe]:179", ASNumber: 65100}),
				}},
			want: []Peer{
				{Address: addr("10.0.0.253"), Port: 1179, ASN: 65100, Type: PeerTypeGlobal, Name: "tor2", External: true},
				{Address: addr("10.0.0.254"), Port: 179, ASN: 65100, Type: PeerTypeGlobal, Name: "tor", External: true, SourceAddress: addr("10.0.0.2"), RestartTime: time.Minute},
			},
		},
		{
			name: "node-specific peers: by node name and by nodeSelector; others' are ignored",
			in: PeerInput{NodeName: "b", Nodes: threeNodes(labels("rack", "r1")),
				Configs: []api.BGPConfiguration{defaultConfig(api.BGPConfigurationSpec{NodeToNodeMeshEnabled: boolp(false)})},
				Peers: []api.BGPPeer{
					bgpPeer("mine", api.BGPPeerSpec{Node: "b", PeerIP: "192.0.2.1", ASNumber: 65100}),
					bgpPeer("rack", api.BGPPeerSpec{NodeSelector: "rack == 'r1'", PeerIP: "192.0.2.2", ASNumber: 65100}),
					bgpPeer("theirs", api.BGPPeerSpec{Node: "a", PeerIP: "192.0.2.3", ASNumber: 65100}),
					bgpPeer("other-rack", api.BGPPeerSpec{NodeSelector: "rack == 'r2'", PeerIP: "192.0.2.4", ASNumber: 65100}),
				}},
			want: []Peer{
				{Address: addr("192.0.2.1"), Port: 179, ASN: 65100, Type: PeerTypeNode, Name: "mine", External: true, SourceAddress: addr("10.0.0.2")},
				{Address: addr("192.0.2.2"), Port: 179, ASN: 65100, Type: PeerTypeNode, Name: "rack", External: true, SourceAddress: addr("10.0.0.2")},
			},
		},
		{
			name: "peerSelector picks nodes: their addresses, AS numbers and ports; c peers with us, so we peer back",
			in: PeerInput{NodeName: "b", Nodes: []api.Node{
				node("a", "10.0.0.1", "", labels("edge", "yes"), nodeASN(65001)),
				node("b", "10.0.0.2", "", labels("edge", "yes")),
				node("c", "10.0.0.3", ""),
			},
				Configs: []api.BGPConfiguration{
					defaultConfig(api.BGPConfigurationSpec{NodeToNodeMeshEnabled: boolp(false)}),
					{ObjectMeta: api.ObjectMeta{Name: "node.a"}, Spec: api.BGPConfigurationSpec{ListenPort: 1790}},
				},
				Peers: []api.BGPPeer{bgpPeer("edges", api.BGPPeerSpec{PeerSelector: "edge == 'yes'"})}},
			want: []Peer{
				{Address: addr("10.0.0.1"), Port: 1790, ASN: 65001, Type: PeerTypeGlobal, Name: "edges", SourceAddress: addr("10.0.0.2")},
				{Address: addr("10.0.0.3"), Port: 179, ASN: 64512, Type: PeerTypeNode, Name: "edges", Passive: true, SourceAddress: addr("10.0.0.2")},
			},
		},
		{
			name: "a peerIP that is a node is not external and uses the node's port; passive towards higher addresses",
			in: PeerInput{NodeName: "b", Nodes: threeNodes(),
				Configs: []api.BGPConfiguration{
					defaultConfig(api.BGPConfigurationSpec{NodeToNodeMeshEnabled: boolp(false)}),
					{ObjectMeta: api.ObjectMeta{Name: "node.c"}, Spec: api.BGPConfigurationSpec{ListenPort: 2179}},
				},
				Peers: []api.BGPPeer{bgpPeer("to-c", api.BGPPeerSpec{PeerIP: "10.0.0.3"})}},
			want: []Peer{
				{Address: addr("10.0.0.3"), Port: 2179, ASN: 64512, Type: PeerTypeGlobal, Name: "to-c", Passive: true, SourceAddress: addr("10.0.0.2")},
			},
		},
		{
			name: "precedence: mesh over BGPPeer, global over node-specific; ourselves skipped",
			in: PeerInput{NodeName: "b", Nodes: threeNodes(),
				Peers: []api.BGPPeer{
					bgpPeer("a-node", api.BGPPeerSpec{Node: "b", PeerIP: "192.0.2.1", ASNumber: 65100}),
					bgpPeer("b-global", api.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65200}),
					bgpPeer("c-node-a", api.BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: 65300}),
					bgpPeer("d-self", api.BGPPeerSpec{PeerIP: "10.0.0.2", ASNumber: 65100}),
				}},
			want: []Peer{
				mesh("a", "10.0.0.1", false),
				mesh("c", "10.0.0.3", true),
				{Address: addr("192.0.2.1"), Port: 179, ASN: 65200, Type: PeerTypeGlobal, Name: "b-global", External: true, SourceAddress: addr("10.0.0.2")},
			},
		},
		{
			name: "route reflector: mesh skips it; clients peer with it through a BGPPeer",
			in: PeerInput{NodeName: "b", Nodes: []api.Node{
				node("a", "10.0.0.1", "", labels("rr", "yes"), rrCluster("224.0.0.1")),
				node("b", "10.0.0.2", ""),
				node("c", "10.0.0.3", ""),
			}, Peers: []api.BGPPeer{bgpPeer("to-rr", api.BGPPeerSpec{PeerSelector: "has(rr)"})}},
			want: []Peer{
				{Address: addr("10.0.0.1"), Port: 179, ASN: 64512, Type: PeerTypeGlobal, Name: "to-rr", SourceAddress: addr("10.0.0.2")},
				mesh("c", "10.0.0.3", true),
			},
		},
		{
			name: "route reflector side: reverse peerings make every other node a client, other reflectors of the cluster are not",
			in: PeerInput{NodeName: "b", Nodes: []api.Node{
				node("a", "10.0.0.1", ""),
				node("b", "10.0.0.2", "", labels("rr", "yes"), rrCluster("224.0.0.1")),
				node("c", "10.0.0.3", ""),
				node("d", "10.0.0.4", "", labels("rr", "yes"), rrCluster("224.0.0.1")),
				node("e", "10.0.0.5", "", nodeASN(65009)),
			}, Peers: []api.BGPPeer{
				bgpPeer("to-rr", api.BGPPeerSpec{PeerSelector: "has(rr)"}),
				bgpPeer("tor", api.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 64512}),
			}},
			want: []Peer{
				{Address: addr("10.0.0.1"), Port: 179, ASN: 64512, Type: PeerTypeNode, Name: "to-rr", SourceAddress: addr("10.0.0.2"), RRClient: true, RRClusterID: "224.0.0.1"},
				{Address: addr("10.0.0.3"), Port: 179, ASN: 64512, Type: PeerTypeNode, Name: "to-rr", Passive: true, SourceAddress: addr("10.0.0.2"), RRClient: true, RRClusterID: "224.0.0.1"},
				{Address: addr("10.0.0.4"), Port: 179, ASN: 64512, Type: PeerTypeGlobal, Name: "to-rr", Passive: true, SourceAddress: addr("10.0.0.2")},
				{Address: addr("10.0.0.5"), Port: 179, ASN: 65009, Type: PeerTypeNode, Name: "to-rr", Passive: true, SourceAddress: addr("10.0.0.2")},
				{Address: addr("192.0.2.1"), Port: 179, ASN: 64512, Type: PeerTypeGlobal, Name: "tor", External: true, SourceAddress: addr("10.0.0.2"), RRClient: true, RRClusterID: "224.0.0.1"},
			},
		},
		{
			name: "reverse peering by peerIP needs a matching AS number",
			in: PeerInput{NodeName: "b", Nodes: threeNodes(),
				Configs: []api.BGPConfiguration{defaultConfig(api.BGPConfigurationSpec{NodeToNodeMeshEnabled: boolp(false)})},
				Peers: []api.BGPPeer{
					bgpPeer("a-to-b", api.BGPPeerSpec{Node: "a", PeerIP: "10.0.0.2", ASNumber: 64512}),
					bgpPeer("c-to-b", api.BGPPeerSpec{Node: "c", PeerIP: "10.0.0.2", ASNumber: 65000}),
				}},
			want: []Peer{
				{Address: addr("10.0.0.1"), Port: 179, ASN: 64512, Type: PeerTypeNode, Name: "a-to-b", SourceAddress: addr("10.0.0.2")},
			},
		},
		{
			name: "malformed resources are skipped and reported",
			in: PeerInput{NodeName: "b", Nodes: []api.Node{
				node("a", "not-an-ip", ""),
				node("b", "10.0.0.2", ""),
				node("c", "10.0.0.3", ""),
			}, Peers: []api.BGPPeer{
				bgpPeer("bad-selector", api.BGPPeerSpec{PeerSelector: "a ==", ASNumber: 1}),
				bgpPeer("no-peer", api.BGPPeerSpec{ASNumber: 1}),
				bgpPeer("bad-ip", api.BGPPeerSpec{PeerIP: "10.0.0.300", ASNumber: 1}),
			}},
			want:    []Peer{mesh("c", "10.0.0.3", true)},
			wantErr: "node a: spec.bgp.ipv4Address",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DesiredPeers(tt.in)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("peers:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDesiredPeersErrorsOnBadLocalNode(t *testing.T) {
	for name, in := range map[string]PeerInput{
		"missing":      {NodeName: "x", Nodes: threeNodes()},
		"no address":   {NodeName: "d", Nodes: append(threeNodes(), node("d", "", ""))},
		"bad address":  {NodeName: "d", Nodes: append(threeNodes(), node("d", "fd00::1", ""))},
		"bad address6": {NodeName: "d", Nodes: append(threeNodes(), node("d", "", "10.0.0.9"))},
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := DesiredPeers(in); err == nil || got != nil {
				t.Fatalf("got %v, %v; want an error and no peers", got, err)
			}
		})
	}
}

func TestDesiredPeersOrderIndependent(t *testing.T) {
	in := PeerInput{NodeName: "b", Nodes: threeNodes(), Peers: []api.BGPPeer{
		bgpPeer("x", api.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65100}),
		bgpPeer("y", api.BGPPeerSpec{Node: "b", PeerIP: "192.0.2.1", ASNumber: 65200}),
		bgpPeer("z", api.BGPPeerSpec{PeerIP: "192.0.2.2", ASNumber: 65100}),
	}}
	want, err := DesiredPeers(in)
	if err != nil {
		t.Fatal(err)
	}
	rev := in
	rev.Nodes = []api.Node{in.Nodes[2], in.Nodes[1], in.Nodes[0]}
	rev.Peers = []api.BGPPeer{in.Peers[2], in.Peers[1], in.Peers[0]}
	got, err := DesiredPeers(rev)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("input order changed the result:\n got %+v\nwant %+v", got, want)
	}
}

func TestSettings(t *testing.T) {
	in := PeerInput{NodeName: "b", Nodes: []api.Node{
		node("a", "10.0.0.1", ""),
		node("b", "10.0.0.2/24", "fd00::2/64", nodeASN(65001), rrCluster("224.0.0.1")),
	}, Configs: []api.BGPConfiguration{
		defaultConfig(api.BGPConfigurationSpec{ASNumber: asnp(65000), ListenPort: 1179, NodeToNodeMeshEnabled: boolp(false)}),
		{ObjectMeta: api.ObjectMeta{Name: "node.b"}, Spec: api.BGPConfigurationSpec{ListenPort: 2179}},
	}}
	got, err := Settings(in)
	if err != nil {
		t.Fatal(err)
	}
	want := NodeSettings{Name: "b", ASN: 65001, IPv4: addr("10.0.0.2"), IPv6: addr("fd00::2"), ListenPort: 2179, RRClusterID: "224.0.0.1"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	in.Nodes = []api.Node{node("b", "10.0.0.2", "")}
	in.Configs = nil
	got, err = Settings(in)
	if err != nil {
		t.Fatal(err)
	}
	want = NodeSettings{Name: "b", ASN: 64512, IPv4: addr("10.0.0.2"), ListenPort: 179, MeshEnabled: true}
	if got != want {
		t.Errorf("defaults: got %+v, want %+v", got, want)
	}
}

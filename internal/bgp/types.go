package bgp

import (
	"context"
	"net/netip"
	"time"
)

// Peer types, spelled as `calicoctl node status` prints them.
const (
	PeerTypeMesh   = "node-to-node mesh"
	PeerTypeGlobal = "global"
	PeerTypeNode   = "node specific"
)

// DefaultASN is Calico's default AS number.
const DefaultASN uint32 = 64512

// DefaultPort is the BGP port.
const DefaultPort uint16 = 179

// Peer is one BGP session this node should have.
type Peer struct {
	// Address is the peer's address; the session's address family follows it
	// (an IPv4 session carries IPv4 unicast, an IPv6 session IPv6 unicast).
	Address netip.Addr
	// Port is the peer's BGP port; 0 means 179.
	Port uint16
	// ASN is the peer's AS number.
	ASN uint32
	// Type is PeerTypeMesh, PeerTypeGlobal or PeerTypeNode.
	Type string
	// Name says where the peer comes from: the other node's name for mesh
	// peers, the BGPPeer resource's name otherwise.
	Name string
	// RRClient makes the peer a route-reflector client of this node, with
	// RRClusterID (an IPv4 address) as cluster ID.
	RRClient    bool
	RRClusterID string
	// External is set when the peer is not one of our Nodes: it then only
	// receives advertisements marked ExportToExternal.
	External bool
	// Passive: wait for the peer to connect. Set for Calico nodes with a
	// higher address than ours, so each pair of nodes has one connecting side
	// (a second connection racing a graceful restart would abort it).
	Passive bool
	// SourceAddress is the local address of the session; the zero value lets
	// the kernel choose.
	SourceAddress netip.Addr
	// RestartTime is the graceful-restart time announced to this peer; zero
	// means the speaker's default.
	RestartTime time.Duration
	// PasswordSecret names the secret holding the session's TCP MD5
	// password (BGPPeer spec.password.secretKeyRef); DesiredPeers sets it,
	// the caller reads the secret into Password.
	PasswordSecret SecretRef
	// Password is the TCP MD5 password (RFC 2385); empty means none.
	Password string
	// TTLSecurity, when non-zero, turns on GTSM (RFC 5682) for a peer that
	// many hops away: packets go out with TTL 255 and only packets with a
	// TTL of at least 256-TTLSecurity are accepted. Without it an eBGP
	// session is single-hop (TTL 1).
	TTLSecurity uint8
	// MaxPrefixes is the most prefixes the peer may send; one more tears the
	// session down. Zero means DefaultMaxPrefixes.
	MaxPrefixes uint32
	// Import and Export are the peer's BGPFilter rules for its address
	// family, in order (BGPPeer spec.filters, each filter's rules in turn).
	// The first rule that matches a route decides; an import route no rule
	// matches is accepted, an export route no rule matches goes through the
	// usual export rules.
	Import []FilterRule
	Export []FilterRule
}

// SecretRef names a key of a secret: the file SecretDir/Name/Key on the node.
type SecretRef struct {
	Name string
	Key  string
	// Optional is Calico's secretKeyRef.optional: a missing secret file
	// means a session without a password (the operator asked for that).
	Optional bool
}

// DefaultMaxPrefixes is the default per-peer limit of received prefixes.
const DefaultMaxPrefixes = 10000

// FilterRule is one BGPFilter rule (Calico's semantics).
type FilterRule struct {
	// CIDR and Operator ("Equal", "NotEqual", "In", "NotIn") match the
	// route's prefix; an invalid CIDR matches every route. For In and NotIn
	// the prefix length must be within MinLen..MaxLen.
	CIDR     netip.Prefix
	Operator string
	MinLen   int
	MaxLen   int
	// RemotePeers restricts an export rule to routes learned from peers
	// (not originated by this node).
	RemotePeers bool
	// Accept: accept the route; otherwise reject it.
	Accept bool
}

// Advertisement is one prefix this node originates.
type Advertisement struct {
	Prefix netip.Prefix
	// ExportToExternal lets the prefix go to external peers (IPPool routes
	// whose pool does not set disableBGPExport). Mesh peers and route
	// reflectors get every advertisement.
	ExportToExternal bool
}

// LearnedRoute is the best path to a prefix, learned from a peer.
type LearnedRoute struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	// Peer is the address of the peer the path came from (for a reflected
	// route, the route reflector, not the originator).
	Peer netip.Addr
}

// PeerStatus is the state of one configured session.
type PeerStatus struct {
	Address netip.Addr
	Type    string
	// State is the BGP session state: "Idle", "Connect", "Active",
	// "OpenSent", "OpenConfirm" or "Established".
	State string
	// AdminDown is set when the session is administratively shut down.
	AdminDown bool
	// Since is when the session last entered or left Established (or was
	// configured, if it never was).
	Since time.Time
	// Info is extra detail, such as why the last session went down.
	Info string
}

// Speaker is a BGP speaker driven declaratively.
type Speaker interface {
	// Start starts the speaker. It fails if the listen addresses cannot be
	// bound.
	Start(ctx context.Context) error
	// SetPeers replaces the set of sessions; only the difference is applied,
	// so an unchanged peer keeps its session.
	SetPeers(ctx context.Context, peers []Peer) error
	// SetAdvertisements replaces the set of prefixes this node originates;
	// only the difference is announced or withdrawn.
	SetAdvertisements(ctx context.Context, ads []Advertisement) error
	// Learned delivers the full current set of best paths learned from peers,
	// sorted by prefix, whenever it changes. Intermediate sets may be skipped
	// (only the latest is kept), so a slow reader never blocks the speaker.
	Learned() <-chan []LearnedRoute
	// Status reports every configured session, sorted by address.
	Status(ctx context.Context) ([]PeerStatus, error)
	// Stop stops the speaker. With graceful set, sessions are closed without
	// a NOTIFICATION so that graceful-restart peers keep this node's routes
	// until it returns or their restart timer expires; otherwise peers drop
	// them at once.
	Stop(ctx context.Context, graceful bool) error
}

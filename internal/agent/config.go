package agent

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/join"
	"github.com/calico-docker/calico/internal/pki"
)

// Config is the node daemon's configuration. Defaults are in DefaultConfig;
// the CLI fills it from flags and Calico's environment variable names.
type Config struct {
	// NodeName names this host's Node resource (NODENAME; default: hostname).
	NodeName string
	// IPv4 and IPv6 are this host's addresses with prefix length (IP, IP6),
	// e.g. 10.0.0.1/24. An empty IPv4 is autodetected from the default route.
	IPv4 string
	IPv6 string
	// Datastore is the etcd client configuration.
	Datastore datastore.Config
	// EmbeddedEtcd runs etcd inside the node (first host of a small cluster).
	EmbeddedEtcd    bool
	EtcdListenURLs  []string
	EtcdDataDir     string
	EtcdPeerURL     string
	EtcdAdvertiseIP string
	// InsecurePlaintext runs the embedded etcd as one plaintext member on
	// EtcdListenURLs (the old behaviour; a warning at every start).
	InsecurePlaintext bool
	// PKIDir holds the cluster CA, this host's certificate and the join
	// tokens (package pki); calicoctl.cfg is written next to it.
	PKIDir string
	// NodenameFile records the node's name for other commands on this
	// host; "" writes none.
	NodenameFile string
	// JoinURL and JoinToken join an existing cluster (package join).
	JoinURL, JoinToken string
	// JoinPort is where the host holding the CA key serves joins.
	JoinPort int
	// EtcdMembers is how many hosts run an etcd member (first node only;
	// stored in the datastore for the hosts that join later).
	EtcdMembers int
	// EtcdSocket is the local unixs:// socket of the embedded member.
	EtcdSocket string

	// BGP runs the embedded BGP speaker.
	BGP bool
	// BGPPort is the BGP listen port (179).
	BGPPort int
	// BGPSecretDir holds the BGP passwords BGPPeers name in
	// spec.password.secretKeyRef, one file per key: <dir>/<name>/<key>
	// (default DefaultBGPSecretDir).
	BGPSecretDir string
	// BGPMaxPrefixes is the most prefixes a BGP peer may send before its
	// session is torn down (CALICO_BGP_MAX_PREFIXES; 0: bgp.DefaultMaxPrefixes).
	BGPMaxPrefixes uint32
	// DockerPlugin serves the Docker network and IPAM plugins.
	DockerPlugin bool
	// PluginDir is where the plugin sockets go.
	PluginDir string
	// PluginSocketGroup is the gid of the plugin sockets (mode 0660; -1:
	// none, mode 0600); nil looks up the "docker" group. From
	// CALICO_PLUGIN_SOCKET_GID, which `calico node start` sets from the
	// host's group database (the node image has none).
	PluginSocketGroup *int

	// HealthAddr serves /liveness, /readiness and /status.
	HealthAddr string
	// MetricsAddr serves /metrics.
	MetricsAddr string
	// FlowsSocket is where `calico flows` asks for the node's flow logs
	// once FelixConfiguration flowLogsFileEnabled turns them on ("" = no
	// socket; the flows are still counted on /metrics).
	FlowsSocket string
	// FlowsPort is where the node serves its flows to the other hosts'
	// `calico flows`, on its IPv4 address, over TLS requiring a client
	// certificate of the cluster CA (0 = not served). Only with the managed
	// datastore's credentials in PKIDir.
	FlowsPort int
	// NetNS is the network namespace to program ("" = the current one); tests
	// point it at a namespace they created.
	NetNS string
	// ResyncInterval overrides FelixConfiguration's refresh interval when non-zero.
	ResyncInterval time.Duration
	// DockerFirewall keeps our rule in Docker's DOCKER-USER chain wherever
	// Docker's iptables firewall is found (package dockerfw).
	DockerFirewall bool
	// FirewallCheckInterval is how often the Docker firewall rule and the
	// forwarding sysctls are re-checked and repaired.
	FirewallCheckInterval time.Duration

	Logger *slog.Logger
}

// Defaults.
const (
	DefaultHealthAddr     = "127.0.0.1:9099"
	DefaultMetricsAddr    = "127.0.0.1:9091"
	DefaultPluginDir      = "/run/docker/plugins"
	DefaultResyncInterval = 90 * time.Second
	MinResyncInterval     = 5 * time.Second
	DefaultEtcdDataDir    = "/var/lib/calico/etcd"
	// DefaultFirewallCheckInterval bounds the repair latency of a flushed
	// DOCKER-USER; one check costs a netlink read and one `iptables -S` per
	// back end and family that has a filter table.
	DefaultFirewallCheckInterval = 5 * time.Second
	DefaultBGPSecretDir          = "/etc/calico/bgp-secrets"
	DefaultEtcdSocket            = "/var/run/calico/etcd.sock"
	DefaultEtcdMembers           = 3
)

// DefaultConfig returns the defaults, with Calico's environment variables applied.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	c := Config{
		NodeName:     envOr("NODENAME", host),
		IPv4:         os.Getenv("IP"),
		IPv6:         os.Getenv("IP6"),
		BGP:          true,
		BGPPort:      179,
		DockerPlugin: true,
		PluginDir:    DefaultPluginDir,
		HealthAddr:   DefaultHealthAddr,
		MetricsAddr:  DefaultMetricsAddr,
		EtcdDataDir:  DefaultEtcdDataDir,

		DockerFirewall:        true,
		FirewallCheckInterval: DefaultFirewallCheckInterval,
		BGPSecretDir:          envOr("CALICO_BGP_SECRET_DIR", DefaultBGPSecretDir),
		PKIDir:                pki.Dir,
		JoinPort:              join.DefaultPort,
		FlowsPort:             flows.DefaultPort,
		EtcdMembers:           DefaultEtcdMembers,
		EtcdSocket:            DefaultEtcdSocket,
		NodenameFile:          envOr("CALICO_NODENAME_FILE", DefaultNodenameFile),
	}
	if v, err := strconv.Atoi(os.Getenv("CALICO_PLUGIN_SOCKET_GID")); err == nil {
		c.PluginSocketGroup = &v
	}
	if n, err := strconv.ParseUint(os.Getenv("CALICO_BGP_MAX_PREFIXES"), 10, 32); err == nil {
		c.BGPMaxPrefixes = uint32(n)
	}
	if strings.EqualFold(os.Getenv("CALICO_NETWORKING_BACKEND"), "none") {
		c.BGP = false
	}
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// parseHostAddr accepts "10.0.0.1/24" or "10.0.0.1" (then /32 or /128).
func parseHostAddr(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *Config) validate() error {
	if c.FirewallCheckInterval <= 0 {
		c.FirewallCheckInterval = DefaultFirewallCheckInterval
	}
	if c.NodeName == "" {
		return fmt.Errorf("node name is empty: set --name or NODENAME")
	}
	if p, err := parseHostAddr(c.IPv4); err != nil || (p.IsValid() && !p.Addr().Is4()) {
		return fmt.Errorf("invalid --ip %q: want an IPv4 address, optionally with prefix length", c.IPv4)
	}
	if p, err := parseHostAddr(c.IPv6); err != nil || (p.IsValid() && !p.Addr().Is6()) {
		return fmt.Errorf("invalid --ip6 %q: want an IPv6 address, optionally with prefix length", c.IPv6)
	}
	if c.EtcdMembers == 0 {
		c.EtcdMembers = DefaultEtcdMembers
	}
	if c.EtcdSocket == "" {
		c.EtcdSocket = DefaultEtcdSocket
	}
	if c.EtcdMembers < 1 || c.EtcdMembers > 7 {
		return fmt.Errorf("invalid --etcd-members %d: want 1 to 7 (3 survives losing one host; more is rarely worth it)", c.EtcdMembers)
	}
	if (c.JoinURL == "") != (c.JoinToken == "") {
		return fmt.Errorf("--join-url and --join-token go together")
	}
	if c.JoinURL != "" && c.EmbeddedEtcd {
		return fmt.Errorf("--join-url and --embedded-etcd exclude each other: the first host runs --embedded-etcd, the others join it")
	}
	if len(c.Datastore.Endpoints) > 0 && (c.JoinURL != "" || c.EmbeddedEtcd && !c.InsecurePlaintext) {
		return fmt.Errorf("--etcd-endpoints (an external etcd) excludes --embedded-etcd and --join-url")
	}
	return nil
}

// ClusterMode reports whether the node runs the managed datastore: an
// embedded etcd cluster secured by the cluster CA (first host, a joining
// host, or a host that joined before).
func (c *Config) ClusterMode() bool {
	if len(c.Datastore.Endpoints) > 0 || (c.EmbeddedEtcd && c.InsecurePlaintext) {
		return false
	}
	if c.EmbeddedEtcd || c.JoinURL != "" {
		return true
	}
	return c.PKIDir != "" && (pki.Paths{Dir: c.PKIDir}).HasNodeCert()
}

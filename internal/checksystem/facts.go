package checksystem

// Facts is everything Gather learns about a host. It is plain data: Evaluate
// turns it into a Report without any I/O, so the decisions are table-tested
// without root.
type Facts struct {
	// Root is true when the checks run with euid 0.
	Root bool `json:"root"`
	// Kernel is the kernel release (uname -r).
	Kernel string `json:"kernel"`
	// Features are the results of the feature probes; FeaturesErr says why
	// they could not run (no throwaway namespace could be created).
	Features    []Feature `json:"features,omitempty"`
	FeaturesErr string    `json:"featuresError,omitempty"`
	// Sysctls by key (net.ipv4.ip_forward, ...).
	Sysctls map[string]SysctlFact `json:"sysctls"`
	// Links are the network interfaces of the inspected namespace.
	Links    []Link `json:"links,omitempty"`
	LinksErr string `json:"linksError,omitempty"`
	// NFT is the nftables ruleset of the inspected namespace (tables and
	// their chains; iptables-nft's tables appear here too).
	NFT    []Table `json:"nftables,omitempty"`
	NFTErr string  `json:"nftablesError,omitempty"`
	// IPTables describes the iptables back ends.
	IPTables IPTables `json:"iptables"`
	// Firewalld and UFW describe host firewalls that may drop forwarded traffic.
	Firewalld Firewalld `json:"firewalld"`
	UFW       UFW       `json:"ufw"`
}

// Need says what a missing feature costs.
type Need string

const (
	// NeedRequired: the node cannot work without it (FAIL).
	NeedRequired Need = "required"
	// NeedOptional: one function does not work without it (WARN).
	NeedOptional Need = "optional"
)

// Feature is one probed kernel feature.
type Feature struct {
	Name string `json:"name"`
	// Modules are the kernel modules (or config options) that provide it.
	Modules string `json:"modules"`
	// What the probe did.
	What string `json:"what"`
	Need Need   `json:"need"`
	// Err is empty when the probe succeeded.
	Err string `json:"error,omitempty"`
}

// SysctlFact is one /proc/sys value in the inspected namespace.
type SysctlFact struct {
	Value   string `json:"value"`
	Missing bool   `json:"missing,omitempty"`
	// WriteErr is set when the file cannot be opened for writing (the node
	// could not change it either).
	WriteErr string `json:"writeError,omitempty"`
}

// Link is one network interface.
type Link struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Up   bool   `json:"up"`
}

// Table is one nftables table with its chains.
type Table struct {
	Family string  `json:"family"` // ip, ip6, inet, arp, bridge, netdev
	Name   string  `json:"name"`
	Chains []Chain `json:"chains,omitempty"`
}

// Chain is one nftables chain. Hook, Policy and the rule summary are set for
// base chains only.
type Chain struct {
	Name     string `json:"name"`
	Hook     string `json:"hook,omitempty"` // prerouting, input, forward, output, postrouting
	Type     string `json:"type,omitempty"` // filter, nat, route
	Priority int    `json:"priority,omitempty"`
	Policy   string `json:"policy,omitempty"` // accept, drop
	Rules    int    `json:"rules,omitempty"`
	// EndsInDrop: the last rule drops or rejects every packet that reaches it.
	EndsInDrop bool `json:"endsInDrop,omitempty"`
	// MentionsCali: some rule matches an interface name starting with "cali".
	MentionsCali bool `json:"mentionsCali,omitempty"`
}

// IPTables describes the iptables back ends.
type IPTables struct {
	// Default is the back end of the iptables command on PATH (the one Docker
	// uses): "nf_tables", "legacy", or "" when iptables is not installed.
	Default string `json:"default"`
	Version string `json:"version,omitempty"`
	// Legacy holds the legacy (x_tables) filter tables that are loaded.
	Legacy    []LegacyFilter `json:"legacy,omitempty"`
	LegacyErr string         `json:"legacyError,omitempty"`
}

// LegacyFilter is the filter table of the legacy back end for one family.
type LegacyFilter struct {
	Family        string   `json:"family"` // ip, ip6
	ForwardPolicy string   `json:"forwardPolicy"`
	Chains        []string `json:"chains"`
	// Rules are the -A lines of the table (for DOCKER-USER inspection).
	Rules []string `json:"rules,omitempty"`
}

// Firewalld is the state of firewalld.
type Firewalld struct {
	Running bool   `json:"running"`
	How     string `json:"how,omitempty"` // how it was detected
}

// UFW is the state of ufw.
type UFW struct {
	Enabled       bool   `json:"enabled"`
	ForwardPolicy string `json:"forwardPolicy,omitempty"` // DEFAULT_FORWARD_POLICY
}

package ipam

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/calico-docker/calico/internal/datastore"
)

// Key layout; see doc.go.

// BlockKey is the key of the block with this CIDR:
// /calico/ipam/v2/assignment/ipv4/block/10.65.0.0-26.
func BlockKey(cidr netip.Prefix) string {
	return BlocksPrefix(family(cidr.Addr())) + cidrName(cidr)
}

// BlocksPrefix is the prefix of every block of a family (4 or 6).
func BlocksPrefix(fam int) string {
	return datastore.IPAMRoot + "assignment/" + familyName(fam) + "/block/"
}

// AffinityKey is the key recording that node is affine to the block cidr:
// /calico/ipam/v2/host/<node>/ipv4/block/10.65.0.0-26.
func AffinityKey(node string, cidr netip.Prefix) string {
	return AffinitiesPrefix(node, family(cidr.Addr())) + cidrName(cidr)
}

// AffinitiesPrefix is the prefix of a node's affinities of one family.
func AffinitiesPrefix(node string, fam int) string {
	return HostsPrefix + node + "/" + familyName(fam) + "/block/"
}

// HostsPrefix is the prefix of every node's affinities.
const HostsPrefix = datastore.IPAMRoot + "host/"

// HandlesPrefix is the prefix of every handle.
const HandlesPrefix = datastore.IPAMRoot + "handle/"

// ConfigKey holds the IPAM Config.
const ConfigKey = datastore.IPAMRoot + "config"

// claimsPrefix holds each node's claim generation (see doc.go).
const claimsPrefix = datastore.IPAMRoot + "hostclaims/"

// HandleKey is the key of a handle.
func HandleKey(handle string) string { return HandlesPrefix + handle }

func claimKey(node string, fam int) string { return claimsPrefix + familyName(fam) + "/" + node }

// cidrName writes a CIDR as it appears in keys: "/" becomes "-".
func cidrName(p netip.Prefix) string { return strings.Replace(p.Masked().String(), "/", "-", 1) }

// parseCIDRName reverses cidrName.
func parseCIDRName(s string) (netip.Prefix, error) {
	i := strings.LastIndex(s, "-")
	if i < 0 {
		return netip.Prefix{}, fmt.Errorf("block name %q: want <address>-<bits>", s)
	}
	return netip.ParsePrefix(s[:i] + "/" + s[i+1:])
}

// ParseBlockKey returns the CIDR of a block key.
func ParseBlockKey(key string) (netip.Prefix, bool) {
	for _, fam := range []int{4, 6} {
		if rest, ok := strings.CutPrefix(key, BlocksPrefix(fam)); ok && !strings.Contains(rest, "/") {
			p, err := parseCIDRName(rest)
			return p, err == nil
		}
	}
	return netip.Prefix{}, false
}

// ParseAffinityKey returns the node and block CIDR of an affinity key.
func ParseAffinityKey(key string) (node string, cidr netip.Prefix, ok bool) {
	rest, found := strings.CutPrefix(key, HostsPrefix)
	if !found {
		return "", netip.Prefix{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[0] == "" || (parts[1] != "ipv4" && parts[1] != "ipv6") || parts[2] != "block" {
		return "", netip.Prefix{}, false
	}
	p, err := parseCIDRName(parts[3])
	if err != nil {
		return "", netip.Prefix{}, false
	}
	return parts[0], p, true
}

// validName checks a handle or node name used inside a key.
func validName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is required", what)
	}
	if strings.ContainsAny(s, "/ \t\r\n") {
		return fmt.Errorf("%s %q must not contain '/' or whitespace", what, s)
	}
	if len(s) > 512 {
		return fmt.Errorf("%s is longer than 512 characters", what)
	}
	return nil
}

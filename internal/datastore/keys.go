package datastore

import "strings"

// Key roots. They end in "/" so that a prefix never matches a sibling whose
// name merely starts the same way.
const (
	// ResourcesRoot holds every projectcalico.org/v3 resource.
	ResourcesRoot = "/calico/resources/v3/projectcalico.org/"
	// IPAMRoot holds IPAM blocks, host affinities, handles and config.
	IPAMRoot = "/calico/ipam/v2/"
)

// ResourcePrefix is the prefix of every resource of one kind, e.g.
// "/calico/resources/v3/projectcalico.org/ippools/". plural is the
// lowercase plural kind name.
func ResourcePrefix(plural string) string {
	return ResourcesRoot + plural + "/"
}

// ResourceKey is the key of one resource. namespace is empty for
// cluster-scoped kinds.
func ResourceKey(plural, namespace, name string) string {
	if namespace == "" {
		return ResourcePrefix(plural) + name
	}
	return ResourcePrefix(plural) + namespace + "/" + name
}

// ParseResourceKey splits a key made by ResourceKey. ok is false for keys
// outside ResourcesRoot or with the wrong number of parts.
func ParseResourceKey(key string) (plural, namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(key, ResourcesRoot)
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	for _, p := range parts {
		if p == "" {
			return "", "", "", false
		}
	}
	switch len(parts) {
	case 2:
		return parts[0], "", parts[1], true
	case 3:
		return parts[0], parts[1], parts[2], true
	}
	return "", "", "", false
}

package calc

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"unique"
)

// labelPool shares label maps between the endpoints that carry the same
// labels. Endpoints of one workload (replicas, the containers of a compose
// service) have identical labels, so at 10,000 endpoints a map per
// endpoint is mostly copies: the pool keeps one map per distinct label set,
// counted by its users, and drops it with its last user.
//
// A pooled map is shared: nobody may modify it.
type labelPool struct {
	sets map[string]*pooledLabels
}

type pooledLabels struct {
	m    map[string]string
	refs int
}

func newLabelPool() labelPool { return labelPool{sets: map[string]*pooledLabels{}} }

// labelsKey is a label set's identity: its pairs in key order, each string
// length-prefixed so that no two sets share a key.
func labelsKey(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	var sb strings.Builder
	for _, k := range keys {
		v := m[k]
		sb.WriteString(strconv.Itoa(len(k)))
		sb.WriteByte(':')
		sb.WriteString(k)
		sb.WriteString(strconv.Itoa(len(v)))
		sb.WriteByte(':')
		sb.WriteString(v)
	}
	return sb.String()
}

// get returns the pooled map equal to m (nil for an empty m), counting one
// more user. m itself is never kept: the pool stores a copy, so the caller
// may go on using or modifying m.
func (p *labelPool) get(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	k := labelsKey(m)
	if s := p.sets[k]; s != nil {
		s.refs++
		return s.m
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[intern(k)] = intern(v)
	}
	p.sets[k] = &pooledLabels{m: c, refs: 1}
	return c
}

// put gives back one use of a map returned by get.
func (p *labelPool) put(m map[string]string) {
	if len(m) == 0 {
		return
	}
	k := labelsKey(m)
	s := p.sets[k]
	if s == nil {
		return
	}
	if s.refs--; s.refs <= 0 {
		delete(p.sets, k)
	}
}

// size is the number of distinct label sets pooled (for tests).
func (p *labelPool) size() int { return len(p.sets) }

// intern returns one shared copy of s: the names of nodes, namespaces,
// orchestrators and profiles repeat across thousands of endpoints, and
// each decoded resource brings its own copy. The runtime frees an
// interned string once nothing uses it.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

package calc

import (
	"encoding/binary"
	"slices"
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
	// Scratch space for keys: a lookup that finds its set allocates
	// nothing (cold start adds 10,000 endpoints at once).
	keys []string
	buf  []byte
}

type pooledLabels struct {
	m    map[string]string
	refs int
}

func newLabelPool() labelPool { return labelPool{sets: map[string]*pooledLabels{}} }

// key is a label set's identity: its pairs in key order, each string
// length-prefixed so that no two sets share a key. The result is valid
// until the next call.
func (p *labelPool) key(m map[string]string) []byte {
	p.keys = p.keys[:0]
	for k := range m {
		p.keys = append(p.keys, k)
	}
	slices.Sort(p.keys)
	b := p.buf[:0]
	for _, k := range p.keys {
		v := m[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	p.buf = b
	return b
}

// get returns the pooled map equal to m (nil for an empty m), counting one
// more user. m itself is never kept: the pool stores a copy, so the caller
// may go on using or modifying m.
func (p *labelPool) get(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	k := p.key(m)
	if s := p.sets[string(k)]; s != nil {
		s.refs++
		return s.m
	}
	c := make(map[string]string, len(m))
	// Keys repeat across label sets (app, role, ...); values are often
	// unique to the set (a pod name), where interning would only cost.
	for k, v := range m {
		c[intern(k)] = v
	}
	p.sets[string(k)] = &pooledLabels{m: c, refs: 1}
	return c
}

// put gives back one use of a map returned by get.
func (p *labelPool) put(m map[string]string) {
	if len(m) == 0 {
		return
	}
	k := p.key(m)
	s := p.sets[string(k)]
	if s == nil {
		return
	}
	if s.refs--; s.refs <= 0 {
		delete(p.sets, string(k))
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

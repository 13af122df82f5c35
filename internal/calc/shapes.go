package calc

import (
	"slices"
	"strconv"
	"strings"
)

// shapeIndex keeps track of which endpoints each matcher selects, without
// evaluating every matcher against every endpoint.
//
// A matcher's answer depends only on the values of the label keys it reads
// (selector.LabelKeys), plus the namespace and service account when it has
// such conditions. Matchers reading the same keys form a shape; endpoints
// that agree on those keys form a class of the shape, and every matcher of
// the shape gives the whole class one answer. So each matcher is evaluated
// once per class, not once per endpoint: with 10,000 endpoints spread over
// 1,000 values of "app" and 1,000 selectors on "app", that is 1,000,000
// evaluations instead of 10,000,000, and a new endpoint whose labels are
// already known costs a map lookup per shape.
type shapeIndex[T comparable] struct {
	shapes  map[string]*shape[T]
	byKey   map[string]map[*shape[T]]struct{} // label key -> shapes reading it
	sa      map[*shape[T]]struct{}            // shapes reading the service account
	shapeOf map[T]*shape[T]
	eps     map[*wepEntry]map[*shape[T]]*class[T]
	onMatch func(t T, e *wepEntry, match bool)
}

type shape[T comparable] struct {
	id       string
	keys     []string
	ns, sa   bool
	matchers map[T]*matcher
	classes  map[string]*class[T]
}

// class is the endpoints of one shape's projection and the shape's matchers
// that select them. A class is never empty: matched is only kept up to date
// by evaluating a member, so an empty class is deleted at once.
type class[T comparable] struct {
	key     string
	eps     map[*wepEntry]struct{}
	rep     *wepEntry // any member: it answers for the class
	matched []T
}

func newShapeIndex[T comparable](onMatch func(T, *wepEntry, bool)) *shapeIndex[T] {
	return &shapeIndex[T]{
		shapes:  map[string]*shape[T]{},
		byKey:   map[string]map[*shape[T]]struct{}{},
		sa:      map[*shape[T]]struct{}{},
		shapeOf: map[T]*shape[T]{},
		eps:     map[*wepEntry]map[*shape[T]]*class[T]{},
		onMatch: onMatch,
	}
}

func shapeID(m *matcher) string {
	id := strings.Join(m.keys, "\x00")
	if m.ns != nil || m.none {
		id += "\x00ns"
	}
	if m.sa != nil {
		id += "\x00sa"
	}
	return id
}

// project is the endpoint's class key in the shape: the values of the keys
// the shape reads (each length-prefixed, absent keys marked), then its
// namespace and service account if the shape reads them.
func (sh *shape[T]) project(e *wepEntry) string {
	var b []byte
	for _, k := range sh.keys {
		if v, ok := e.view.labels[k]; ok {
			b = strconv.AppendInt(b, int64(len(v)), 10)
			b = append(b, ':')
			b = append(b, v...)
		} else {
			b = append(b, '-')
		}
	}
	if sh.ns {
		b = append(b, '|')
		if e.view.global {
			b = append(b, 0)
		}
		b = append(b, e.w.Namespace...)
	}
	if sh.sa {
		b = append(b, '|')
		b = append(b, e.w.Spec.ServiceAccountName...)
	}
	return string(b)
}

// classFor puts e in its class of sh, creating the class (and evaluating
// the shape's matchers once for it) if needed.
func (ix *shapeIndex[T]) classFor(sh *shape[T], e *wepEntry) *class[T] {
	key := sh.project(e)
	c := sh.classes[key]
	if c == nil {
		c = &class[T]{key: key, eps: map[*wepEntry]struct{}{}, rep: e}
		for t, m := range sh.matchers {
			if m.matches(&e.view) {
				c.matched = append(c.matched, t)
			}
		}
		sh.classes[key] = c
	}
	c.eps[e] = struct{}{}
	return c
}

func (sh *shape[T]) leaveClass(c *class[T], e *wepEntry) {
	delete(c.eps, e)
	if len(c.eps) == 0 {
		delete(sh.classes, c.key)
		return
	}
	if c.rep == e {
		for o := range c.eps {
			c.rep = o
			break
		}
	}
}

// addEndpoint starts tracking e and reports every matcher that selects it.
func (ix *shapeIndex[T]) addEndpoint(e *wepEntry) {
	cls := make(map[*shape[T]]*class[T], len(ix.shapes))
	ix.eps[e] = cls
	for _, sh := range ix.shapes {
		c := ix.classFor(sh, e)
		cls[sh] = c
		for _, t := range c.matched {
			ix.onMatch(t, e, true)
		}
	}
}

// removeEndpoint stops tracking e, reporting every matcher as no longer
// selecting it.
func (ix *shapeIndex[T]) removeEndpoint(e *wepEntry) {
	cls, ok := ix.eps[e]
	if !ok {
		return
	}
	delete(ix.eps, e)
	for sh, c := range cls {
		sh.leaveClass(c, e)
		for _, t := range c.matched {
			ix.onMatch(t, e, false)
		}
	}
}

// updateEndpoint follows a change of e's labels (the keys in changed) or
// service account, reporting only the matchers whose answer changed. e.view
// must already hold the new labels.
func (ix *shapeIndex[T]) updateEndpoint(e *wepEntry, changed []string, saChanged bool) {
	cls, ok := ix.eps[e]
	if !ok {
		return
	}
	var affected []*shape[T]
	for _, k := range changed {
		for sh := range ix.byKey[k] {
			if !slices.Contains(affected, sh) {
				affected = append(affected, sh)
			}
		}
	}
	if saChanged {
		for sh := range ix.sa {
			if !slices.Contains(affected, sh) {
				affected = append(affected, sh)
			}
		}
	}
	for _, sh := range affected {
		old := cls[sh]
		if sh.project(e) == old.key {
			continue
		}
		sh.leaveClass(old, e)
		c := ix.classFor(sh, e)
		cls[sh] = c
		diffMatched(old.matched, c.matched, func(t T, match bool) { ix.onMatch(t, e, match) })
	}
}

// diffMatched calls f(t, false) for what is only in old, then f(t, true) for
// what is only in new.
func diffMatched[T comparable](old, new []T, f func(T, bool)) {
	if len(old)*len(new) <= 256 {
		for _, t := range old {
			if !slices.Contains(new, t) {
				f(t, false)
			}
		}
		for _, t := range new {
			if !slices.Contains(old, t) {
				f(t, true)
			}
		}
		return
	}
	inOld := make(map[T]struct{}, len(old))
	for _, t := range old {
		inOld[t] = struct{}{}
	}
	inNew := make(map[T]struct{}, len(new))
	for _, t := range new {
		inNew[t] = struct{}{}
	}
	for _, t := range old {
		if _, ok := inNew[t]; !ok {
			f(t, false)
		}
	}
	for _, t := range new {
		if _, ok := inOld[t]; !ok {
			f(t, true)
		}
	}
}

// addMatcher starts tracking t (selecting what m selects) and reports every
// endpoint it selects.
func (ix *shapeIndex[T]) addMatcher(t T, m *matcher) {
	id := shapeID(m)
	sh := ix.shapes[id]
	if sh == nil {
		sh = &shape[T]{id: id, keys: m.keys, ns: m.ns != nil || m.none, sa: m.sa != nil,
			matchers: map[T]*matcher{}, classes: map[string]*class[T]{}}
		ix.shapes[id] = sh
		for _, k := range sh.keys {
			if ix.byKey[k] == nil {
				ix.byKey[k] = map[*shape[T]]struct{}{}
			}
			ix.byKey[k][sh] = struct{}{}
		}
		if sh.sa {
			ix.sa[sh] = struct{}{}
		}
		for e, cls := range ix.eps {
			cls[sh] = ix.classFor(sh, e)
		}
	}
	sh.matchers[t] = m
	ix.shapeOf[t] = sh
	for _, c := range sh.classes {
		if m.matches(&c.rep.view) {
			c.matched = append(c.matched, t)
			for e := range c.eps {
				ix.onMatch(t, e, true)
			}
		}
	}
}

// removeMatcher stops tracking t, reporting it as no longer selecting the
// endpoints it selected.
func (ix *shapeIndex[T]) removeMatcher(t T) {
	sh := ix.shapeOf[t]
	if sh == nil {
		return
	}
	delete(ix.shapeOf, t)
	delete(sh.matchers, t)
	for _, c := range sh.classes {
		if i := slices.Index(c.matched, t); i >= 0 {
			c.matched = slices.Delete(c.matched, i, i+1)
			for e := range c.eps {
				ix.onMatch(t, e, false)
			}
		}
	}
	if len(sh.matchers) > 0 {
		return
	}
	delete(ix.shapes, sh.id)
	for _, k := range sh.keys {
		delete(ix.byKey[k], sh)
		if len(ix.byKey[k]) == 0 {
			delete(ix.byKey, k)
		}
	}
	delete(ix.sa, sh)
	for _, cls := range ix.eps {
		delete(cls, sh)
	}
}

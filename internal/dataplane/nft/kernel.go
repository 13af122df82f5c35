package nft

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// kernelState is what the kernel's table holds, as far as we know: read
// from the kernel on a cold start or a resync, and kept up to date by every
// successful Apply.
type kernelState struct {
	table  bool
	chains map[string]*kChain
	sets   map[string]*kSet
	// unfixable notes objects of ours whose kind cannot be changed in
	// place (a set with another key type, a base chain on another hook):
	// the next Apply replaces the whole table in its one transaction.
	unfixable []string
}

type kChain struct {
	base   *baseChain // nil for a regular chain
	hashes []string   // rule comments in order
}

type kSet struct {
	typ   setType
	elems elemSet
	// synced is the desired content last applied to this set: while the
	// desired content is the same object, the set needs no diff.
	synced *setContent
	// shared: elems is a frozen content's map, not ours to modify.
	shared bool
}

func newKernelState() *kernelState {
	return &kernelState{chains: map[string]*kChain{}, sets: map[string]*kSet{}}
}

var ourTable = &nftables.Table{Name: tableName, Family: nftables.TableFamilyINet}

// readKernel reads our whole table: chains, every rule's comment (one dump),
// named sets and their elements.
func readKernel(ctx context.Context, lib *nftables.Conn, nl *nlConn) (*kernelState, error) {
	k := newKernelState()
	tables, err := lib.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list inet tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == tableName {
			k.table = true
		}
	}
	if !k.table {
		return k, nil
	}
	chains, err := lib.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for _, c := range chains {
		if c.Table == nil || c.Table.Name != tableName {
			continue
		}
		kc := &kChain{}
		if c.Hooknum != nil {
			kc.base = &baseChain{hook: uint32(*c.Hooknum), typ: string(c.Type)}
			if c.Priority != nil {
				kc.base.prio = int32(*c.Priority)
			}
		}
		k.chains[c.Name] = kc
	}
	rules, err := nl.dumpRules(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		kc := k.chains[r.chain]
		if kc == nil {
			// A chain created between the two dumps: unknown, so rewrite it.
			kc = &kChain{}
			k.chains[r.chain] = kc
		}
		kc.hashes = append(kc.hashes, r.comment)
	}
	sets, err := lib.GetSets(ourTable)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		if s.Anonymous {
			continue // bound to a rule; it goes and comes with the rule
		}
		var typ *setType
		for i := range allSetTypes {
			if allSetTypes[i].same(s) {
				typ = &allSetTypes[i]
				break
			}
		}
		if typ == nil {
			k.sets[s.Name] = &kSet{typ: setType{name: "foreign " + s.KeyType.Name}}
			continue
		}
		es, err := lib.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list elements of set %s: %w", s.Name, err)
		}
		k.sets[s.Name] = &kSet{typ: *typ, elems: elemsFromKernel(*typ, es)}
	}
	return k, ctx.Err()
}

// elemsFromKernel converts kernel elements to our form. An rbtree interval
// set lists starts and interval-end elements separately; they are paired
// in key order (at equal keys an end closes the previous range before a
// start opens the next).
func elemsFromKernel(t setType, es []nftables.SetElement) elemSet {
	out := make(elemSet, len(es))
	switch {
	case t.vmap:
		for _, e := range es {
			out.add(elem{key: padKey(e.Key, t.keyLen()), verdict: verdictFromData(e.Val)})
		}
	case t.isData():
		for _, e := range es {
			out.add(elem{key: padKey(e.Key, t.keyLen()), verdict: string(padKey(e.Val, fieldsLen(t.dataFields)))})
		}
	case t.concat():
		for _, e := range es {
			out.add(elem{key: e.Key, end: e.KeyEnd})
		}
	case t.interval:
		slices.SortFunc(es, func(a, b nftables.SetElement) int {
			if c := bytes.Compare(a.Key, b.Key); c != 0 {
				return c
			}
			switch {
			case a.IntervalEnd == b.IntervalEnd:
				return 0
			case a.IntervalEnd:
				return -1
			}
			return 1
		})
		var start []byte
		for _, e := range es {
			if e.IntervalEnd {
				if start != nil {
					out.add(elem{key: start, end: e.Key})
					start = nil
				}
				continue
			}
			if start != nil {
				out.add(elem{key: start}) // an open range, only valid at the top
			}
			start = e.Key
		}
		if start != nil {
			out.add(elem{key: start})
		}
	default:
		for _, e := range es {
			out.add(elem{key: e.Key})
		}
	}
	return out
}

// padKey restores the full 16-byte interface name the kernel may report
// without its trailing zeros.
func padKey(k []byte, n int) []byte {
	if len(k) >= n {
		return k
	}
	return append(slices.Clone(k), make([]byte, n-len(k))...)
}

// verdictFromData parses the nested verdict attributes of a map element.
func verdictFromData(b []byte) string {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ""
	}
	ad.ByteOrder = bigEndian
	var code int32
	var chain string
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			code = int32(ad.Uint32())
		case unix.NFTA_VERDICT_CHAIN:
			chain = ad.String()
		}
	}
	return verdictText(verdictKind(code), chain)
}

func commentOf(ud []byte) string {
	s, _ := userdata.GetString(ud, userdata.TypeComment)
	return s
}

// drift lists how the kernel (now) differs from what we believed (was).
func drift(was, now *kernelState) []string {
	var out []string
	if was.table != now.table {
		out = append(out, fmt.Sprintf("table present: was %v, now %v", was.table, now.table))
	}
	for _, n := range sortedKeys(was.chains) {
		nc := now.chains[n]
		switch {
		case nc == nil:
			out = append(out, "chain "+n+" missing")
		case !slices.Equal(nc.hashes, was.chains[n].hashes):
			out = append(out, fmt.Sprintf("chain %s rules differ (%d rules, expected %d)", n, len(nc.hashes), len(was.chains[n].hashes)))
		}
	}
	for _, n := range sortedKeys(now.chains) {
		if was.chains[n] == nil {
			out = append(out, "chain "+n+" unexpected")
		}
	}
	for _, n := range sortedKeys(was.sets) {
		ns := now.sets[n]
		switch {
		case ns == nil:
			out = append(out, "set "+n+" missing")
		case ns.typ.name != was.sets[n].typ.name:
			out = append(out, fmt.Sprintf("set %s has type %s", n, ns.typ.name))
		case !maps.Equal(ns.elems, was.sets[n].elems):
			out = append(out, fmt.Sprintf("set %s elements differ (%d, expected %d)", n, len(ns.elems), len(was.sets[n].elems)))
		}
	}
	for _, n := range sortedKeys(now.sets) {
		if was.sets[n] == nil {
			out = append(out, "set "+n+" unexpected")
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

var bigEndian = binary.BigEndian

func verdictKind(code int32) expr.VerdictKind { return expr.VerdictKind(code) }

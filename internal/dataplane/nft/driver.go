package nft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Options configure a Driver.
type Options struct {
	// NetNS is the path of the network namespace to program (e.g.
	// /run/netns/X); "" means the namespace the process is in.
	NetNS string
	// Logger receives drift reports and problems found in Desired; nil
	// means slog.Default() tagged component=nft (a caller's logger is used
	// as given).
	Logger *slog.Logger
}

// ApplyStats says what an Apply did and what the table holds afterwards.
type ApplyStats struct {
	// Changes sent in this Apply's batch.
	ChainsAdded, ChainsRewritten, ChainsDeleted int
	RulesWritten                                int
	SetsAdded, SetsDeleted                      int
	ElementsAdded, ElementsDeleted              int
	// Messages and Bytes of the batch; 0 when there was nothing to do.
	Messages, Bytes int
	// KernelRead is set when this Apply had to read the table first (the
	// first Apply, or the first after a failed one).
	KernelRead bool
	// Drifted counts differences the last Resync found between the kernel
	// and what had been programmed; this Apply repaired them.
	Drifted int
	// Rebuilt is set when the table held objects of ours that cannot be
	// changed in place, so the batch replaced the whole table.
	Rebuilt bool
	// Totals after the Apply.
	Endpoints, Policies, Chains, Rules, Sets, Elements int
	Duration                                           time.Duration
}

// Driver programs the "inet calico" table of one network namespace. Its
// methods are safe for concurrent use; they serialise on one mutex.
type Driver struct {
	mu      sync.Mutex
	byAddr  atomic.Bool // the desired state has host endpoints found by address
	log     *slog.Logger
	nsPath  string
	ns      *os.File
	lib     *nftables.Conn
	nl      *nlConn
	desired *dataplane.Desired
	cache   *cache
	k       *kernelState // nil: unknown, read it before diffing
	drifted int
	logged  map[string]bool // problems already reported
	// overflows counts lost event bursts seen by WatchTable.
	overflows atomic.Int64
}

// New opens netlink sockets in the namespace; it does not touch the
// ruleset (the first Apply reads it).
func New(opts Options) (*Driver, error) {
	d := &Driver{log: opts.Logger, nsPath: opts.NetNS, cache: newCache(), logged: map[string]bool{}}
	if d.log == nil {
		d.log = slog.Default().With("component", "nft")
	}
	libOpts := []nftables.ConnOption{nftables.AsLasting()}
	if opts.NetNS != "" {
		f, err := os.Open(opts.NetNS)
		if err != nil {
			return nil, fmt.Errorf("open network namespace: %w", err)
		}
		d.ns = f
		libOpts = append(libOpts, nftables.WithNetNSFd(int(f.Fd())))
	}
	lib, err := nftables.New(libOpts...)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open nftables connection in %s: %w", d.nsName(), err)
	}
	d.lib = lib
	if err := d.ensureConn(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Driver) nsName() string {
	if d.nsPath == "" {
		return "the current network namespace"
	}
	return d.nsPath
}

func (d *Driver) nsFd() int {
	if d.ns == nil {
		return 0
	}
	return int(d.ns.Fd())
}

func (d *Driver) ensureConn() error {
	if d.nl != nil {
		return nil
	}
	nl, err := dialNetfilter(d.nsFd())
	if err != nil {
		return fmt.Errorf("%s: %w", d.nsName(), err)
	}
	d.nl = nl
	return nil
}

// Close releases the sockets. The ruleset stays as it is.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	if d.nl != nil {
		errs = append(errs, d.nl.close())
		d.nl = nil
	}
	if d.lib != nil {
		errs = append(errs, d.lib.CloseLasting())
		d.lib = nil
	}
	if d.ns != nil {
		errs = append(errs, d.ns.Close())
		d.ns = nil
	}
	return errors.Join(errs...)
}

// SetDesired records the state the next Apply should program. It does no
// I/O. The driver keeps d: the caller must not modify it afterwards.
func (d *Driver) SetDesired(desired *dataplane.Desired) {
	d.mu.Lock()
	d.desired = desired
	d.byAddr.Store(desired != nil && needsAddrs(&desired.Hosts))
	d.mu.Unlock()
}

// Apply makes the table match the last SetDesired, sending only the
// difference from what it last programmed, in one atomic batch. After a
// failure the next Apply reads the kernel again before diffing.
func (d *Driver) Apply(ctx context.Context) (ApplyStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	var st ApplyStats
	if d.desired == nil {
		return st, errors.New("apply nftables: no desired state set")
	}
	if d.lib == nil {
		return st, errors.New("apply nftables: driver closed")
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := d.ensureConn(); err != nil {
		return st, err
	}
	desired, err := d.withResolvedHosts(d.desired)
	if err != nil {
		return st, err
	}
	m := compile(desired, d.cache)
	tCompile := time.Since(start)
	d.reportProblems(m)
	if d.k == nil {
		k, err := readKernel(ctx, d.lib, d.nl)
		if err != nil {
			d.resetConn()
			return st, fmt.Errorf("read nftables state of %s: %w", d.nsName(), err)
		}
		d.k = k
		st.KernelRead = true
	}
	st.Drifted = d.drifted
	b, commit := d.plan(m, d.k, &st)
	tPlan := time.Since(start)
	if b != nil {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := d.nl.send(ctx, b); err != nil {
			d.k = nil
			d.resetConn()
			return st, fmt.Errorf("apply nftables batch (%d messages) in %s: %w", st.Messages, d.nsName(), err)
		}
		commit()
	}
	d.log.Debug("nft apply phases", "compile", tCompile, "plan", tPlan-tCompile, "send", time.Since(start)-tPlan)
	d.drifted = 0
	for _, c := range m.chains {
		c.rules = nil // compiled again only if the chain must be rewritten
		st.Rules += len(c.hashes)
	}
	for _, s := range m.sets {
		st.Elements += len(s.content.elems)
	}
	st.Endpoints, st.Policies, st.Chains, st.Sets = m.endpoints, m.policies, len(m.chains), len(m.sets)
	st.Duration = time.Since(start)
	return st, nil
}

// Resync reads the kernel's table and records every difference from what
// was programmed as drift; the next Apply repairs it.
func (d *Driver) Resync(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lib == nil {
		return errors.New("resync nftables: driver closed")
	}
	if err := d.ensureConn(); err != nil {
		return err
	}
	now, err := readKernel(ctx, d.lib, d.nl)
	if err != nil {
		d.resetConn()
		return fmt.Errorf("resync nftables state of %s: %w", d.nsName(), err)
	}
	if d.k == nil {
		d.k = now
		return nil
	}
	diffs := drift(d.k, now)
	if len(diffs) > 0 {
		d.log.Warn("nftables table differs from what was programmed; the next apply repairs it",
			"netns", d.nsName(), "differences", len(diffs), "first", diffs[:min(len(diffs), 5)])
	}
	d.drifted += len(diffs)
	// Sets found exactly as programmed keep their "synced" mark, so the
	// next Apply does not diff them again.
	for name, ks := range now.sets {
		if old := d.k.sets[name]; old != nil && old.synced != nil && old.typ.name == ks.typ.name && maps.Equal(old.elems, ks.elems) {
			ks.synced, ks.elems, ks.shared = old.synced, old.elems, old.shared
		}
	}
	d.k = now
	return nil
}

func (d *Driver) resetConn() {
	if d.nl != nil {
		_ = d.nl.close()
		d.nl = nil
	}
}

func (d *Driver) reportProblems(m *model) {
	for _, p := range m.problems {
		if !d.logged[p] {
			d.logged[p] = true
			d.log.Warn("desired dataplane state has a problem", "problem", p)
		}
	}
	if len(d.logged) > 10000 {
		d.logged = map[string]bool{}
	}
}

func sameBase(a, b *baseChain) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.hook == b.hook && a.prio == b.prio && a.typ == b.typ
}

// plan encodes the batch that turns k into m (nil when nothing differs)
// and returns the function that records the result in k once applied.
func (d *Driver) plan(m *model, k *kernelState, st *ApplyStats) (*batch, func()) {
	d.nl.seq += 1 << 20 // a fresh range of sequence numbers per batch
	b := newBatch(d.nl.seq)
	cur := k
	for name, ms := range m.sets {
		if ks := k.sets[name]; ks != nil && ks.typ.name != ms.typ.name {
			k.unfixable = append(k.unfixable, "set "+name+" has type "+ks.typ.name)
		}
	}
	for name, mc := range m.chains {
		if kc := k.chains[name]; kc != nil && !sameBase(kc.base, mc.base) {
			k.unfixable = append(k.unfixable, "chain "+name+" has another hook")
		}
	}
	if len(k.unfixable) > 0 {
		d.log.Warn("nftables table holds objects that cannot be changed in place; replacing the table in one transaction",
			"netns", d.nsName(), "objects", k.unfixable)
		st.Rebuilt = true
		if k.table {
			b.delTable()
		}
		cur = newKernelState()
	}
	if !cur.table {
		b.addTable()
	}
	setNames := sortedKeys(m.sets)
	for _, name := range setNames {
		if cur.sets[name] == nil {
			ms := m.sets[name]
			b.addSet(name, 0, ms.typ, ms.comment, false)
			st.SetsAdded++
		}
	}
	for _, name := range m.order {
		if cur.chains[name] == nil {
			b.addChain(name, m.chains[name].base, m.chains[name].comment)
			st.ChainsAdded++
		}
	}
	// Elements: all removals before all additions, so a range that is
	// split or merged never overlaps its old self.
	var updates []setUpdate
	for _, name := range setNames {
		ms := m.sets[name]
		ks := cur.sets[name]
		if ks != nil && ks.synced == ms.content {
			continue
		}
		u := setUpdate{name: name, typ: ms.typ, content: ms.content}
		if ks != nil && ms.content.prev != nil && ks.synced == ms.content.prev {
			u.adds, u.dels = ms.content.adds, ms.content.dels
		} else {
			var have elemSet
			if ks != nil {
				have = ks.elems
			}
			for key, v := range have {
				if w, ok := ms.content.elems[key]; !ok || w != v {
					u.dels = append(u.dels, ms.typ.decode(key, v))
				}
			}
			for key, v := range ms.content.elems {
				if w, ok := have[key]; !ok || w != v {
					u.adds = append(u.adds, ms.typ.decode(key, v))
				}
			}
			// Key order: deterministic batches, and nft lists pipapo
			// sets in insertion order.
			slices.SortFunc(u.adds, cmpElem)
			slices.SortFunc(u.dels, cmpElem)
		}
		updates = append(updates, u)
	}
	for _, u := range updates {
		if len(u.dels) > 0 {
			b.elems(unix.NFT_MSG_DELSETELEM, u.name, 0, u.typ, u.dels)
			st.ElementsDeleted += len(u.dels)
		}
	}
	for _, u := range updates {
		if len(u.adds) > 0 {
			b.elems(unix.NFT_MSG_NEWSETELEM, u.name, 0, u.typ, u.adds)
			st.ElementsAdded += len(u.adds)
		}
	}
	var written []*chainModel
	for _, name := range m.order {
		mc := m.chains[name]
		kc := cur.chains[name]
		if kc != nil {
			if slices.Equal(kc.hashes, mc.hashes) {
				continue
			}
			b.flushChain(name)
			st.ChainsRewritten++
		}
		for i, r := range mc.compiled() {
			b.addRule(name, r, mc.hashes[i])
		}
		st.RulesWritten += len(mc.hashes)
		written = append(written, mc)
	}
	var goneChains, goneSets []string
	for _, name := range sortedKeys(cur.chains) {
		if m.chains[name] == nil {
			goneChains = append(goneChains, name)
			b.flushChain(name) // drop its references before any chain goes
		}
	}
	// Sets go before chains: a verdict map's elements may jump to a chain
	// that goes too (host endpoint dispatch).
	for _, name := range sortedKeys(cur.sets) {
		if m.sets[name] == nil {
			goneSets = append(goneSets, name)
			b.delSet(name)
		}
	}
	st.SetsDeleted = len(goneSets)
	for _, name := range goneChains {
		b.delChain(name)
	}
	st.ChainsDeleted = len(goneChains)
	commit := func() {
		k.table = true
		k.unfixable = nil
		if cur != k {
			k.chains, k.sets = cur.chains, cur.sets
		}
		for _, u := range updates {
			ks := k.sets[u.name]
			if ks == nil || ks.typ.name != u.typ.name {
				ks = &kSet{typ: u.typ, elems: make(elemSet, len(u.adds))}
				k.sets[u.name] = ks
			}
			ks.synced = u.content
			if u.content.frozen {
				// The set now holds exactly this content, which never
				// changes: share it rather than keep a second copy.
				ks.elems, ks.shared = u.content.elems, true
				continue
			}
			if ks.shared {
				ks.elems, ks.shared = maps.Clone(ks.elems), false
			}
			for _, e := range u.dels {
				delete(ks.elems, e.mapKey())
			}
			for _, e := range u.adds {
				ks.elems.add(e)
			}
		}
		for _, mc := range written {
			k.chains[mc.name] = &kChain{base: mc.base, hashes: mc.hashes}
		}
		for _, name := range goneChains {
			delete(k.chains, name)
		}
		for _, name := range goneSets {
			delete(k.sets, name)
		}
	}
	if b.ops == 0 {
		// Nothing to send, but sets found equal are now known to be so.
		commit()
		return nil, nil
	}
	st.Messages = b.ops
	// BATCH_END, added by send, is one more header.
	st.Bytes = len(b.buf) + nlmsgHdrLen + nfgenHdrLen
	return b, commit
}

// setUpdate is the change plan of one named set.
type setUpdate struct {
	name       string
	typ        setType
	content    *setContent
	adds, dels []elem
}

func cmpElem(a, b elem) int {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	return bytes.Compare(a.end, b.end)
}

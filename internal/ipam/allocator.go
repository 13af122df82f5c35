package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// DefaultMaxRetries bounds the compare-and-swap attempts of one call, as
// Calico's IPAM does.
const DefaultMaxRetries = 100

// Allocator assigns and releases addresses. It keeps no state between calls
// other than statistics: every decision is made on data read in the call and
// committed by compare-and-swap, so any number of allocators (processes,
// hosts) can run at once.
type Allocator struct {
	store      datastore.Store
	now        func() time.Time
	maxRetries int
	log        *slog.Logger

	calls, assigned, retries, maxCallRetries atomic.Int64

	// hints remembers, per node and family, the block this allocator last
	// assigned from. Only a guess to try first: it is read back and written
	// by compare-and-swap like any other block.
	hintMu sync.Mutex
	hints  map[string]netip.Prefix
}

// Option configures an Allocator.
type Option func(*Allocator)

// WithClock replaces time.Now (tests of the empty-block grace period).
func WithClock(now func() time.Time) Option { return func(a *Allocator) { a.now = now } }

// WithMaxRetries sets the default retry bound of a call (DefaultMaxRetries).
func WithMaxRetries(n int) Option { return func(a *Allocator) { a.maxRetries = n } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(a *Allocator) { a.log = l } }

// New returns an allocator over store.
func New(store datastore.Store, opts ...Option) *Allocator {
	a := &Allocator{store: store, now: time.Now, maxRetries: DefaultMaxRetries, log: slog.Default(), hints: map[string]netip.Prefix{}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Stats counts assignment calls of this Allocator and the compare-and-swap
// retries they needed.
type Stats struct {
	Calls          int64 // AutoAssign and AssignIP calls that succeeded
	Assigned       int64 // addresses they assigned
	Retries        int64 // conflicting writes retried, in total
	MaxCallRetries int64 // the most retries one call needed
}

// Stats returns the counters so far.
func (a *Allocator) Stats() Stats {
	return Stats{Calls: a.calls.Load(), Assigned: a.assigned.Load(), Retries: a.retries.Load(), MaxCallRetries: a.maxCallRetries.Load()}
}

func (a *Allocator) record(n, retries int) {
	a.calls.Add(1)
	a.assigned.Add(int64(n))
	a.retries.Add(int64(retries))
	for {
		m := a.maxCallRetries.Load()
		if int64(retries) <= m || a.maxCallRetries.CompareAndSwap(m, int64(retries)) {
			return
		}
	}
}

// AssignArgs is a request for addresses.
type AssignArgs struct {
	// Handle names the assignment (one per endpoint); required.
	Handle string
	// Node asks; its affine blocks are used first; required.
	Node string
	// Num4 and Num6: how many addresses of each family.
	Num4, Num6 int
	// Pools4 and Pools6 restrict the pools used (by CIDR); empty: every
	// enabled pool whose nodeSelector matches the node.
	Pools4, Pools6 []netip.Prefix
	// Attrs records what the addresses are for; Attrs.Node defaults to Node.
	Attrs Attrs
	// MaxRetries bounds compare-and-swap attempts; 0: the allocator's default.
	MaxRetries int
}

// AssignResult is what AutoAssign gave.
type AssignResult struct {
	IPv4, IPv6 []netip.Addr
	// Existing: the handle already held addresses of every family asked for,
	// and those came back unchanged (an idempotent repeat).
	Existing bool
	// Retries is how many conflicting writes this call retried.
	Retries int
}

// call is the state of one assignment call.
type call struct {
	handle     string
	h          *Handle
	hrev       int64
	retries    int
	maxRetries int
	recheck    bool         // a write conflicted: the handle may have changed under us
	fresh      bool         // nothing assigned yet in this call
	got        []netip.Addr // assigned so far for the family in progress
	num        int          // asked for the family in progress
	reserved   Reserved     // IPReservation networks: never assigned here
}

// AutoAssign assigns Num4 IPv4 and Num6 IPv6 addresses to args.Handle. If the
// handle already holds addresses of a family, those are returned for that
// family instead (idempotent). On error nothing new stays assigned.
func (a *Allocator) AutoAssign(ctx context.Context, args AssignArgs) (AssignResult, error) {
	var res AssignResult
	if err := validName("handle", args.Handle); err != nil {
		return res, err
	}
	if err := validName("node", args.Node); err != nil {
		return res, err
	}
	if args.Num4 < 0 || args.Num6 < 0 || args.Num4+args.Num6 == 0 {
		return res, fmt.Errorf("ask for at least one address (num4=%d, num6=%d)", args.Num4, args.Num6)
	}
	attrs := args.Attrs
	if attrs.Node == "" {
		attrs.Node = args.Node
	}
	if err := attrs.Validate(); err != nil {
		return res, err
	}
	attrs.Assigned = a.now()
	cfg, err := a.Config(ctx)
	if err != nil {
		return res, err
	}
	pools, err := a.Pools(ctx)
	if err != nil {
		return res, err
	}
	labels, err := a.nodeLabels(ctx, args.Node)
	if err != nil {
		return res, err
	}
	c := &call{handle: args.Handle, maxRetries: args.MaxRetries, fresh: true}
	if c.maxRetries <= 0 {
		c.maxRetries = a.maxRetries
	}
	if c.h, c.hrev, err = a.getHandle(ctx, args.Handle); err != nil {
		return res, err
	}
	if c.reserved, err = a.Reservations(ctx); err != nil {
		return res, err
	}
	var fresh []netip.Addr
	existing := true
	for _, f := range []struct {
		fam      int
		num      int
		restrict []netip.Prefix
		out      *[]netip.Addr
	}{{4, args.Num4, args.Pools4, &res.IPv4}, {6, args.Num6, args.Pools6, &res.IPv6}} {
		if f.num == 0 {
			continue
		}
		held, err := a.handleAddrs(ctx, c.h, args.Handle, f.fam)
		if err != nil {
			return res, a.rollback(ctx, fresh, err)
		}
		if len(held) > 0 {
			*f.out = held
			continue
		}
		fp, err := SelectPoolsFor(pools, useOf(attrs.Type), f.fam, args.Node, labels, f.restrict)
		if err != nil {
			return res, a.rollback(ctx, fresh, err)
		}
		ips, held, err := a.assignFamily(ctx, c, f.fam, f.num, args.Node, fp, cfg, attrs.Secondary())
		fresh = append(fresh, ips...)
		if err != nil {
			return res, a.rollback(ctx, fresh, err)
		}
		if held != nil {
			*f.out = held
			continue
		}
		existing = false
		*f.out = ips
	}
	res.Existing = existing
	res.Retries = c.retries
	a.record(len(fresh), c.retries)
	if len(fresh) > 0 {
		a.log.Debug("ipam: assigned", "handle", args.Handle, "node", args.Node, "ips", fresh, "retries", c.retries)
	}
	return res, nil
}

// rollback releases what a failed call assigned, then returns err.
func (a *Allocator) rollback(ctx context.Context, ips []netip.Addr, err error) error {
	if len(ips) == 0 {
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, rerr := a.ReleaseIPs(rctx, ips...); rerr != nil {
		a.log.Warn("ipam: could not release the addresses of a failed assignment; calico ipam check will report them", "ips", ips, "error", rerr)
		return fmt.Errorf("%w (and releasing the %d addresses it took failed: %v)", err, len(ips), rerr)
	}
	return err
}

// assignFamily assigns num addresses of one family. If a concurrent call
// with the same handle got there first, it returns that call's addresses in
// held instead.
func (a *Allocator) assignFamily(ctx context.Context, c *call, fam, num int, node string, pools []Pool, cfg Config, sec map[string]string) (got, held []netip.Addr, err error) {
	for len(got) < num {
		if err := ctx.Err(); err != nil {
			return got, nil, err
		}
		if c.retries > c.maxRetries {
			return got, nil, fmt.Errorf("%w: gave up assigning for handle %q after %d retries", ErrTooManyRetries, c.handle, c.retries-1)
		}
		if c.recheck && c.fresh {
			// A same-handle request may have won the race: be idempotent.
			c.recheck = false
			if h, err := a.handleAddrs(ctx, c.h, c.handle, fam); err != nil {
				return got, nil, err
			} else if len(h) > 0 {
				return nil, h, nil
			}
		}
		need := num - len(got)
		c.got, c.num = got, num
		ips, done, err := a.assignStep(ctx, c, fam, need, node, pools, cfg, sec)
		if err != nil {
			return got, nil, err
		}
		if done {
			got = append(got, ips...)
			c.fresh = c.fresh && len(ips) == 0
		}
	}
	return got, nil, nil
}

type blockKV struct {
	b   *Block
	rev int64
}

// assignStep makes one attempt: one write of up to need addresses. done is
// false when the write lost a race (the caller loops).
func (a *Allocator) assignStep(ctx context.Context, c *call, fam, need int, node string, pools []Pool, cfg Config, sec map[string]string) ([]netip.Addr, bool, error) {
	inPools := func(p netip.Prefix) bool {
		for _, pl := range pools {
			if pl.CIDR.Overlaps(p) {
				return true
			}
		}
		return false
	}
	// The block this allocator used last for the node, if it still has room.
	if h, ok := a.hint(node, fam); ok && inPools(h) {
		b, rev, err := a.getBlock(ctx, h)
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return nil, false, err
		}
		if err == nil && b.Host() == node && b.numFreeFor(c.reserved) > 0 {
			ips := b.assignFor(need, c.handle, sec, c.reserved)
			ok, err := a.commit(ctx, c, b.CIDR, len(ips), blockPut(b, rev))
			return ips, ok, err
		}
	}
	// The generation is read before the node's blocks, so that a claim made
	// on this view fails if another process claimed for the node meanwhile.
	genRev, gen, err := a.getClaimGen(ctx, node, fam)
	if err != nil {
		return nil, false, err
	}
	affs, _, err := a.store.List(ctx, AffinitiesPrefix(node, fam))
	if err != nil {
		return nil, false, fmt.Errorf("list affinities of node %q: %w", node, err)
	}
	var cidrs []netip.Prefix
	for _, kv := range affs {
		if _, p, ok := ParseAffinityKey(kv.Key); ok {
			cidrs = append(cidrs, p)
		}
	}
	sort.Slice(cidrs, func(i, j int) bool { return cidrs[i].Addr().Less(cidrs[j].Addr()) })
	affine, err := a.getBlocks(ctx, cidrs)
	if err != nil {
		return nil, false, err
	}
	nodeBlocks := 0
	for _, bk := range affine {
		if bk.b == nil || bk.b.Host() != node {
			continue // a dangling affinity: check reports it
		}
		b := bk.b
		nodeBlocks++
		if !inPools(b.CIDR) || b.numFreeFor(c.reserved) == 0 {
			continue
		}
		ips := b.assignFor(need, c.handle, sec, c.reserved)
		ok, err := a.commit(ctx, c, b.CIDR, len(ips), blockPut(b, bk.rev))
		if ok {
			a.setHint(node, fam, b.CIDR)
		}
		return ips, ok, err
	}

	all, bad, err := a.listBlocksChecked(ctx, fam)
	if err != nil {
		return nil, false, err
	}
	if cfg.AutoAllocateBlocks && (cfg.MaxBlocksPerHost <= 0 || nodeBlocks < cfg.MaxBlocksPerHost) {
		existing := make([]netip.Prefix, 0, len(all)+len(bad))
		for _, bk := range all {
			existing = append(existing, bk.b.CIDR)
		}
		for _, bb := range bad {
			if bb.cidr.IsValid() {
				existing = append(existing, bb.cidr) // unreadable, but taken
			}
		}
		for _, p := range pools {
			cidr, ok := FreeBlock(p, existing)
			if !ok {
				continue
			}
			b := NewBlock(cidr, node)
			ips := b.assignFor(need, c.handle, sec, c.reserved)
			ops := []datastore.Op{
				{Type: datastore.OpCreate, Key: BlockKey(cidr), Value: mustJSON(b)},
				{Type: datastore.OpPut, Key: AffinityKey(node, cidr), Value: confirmedAffinity},
				claimOp(node, fam, gen, genRev),
			}
			ok, err := a.commit(ctx, c, cidr, len(ips), ops...)
			if ok {
				a.setHint(node, fam, cidr)
				a.log.Info("ipam: claimed block", "node", node, "block", cidr)
			}
			return ips, ok, err
		}
	}

	if !cfg.StrictAffinity {
		for _, p := range pools {
			for _, bk := range all {
				b := bk.b
				if !p.CIDR.Overlaps(b.CIDR) || b.numFreeFor(c.reserved) == 0 || b.StrictAffinity || b.Host() == node {
					continue
				}
				ips := b.assignFor(need, c.handle, sec, c.reserved)
				ok, err := a.commit(ctx, c, b.CIDR, len(ips), blockPut(b, bk.rev))
				return ips, ok, err
			}
		}
	}
	return nil, false, exhausted(pools, all, node, nodeBlocks, cfg, c.got, c.num)
}

func (a *Allocator) hint(node string, fam int) (netip.Prefix, bool) {
	a.hintMu.Lock()
	defer a.hintMu.Unlock()
	p, ok := a.hints[claimKey(node, fam)]
	return p, ok
}

func (a *Allocator) setHint(node string, fam int, p netip.Prefix) {
	a.hintMu.Lock()
	defer a.hintMu.Unlock()
	if len(a.hints) > 1024 {
		clear(a.hints) // a guess per node; an allocator serves a few nodes
	}
	a.hints[claimKey(node, fam)] = p
}

// getBlocks reads blocks in parallel (a node may hold many); a missing
// block leaves a zero blockKV in its place.
func (a *Allocator) getBlocks(ctx context.Context, cidrs []netip.Prefix) ([]blockKV, error) {
	out := make([]blockKV, len(cidrs))
	errs := make([]error, len(cidrs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, c := range cidrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, rev, err := a.getBlock(ctx, c)
			if errors.Is(err, datastore.ErrNotFound) {
				return
			}
			out[i], errs[i] = blockKV{b: b, rev: rev}, err
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// exhausted builds the error naming the pools, their size and use. got are
// the addresses this call took so far (they are about to be rolled back, so
// they do not count as in use).
func exhausted(pools []Pool, all []blockKV, node string, nodeBlocks int, cfg Config, got []netip.Addr, num int) error {
	var parts []string
	otherFree := 0
	for _, p := range pools {
		inUse := 0
		for _, bk := range all {
			if p.CIDR.Overlaps(bk.b.CIDR) {
				inUse += bk.b.InUse()
				if bk.b.Host() != node {
					otherFree += bk.b.NumFree()
				}
			}
		}
		for _, ip := range got {
			if p.CIDR.Contains(ip) {
				inUse--
			}
		}
		parts = append(parts, fmt.Sprintf("%s (%s addresses, %d in use)", p.CIDR, PoolSize(p.CIDR), inUse))
	}
	what := "pool"
	if len(parts) > 1 {
		what = "pools"
	}
	msg := fmt.Sprintf("in %s %s", what, strings.Join(parts, ", "))
	if len(got) > 0 {
		msg += fmt.Sprintf("; asked for %d, only %d could be assigned", num, len(got))
	}
	if cfg.StrictAffinity && otherFree > 0 {
		msg += fmt.Sprintf("; strictAffinity is on, so the %d free addresses in other nodes' blocks cannot be borrowed", otherFree)
	}
	if cfg.MaxBlocksPerHost > 0 && nodeBlocks >= cfg.MaxBlocksPerHost {
		msg += fmt.Sprintf("; node %q holds maxBlocksPerHost=%d blocks", node, cfg.MaxBlocksPerHost)
	}
	if !cfg.AutoAllocateBlocks {
		msg += "; auto_allocate_blocks is off"
	}
	return fmt.Errorf("%w %s", ErrExhausted, msg)
}

// commit writes ops plus the handle's new count for block in one
// transaction. A lost race returns ok=false and counts a retry.
func (a *Allocator) commit(ctx context.Context, c *call, block netip.Prefix, n int, ops ...datastore.Op) (bool, error) {
	nh := c.h.clone()
	nh.add(block.String(), n)
	ops = append(ops, handleOp(c.handle, nh, c.hrev))
	rev, err := a.store.Txn(ctx, ops)
	if err == nil {
		c.h, c.hrev = nh, rev
		return true, nil
	}
	if !isRace(err) {
		return false, fmt.Errorf("write block %s: %w", block, err)
	}
	c.retries++
	c.recheck = true
	h, hrev, gerr := a.getHandle(ctx, c.handle)
	if gerr != nil {
		return false, gerr
	}
	c.h, c.hrev = h, hrev
	return false, nil
}

// isRace: a compare-and-swap lost to another writer.
func isRace(err error) bool {
	return errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrExists)
}

func blockPut(b *Block, rev int64) datastore.Op {
	return datastore.Op{Type: datastore.OpPut, Key: BlockKey(b.CIDR), Value: mustJSON(b), Revision: rev}
}

// handleOp writes the handle: create, compare-and-swap update, or delete
// when it holds nothing.
func handleOp(handle string, h *Handle, rev int64) datastore.Op {
	key := HandleKey(handle)
	if h.Total() == 0 {
		if rev == 0 {
			// Nothing stored and nothing to store: assert it is still absent.
			return datastore.Op{Type: datastore.OpDelete, Key: key}
		}
		return datastore.Op{Type: datastore.OpDelete, Key: key, Revision: rev}
	}
	h.HandleID = handle
	if rev == 0 {
		return datastore.Op{Type: datastore.OpCreate, Key: key, Value: mustJSON(h)}
	}
	return datastore.Op{Type: datastore.OpPut, Key: key, Value: mustJSON(h), Revision: rev}
}

func claimOp(node string, fam int, gen claimGen, rev int64) datastore.Op {
	gen.Claims++
	if rev == 0 {
		return datastore.Op{Type: datastore.OpCreate, Key: claimKey(node, fam), Value: mustJSON(gen)}
	}
	return datastore.Op{Type: datastore.OpPut, Key: claimKey(node, fam), Value: mustJSON(gen), Revision: rev}
}

func (h *Handle) clone() *Handle {
	n := &Handle{HandleID: h.HandleID, Deleted: h.Deleted, Block: map[string]int{}}
	for k, v := range h.Block {
		n.Block[k] = v
	}
	return n
}

// AssignIP assigns the specific address ip to handle for node. It fails with
// an *InUseError naming the holder if another handle has it; if handle
// already has it, it succeeds. The address must be in an enabled pool; if its
// block is unclaimed, node claims it.
func (a *Allocator) AssignIP(ctx context.Context, ip netip.Addr, handle, node string, attrs Attrs) error {
	if !ip.IsValid() {
		return errors.New("no address given")
	}
	ip = ip.Unmap()
	if err := validName("handle", handle); err != nil {
		return err
	}
	if err := validName("node", node); err != nil {
		return err
	}
	if attrs.Node == "" {
		attrs.Node = node
	}
	if err := attrs.Validate(); err != nil {
		return err
	}
	attrs.Assigned = a.now()
	sec := attrs.Secondary()
	pools, err := a.Pools(ctx)
	if err != nil {
		return err
	}
	pool, ok := PoolFor(pools, ip)
	if !ok {
		return fmt.Errorf("%s is not in any IPPool", ip)
	}
	if pool.Disabled {
		return fmt.Errorf("%s is in pool %s (ippool %q), which is disabled", ip, pool.CIDR, pool.Name)
	}
	fam := family(ip)
	c := &call{handle: handle, maxRetries: a.maxRetries}
	if c.h, c.hrev, err = a.getHandle(ctx, handle); err != nil {
		return err
	}
	for {
		if c.retries > c.maxRetries {
			return fmt.Errorf("%w: gave up assigning %s after %d retries", ErrTooManyRetries, ip, c.retries-1)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		all, err := a.listBlocks(ctx, fam)
		if err != nil {
			return err
		}
		var found *blockKV
		for i := range all {
			if all[i].b.CIDR.Contains(ip) {
				found = &all[i]
				break
			}
		}
		var ok bool
		if found != nil {
			changed, err := found.b.AssignAddr(ip, handle, sec)
			if err != nil || !changed {
				if err == nil {
					a.record(0, c.retries)
				}
				return err
			}
			ok, err = a.commit(ctx, c, found.b.CIDR, 1, blockPut(found.b, found.rev))
			if err != nil {
				return err
			}
		} else {
			genRev, gen, err := a.getClaimGen(ctx, node, fam)
			if err != nil {
				return err
			}
			b := NewBlock(BlockFor(pool, ip), node)
			if _, err := b.AssignAddr(ip, handle, sec); err != nil {
				return err
			}
			ok, err = a.commit(ctx, c, b.CIDR, 1,
				datastore.Op{Type: datastore.OpCreate, Key: BlockKey(b.CIDR), Value: mustJSON(b)},
				datastore.Op{Type: datastore.OpPut, Key: AffinityKey(node, b.CIDR), Value: confirmedAffinity},
				claimOp(node, fam, gen, genRev))
			if err != nil {
				return err
			}
		}
		if ok {
			a.record(1, c.retries)
			return nil
		}
	}
}

// SetHandleAttrs replaces the recorded attrs of every address held by handle
// (e.g. the Docker plugin names the endpoint once it exists).
func (a *Allocator) SetHandleAttrs(ctx context.Context, handle string, attrs Attrs) error {
	if err := attrs.Validate(); err != nil {
		return err
	}
	h, _, err := a.getHandle(ctx, handle)
	if err != nil {
		return err
	}
	if h.Total() == 0 {
		return fmt.Errorf("handle %q holds no addresses", handle)
	}
	for cidrS := range h.Block {
		cidr, err := netip.ParsePrefix(cidrS)
		if err != nil {
			continue
		}
		err = a.retryBlock(ctx, cidr, func(b *Block) (bool, error) {
			cur := b.AllocationList()
			i := slices.IndexFunc(cur, func(al Allocation) bool { return al.Handle == handle })
			if i < 0 {
				return false, nil
			}
			na := attrs
			if na.Node == "" {
				na.Node = cur[i].Attrs.Node
			}
			na.Assigned = cur[i].Attrs.Assigned
			return b.SetAttrs(handle, na.Secondary()) > 0, nil
		})
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return err
		}
	}
	return nil
}

// retryBlock reads a block, applies change, and writes it back by
// compare-and-swap until it sticks. change returns false to write nothing.
func (a *Allocator) retryBlock(ctx context.Context, cidr netip.Prefix, change func(*Block) (bool, error)) error {
	for i := 0; ; i++ {
		if i > a.maxRetries {
			return fmt.Errorf("%w: block %s", ErrTooManyRetries, cidr)
		}
		b, rev, err := a.getBlock(ctx, cidr)
		if err != nil {
			return err
		}
		write, err := change(b)
		if err != nil || !write {
			return err
		}
		_, err = a.store.Txn(ctx, []datastore.Op{blockPut(b, rev)})
		if err == nil {
			return nil
		}
		if !isRace(err) {
			return fmt.Errorf("write block %s: %w", cidr, err)
		}
	}
}

// ---- reads ----

// Config returns the IPAM configuration (DefaultConfig if none is stored).
func (a *Allocator) Config(ctx context.Context) (Config, error) {
	kv, err := a.store.Get(ctx, ConfigKey)
	if errors.Is(err, datastore.ErrNotFound) {
		return DefaultConfig, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("read ipam config: %w", err)
	}
	cfg := DefaultConfig
	if err := json.Unmarshal(kv.Value, &cfg); err != nil {
		return Config{}, fmt.Errorf("ipam config at %s: %w", ConfigKey, err)
	}
	return cfg, nil
}

// SetConfig stores the IPAM configuration.
func (a *Allocator) SetConfig(ctx context.Context, cfg Config) error {
	if cfg.MaxBlocksPerHost < 0 {
		return fmt.Errorf("maxBlocksPerHost %d must not be negative", cfg.MaxBlocksPerHost)
	}
	if _, err := a.store.Update(ctx, ConfigKey, mustJSON(cfg), 0); err != nil {
		if errors.Is(err, datastore.ErrNotFound) {
			_, err = a.store.Create(ctx, ConfigKey, mustJSON(cfg))
		}
		if err != nil {
			return fmt.Errorf("write ipam config: %w", err)
		}
	}
	return nil
}

// Pools returns every IPPool (enabled or not). Pools that cannot be used
// are logged and skipped.
func (a *Allocator) Pools(ctx context.Context) ([]Pool, error) {
	kvs, _, err := a.store.List(ctx, datastore.ResourcePrefix("ippools"))
	if err != nil {
		return nil, fmt.Errorf("list ippools: %w", err)
	}
	var out []Pool
	for _, kv := range kvs {
		r, err := resources.Decode(api.KindIPPool, kv)
		if err != nil {
			a.log.Warn("ipam: skipping an unreadable ippool", "key", kv.Key, "error", err)
			continue
		}
		p, err := PoolFromAPI(*r.(*api.IPPool))
		if err != nil {
			a.log.Warn("ipam: skipping an unusable ippool", "error", err)
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func (a *Allocator) nodeLabels(ctx context.Context, node string) (map[string]string, error) {
	kv, err := a.store.Get(ctx, datastore.ResourceKey("nodes", "", node))
	if errors.Is(err, datastore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read node %q: %w", node, err)
	}
	n, err := resources.Decode(api.KindNode, kv)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", node, err)
	}
	return n.GetObjectMeta().Labels, nil
}

func (a *Allocator) getBlock(ctx context.Context, cidr netip.Prefix) (*Block, int64, error) {
	kv, err := a.store.Get(ctx, BlockKey(cidr))
	if err != nil {
		return nil, 0, fmt.Errorf("read block %s: %w", cidr, err)
	}
	b, err := decodeBlock(kv)
	return b, kv.Revision, err
}

func decodeBlock(kv datastore.KV) (*Block, error) {
	var b Block
	if err := json.Unmarshal(kv.Value, &b); err != nil {
		return nil, fmt.Errorf("block at %s: %w", kv.Key, err)
	}
	if !b.CIDR.IsValid() {
		return nil, fmt.Errorf("block at %s has no cidr", kv.Key)
	}
	if len(b.Allocations) != prefixSize(b.CIDR) {
		return nil, fmt.Errorf("block %s has %d allocations for %d addresses", b.CIDR, len(b.Allocations), prefixSize(b.CIDR))
	}
	return &b, nil
}

// listBlocks returns every block of a family, in address order. Unreadable
// blocks are logged and skipped.
func (a *Allocator) listBlocks(ctx context.Context, fam int) ([]blockKV, error) {
	out, bad, err := a.listBlocksChecked(ctx, fam)
	for _, e := range bad {
		a.log.Warn("ipam: skipping an unreadable block", "error", e.err)
	}
	return out, err
}

// badBlock is a block key whose value does not decode.
type badBlock struct {
	cidr netip.Prefix // from the key; invalid if the key does not parse either
	err  error
}

// listBlocksChecked is listBlocks that also returns the unreadable blocks.
func (a *Allocator) listBlocksChecked(ctx context.Context, fam int) ([]blockKV, []badBlock, error) {
	kvs, _, err := a.store.List(ctx, BlocksPrefix(fam))
	if err != nil {
		return nil, nil, fmt.Errorf("list blocks: %w", err)
	}
	out := make([]blockKV, 0, len(kvs))
	var bad []badBlock
	for _, kv := range kvs {
		b, err := decodeBlock(kv)
		if err != nil {
			c, _ := ParseBlockKey(kv.Key)
			bad = append(bad, badBlock{cidr: c, err: err})
			continue
		}
		out = append(out, blockKV{b: b, rev: kv.Revision})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].b.CIDR.Addr().Less(out[j].b.CIDR.Addr()) })
	return out, bad, nil
}

func (a *Allocator) getHandle(ctx context.Context, handle string) (*Handle, int64, error) {
	kv, err := a.store.Get(ctx, HandleKey(handle))
	if errors.Is(err, datastore.ErrNotFound) {
		return &Handle{HandleID: handle, Block: map[string]int{}}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read handle %q: %w", handle, err)
	}
	h := &Handle{}
	if err := json.Unmarshal(kv.Value, h); err != nil {
		return nil, 0, fmt.Errorf("handle %q: %w", handle, err)
	}
	if h.Block == nil {
		h.Block = map[string]int{}
	}
	return h, kv.Revision, nil
}

func (a *Allocator) getClaimGen(ctx context.Context, node string, fam int) (int64, claimGen, error) {
	var g claimGen
	kv, err := a.store.Get(ctx, claimKey(node, fam))
	if errors.Is(err, datastore.ErrNotFound) {
		return 0, g, nil
	}
	if err != nil {
		return 0, g, fmt.Errorf("read claim generation of node %q: %w", node, err)
	}
	_ = json.Unmarshal(kv.Value, &g) // only its revision matters
	return kv.Revision, g, nil
}

// handleAddrs returns the addresses of one family the handle holds, sorted.
func (a *Allocator) handleAddrs(ctx context.Context, h *Handle, handle string, fam int) ([]netip.Addr, error) {
	var out []netip.Addr
	for cidrS := range h.Block {
		cidr, err := netip.ParsePrefix(cidrS)
		if err != nil || family(cidr.Addr()) != fam {
			continue
		}
		b, _, err := a.getBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, b.AddrsOf(handle)...)
	}
	slices.SortFunc(out, func(x, y netip.Addr) int { return x.Compare(y) })
	return out, nil
}

// HandleAddrs returns every address the handle holds (both families), sorted.
func (a *Allocator) HandleAddrs(ctx context.Context, handle string) ([]netip.Addr, error) {
	h, _, err := a.getHandle(ctx, handle)
	if err != nil {
		return nil, err
	}
	v4, err := a.handleAddrs(ctx, h, handle, 4)
	if err != nil {
		return nil, err
	}
	v6, err := a.handleAddrs(ctx, h, handle, 6)
	if err != nil {
		return nil, err
	}
	return append(v4, v6...), nil
}

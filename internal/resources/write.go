package resources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
)

// Mode is what a write does with a resource that exists or not.
type Mode int

const (
	// ModeApply creates or updates.
	ModeApply Mode = iota
	// ModeCreate fails for a resource that exists.
	ModeCreate
	// ModeReplace fails for a resource that does not exist.
	ModeReplace
)

func (m Mode) verb() string { return [...]string{"apply", "create", "replace"}[m] }

// Result counts what Write or DeleteAll did.
type Result struct {
	// Kinds are the kinds of the resources handled.
	Kinds map[string]bool
	// Handled resources were written (or found unchanged) or deleted.
	Handled int
	// Skipped resources existed (create with skipExists) or did not
	// (delete with skipNotExists).
	Skipped int
}

func (r *Result) add(kind string) {
	if r.Kinds == nil {
		r.Kinds = map[string]bool{}
	}
	r.Kinds[kind] = true
	r.Handled++
}

// listThreshold: with more resources of one kind than this in a write, the
// current state of the kind is read with one List instead of a Get each.
const listThreshold = 8

// problem is why one document cannot be written; named when the error
// already names the resource.
type problem struct {
	doc   api.Document
	err   error
	named bool
}

// plan is what a write will do.
type plan struct {
	res      *Result
	ops      []datastore.Op
	problems []problem
	// unchangedRev is the revision of the one resource of a single write
	// that was already stored as it would be written.
	unchangedRev int64
}

// Write writes the documents in one transaction: all of them or, when any
// cannot be written, none. Each is defaulted, validated, checked against
// the stored state and given its metadata (see the package comment). The
// documents are taken as complete: a field of Calico's schema that a
// document leaves out is removed from the stored value (fields this
// project does not know at all are kept). Errors name the document.
func (c *Client) Write(ctx context.Context, docs []api.Document, mode Mode, skipExists bool) (*Result, error) {
	p, err := c.plan(ctx, docs, mode, skipExists, true)
	if err != nil {
		return nil, err
	}
	if len(p.problems) > 0 {
		errs := make([]error, len(p.problems))
		for i, pr := range p.problems {
			errs[i] = pr.doc.Error(pr.err)
		}
		return nil, fmt.Errorf("nothing was written:\n%w", errors.Join(errs...))
	}
	if len(p.ops) == 0 {
		return p.res, nil
	}
	if _, err := c.st.Txn(ctx, p.ops); err != nil {
		if errors.Is(err, datastore.ErrExists) || errors.Is(err, datastore.ErrConflict) {
			return nil, fmt.Errorf("nothing was written: the datastore changed while the manifest was being applied; run the command again: %w", err)
		}
		return nil, fmt.Errorf("nothing was written: %w%s", err, txnLimitHint(err, len(p.ops)))
	}
	return p.res, nil
}

// plan works out the transaction that writes docs. full: the documents are
// complete (api.EncodeStoredApply), else api.EncodeStored decides from
// where each resource came.
func (c *Client) plan(ctx context.Context, docs []api.Document, mode Mode, skipExists, full bool) (*plan, error) {
	if err := checkDuplicates(docs); err != nil {
		return nil, err
	}
	cur, err := c.readAll(ctx, docs)
	if err != nil {
		return nil, err
	}
	now := c.now().UTC().Format(time.RFC3339)
	p := &plan{res: &Result{}}
	pools := otherPools(cur, docs) // the pools as they will be, for the overlap check
	tiers := newTierChecker(c, docs)

	for _, d := range docs {
		r := d.Resource
		fail := func(err error, named bool) { p.problems = append(p.problems, problem{doc: d, err: err, named: named}) }
		if isBuiltinProfile(r) {
			// Never stored; its resourceVersion is always 1.
			if err := checkBuiltinProfile(r); err != nil {
				fail(err, true)
				continue
			}
			p.res.add(r.Kind())
			continue
		}
		api.Default(r)
		if err := api.Validate(r); err != nil {
			fail(err, false)
			continue
		}
		key := KeyOf(r)
		kv, exists := cur[key]
		switch {
		case mode == ModeCreate && exists && skipExists:
			p.res.Skipped++
			continue
		case mode == ModeCreate && exists:
			fail(fmt.Errorf("%s %w", api.Ident(r), datastore.ErrExists), true)
			continue
		case mode == ModeReplace && !exists:
			fail(missingError(api.Ident(r)), true)
			continue
		}
		if err := staleVersion(r, kv, exists); err != nil {
			fail(err, true)
			continue
		}
		if api.IsTiered(r.Kind()) && !exists {
			refusal, err := tiers.check(ctx, r)
			if err != nil {
				return nil, err
			}
			if refusal != nil {
				fail(refusal, false)
				continue
			}
		}
		var old api.Resource
		if exists {
			if old, err = Decode(r.Kind(), kv); err != nil {
				return nil, err
			}
		}
		setMeta(r, old, c.uid, now)
		if pool, ok := r.(*api.IPPool); ok {
			if err := checkPoolUpdate(old, pool); err != nil {
				fail(err, false)
				continue
			}
			if err := CheckPoolOverlap(pools, *pool); err != nil {
				fail(err, false)
				continue
			}
			pools = append(pools, *pool)
		}
		var prev []byte
		if exists {
			prev = kv.Value
		}
		encode := api.EncodeStored
		if full {
			encode = api.EncodeStoredApply
		}
		value, err := encode(r, prev)
		if err != nil {
			return nil, d.Error(err)
		}
		p.res.add(r.Kind())
		if exists && api.SameStored(r.Kind(), value, kv.Value) {
			// Unchanged: writing would only bump the revision.
			p.unchangedRev = kv.Revision
			continue
		}
		if exists {
			p.ops = append(p.ops, datastore.Op{Type: datastore.OpPut, Key: key, Value: value, Revision: kv.Revision})
		} else {
			p.ops = append(p.ops, datastore.Op{Type: datastore.OpCreate, Key: key, Value: value})
		}
	}
	return p, nil
}

// setMeta gives r the identity it keeps for life: an update keeps the
// stored uid and creationTimestamp, a new resource gets new ones whatever
// it carries.
func setMeta(r, old api.Resource, uid func() string, now string) {
	m := r.GetObjectMeta()
	if old != nil {
		om := old.GetObjectMeta()
		m.UID, m.CreationTimestamp = om.UID, om.CreationTimestamp
	}
	if m.UID == "" || old == nil {
		m.UID = uid()
	}
	if m.CreationTimestamp == "" || old == nil {
		m.CreationTimestamp = now
	}
}

// otherPools are the stored pools (read by readAll) that docs do not write.
func otherPools(cur map[string]datastore.KV, docs []api.Document) []api.IPPool {
	writing := map[string]bool{}
	for _, d := range docs {
		if p, ok := d.Resource.(*api.IPPool); ok {
			writing[p.Name] = true
		}
	}
	var pools []api.IPPool
	for k, kv := range cur {
		if plural, _, name, ok := datastore.ParseResourceKey(k); ok && plural == "ippools" && !writing[name] {
			if r, err := Decode(api.KindIPPool, kv); err == nil {
				pools = append(pools, *r.(*api.IPPool))
			}
		}
	}
	return pools
}

// missingError says a resource does not exist; it matches
// datastore.ErrNotFound.
type missingError string

func (e missingError) Error() string        { return string(e) + " does not exist" }
func (e missingError) Is(target error) bool { return target == datastore.ErrNotFound }

// readCurrent reads the stored state of the given keys of one kind: a List
// of the kind when there are many, else a Get each. Missing keys are absent
// from the map.
func (c *Client) readCurrent(ctx context.Context, plural string, keys []string, forceList bool) (map[string]datastore.KV, error) {
	cur := make(map[string]datastore.KV, len(keys))
	if forceList || len(keys) > listThreshold {
		kvs, _, err := c.st.List(ctx, datastore.ResourcePrefix(plural))
		if err != nil {
			return nil, err
		}
		want := make(map[string]bool, len(keys))
		for _, k := range keys {
			want[k] = true
		}
		for _, kv := range kvs {
			if want[kv.Key] || forceList {
				cur[kv.Key] = kv
			}
		}
		return cur, nil
	}
	for _, k := range keys {
		kv, err := c.st.Get(ctx, k)
		switch {
		case errors.Is(err, datastore.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			cur[k] = kv
		}
	}
	return cur, nil
}

// readAll reads the stored state of every key the documents name, grouped
// by kind. IPPools are always listed whole: new pools are checked against
// every existing one for overlap.
func (c *Client) readAll(ctx context.Context, docs []api.Document) (map[string]datastore.KV, error) {
	byPlural := map[string][]string{}
	var order []string
	for _, d := range docs {
		p := api.Info(d.Resource).Plural
		if _, ok := byPlural[p]; !ok {
			order = append(order, p)
		}
		byPlural[p] = append(byPlural[p], KeyOf(d.Resource))
	}
	all := map[string]datastore.KV{}
	for _, p := range order {
		cur, err := c.readCurrent(ctx, p, byPlural[p], p == "ippools")
		if err != nil {
			return nil, fmt.Errorf("read current state: %w", err)
		}
		for k, v := range cur {
			all[k] = v
		}
	}
	return all, nil
}

// checkDuplicates refuses documents that name one resource twice: the
// transaction could not say which of the two wins.
func checkDuplicates(docs []api.Document) error {
	seen := map[string]api.Document{}
	var problems []error
	for _, d := range docs {
		k := KeyOf(d.Resource)
		if first, dup := seen[k]; dup {
			problems = append(problems, d.Error(fmt.Errorf("%s is also in document %d", api.Ident(d.Resource), first.Document)))
			continue
		}
		seen[k] = d
	}
	return errors.Join(problems...)
}

// staleVersion reports whether r names a resourceVersion that is not the
// stored one.
func staleVersion(r api.Resource, cur datastore.KV, exists bool) error {
	rv := r.GetObjectMeta().ResourceVersion
	if rv == "" {
		return nil
	}
	if !exists {
		return fmt.Errorf("%w: resourceVersion %s given but %s does not exist", datastore.ErrConflict, rv, api.Ident(r))
	}
	if rv != strconv.FormatInt(cur.Revision, 10) {
		return fmt.Errorf("%w: resourceVersion %s, stored %d; get the resource again and retry", datastore.ErrConflict, rv, cur.Revision)
	}
	return nil
}

// checkPoolUpdate refuses changes IPAM cannot follow: addresses were handed
// out in blocks of the old CIDR and size.
func checkPoolUpdate(old api.Resource, p *api.IPPool) error {
	if old == nil {
		return nil
	}
	o := old.(*api.IPPool)
	if o.Spec.CIDR != p.Spec.CIDR {
		return fmt.Errorf("spec.cidr: an IP pool's CIDR cannot be changed (%s to %s): create a new pool, then disable and delete this one", o.Spec.CIDR, p.Spec.CIDR)
	}
	if o.Spec.BlockSize != p.Spec.BlockSize {
		return fmt.Errorf("spec.blockSize: an IP pool's block size cannot be changed (%d to %d): create a new pool, then disable and delete this one", o.Spec.BlockSize, p.Spec.BlockSize)
	}
	return nil
}

// checkBuiltinProfile accepts the built-in profile only as it is.
func checkBuiltinProfile(r api.Resource) error {
	want, _ := json.Marshal(api.NewDefaultAllowProfile().Spec)
	got, _ := json.Marshal(r.(*api.Profile).Spec)
	if string(want) != string(got) {
		return fmt.Errorf("profile %s is Calico's built-in allow-all profile and cannot be changed: give your profile another name", api.DefaultAllowProfile)
	}
	return nil
}

// txnLimitHint explains etcd's per-transaction limits, which a large
// write can exceed on a server started with etcd's defaults (128
// operations, 1.5 MiB); the embedded server raises them.
func txnLimitHint(err error, n int) string {
	switch msg := err.Error(); {
	case strings.Contains(msg, "too many operations in txn"):
		return fmt.Sprintf(" (the manifest makes %d changes in one transaction: raise the etcd server's --max-txn-ops, or split the manifest)", n)
	case strings.Contains(msg, "request is too large"):
		return " (the manifest is written in one transaction: raise the etcd server's --max-request-bytes, or split the manifest)"
	}
	return ""
}

// DeleteAll deletes the resources the documents name in one transaction,
// each only at the revision it was read at (or the one the document
// names). A missing resource is an error unless skipNotExists. fromArgs:
// the documents were named on a command line, so errors do not number
// them.
func (c *Client) DeleteAll(ctx context.Context, docs []api.Document, skipNotExists, fromArgs bool) (*Result, error) {
	if err := checkDuplicates(docs); err != nil {
		return nil, err
	}
	cur, err := c.readAll(ctx, docs)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var ops []datastore.Op
	var problems []error
	var tierDocs []api.Document
	for _, d := range docs {
		r := d.Resource
		kv, exists := cur[KeyOf(r)]
		if isBuiltinProfile(r) {
			problems = append(problems, fmt.Errorf("%s is Calico's built-in profile and cannot be deleted", api.Ident(r)))
			continue
		}
		if !exists {
			if skipNotExists {
				res.Skipped++
				continue
			}
			err := missingError(api.Ident(r))
			if fromArgs {
				problems = append(problems, err)
			} else {
				problems = append(problems, d.Error(err))
			}
			continue
		}
		if err := staleVersion(r, kv, exists); err != nil {
			problems = append(problems, d.Error(err))
			continue
		}
		res.add(r.Kind())
		ops = append(ops, datastore.Op{Type: datastore.OpDelete, Key: kv.Key, Revision: kv.Revision})
		if r.Kind() == api.KindTier {
			tierDocs = append(tierDocs, d)
		}
	}
	if len(tierDocs) > 0 {
		deleting := map[string]bool{}
		var names []string
		for _, op := range ops {
			deleting[op.Key] = true
		}
		for _, d := range tierDocs {
			names = append(names, d.Resource.GetObjectMeta().Name)
		}
		refused, err := c.checkTierDeletes(ctx, names, deleting)
		if err != nil {
			return nil, err
		}
		for _, d := range tierDocs {
			if err := refused[d.Resource.GetObjectMeta().Name]; err != nil {
				if fromArgs {
					problems = append(problems, err)
				} else {
					problems = append(problems, d.Error(err))
				}
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("nothing was deleted:\n%w", errors.Join(problems...))
	}
	if len(ops) == 0 {
		return res, nil
	}
	if _, err := c.st.Txn(ctx, ops); err != nil {
		if errors.Is(err, datastore.ErrConflict) {
			return nil, fmt.Errorf("nothing was deleted: the datastore changed meanwhile; run the command again: %w", err)
		}
		return nil, fmt.Errorf("nothing was deleted: %w%s", err, txnLimitHint(err, len(ops)))
	}
	return res, nil
}

// PoolsOverlap reports whether two pool CIDRs share any address.
func PoolsOverlap(a, b netip.Prefix) bool { return a.Masked().Overlaps(b.Masked()) }

// CheckPoolOverlap returns an error naming the first pool in existing whose
// CIDR overlaps candidate's; a pool with the candidate's own name is skipped
// (an update of itself). Every write of an IPPool runs it.
func CheckPoolOverlap(existing []api.IPPool, candidate api.IPPool) error {
	c, err := netip.ParsePrefix(strings.TrimSpace(candidate.Spec.CIDR))
	if err != nil {
		return fmt.Errorf("ippool %q: spec.cidr %q: %w", candidate.Name, candidate.Spec.CIDR, err)
	}
	for _, e := range existing {
		if e.Name == candidate.Name {
			continue
		}
		ec, err := netip.ParsePrefix(strings.TrimSpace(e.Spec.CIDR))
		if err != nil {
			continue
		}
		if PoolsOverlap(c, ec) {
			return fmt.Errorf("ippool %q: spec.cidr %s overlaps ippool %q (%s); pools must not overlap", candidate.Name, c.Masked(), e.Name, ec.Masked())
		}
	}
	return nil
}

package resources

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
)

// Client reads and writes resources in a datastore. It holds no state but
// the store: any number of clients may share one.
type Client struct {
	st  datastore.Store
	now func() time.Time
	uid func() string
}

// New returns a client of st.
func New(st datastore.Store) *Client {
	return &Client{st: st, now: time.Now, uid: NewUID}
}

// Store is the datastore the client uses.
func (c *Client) Store() datastore.Store { return c.st }

// NewUID returns a random RFC 4122 version 4 UUID, as Calico's metadata.uid.
func NewUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Key is the datastore key of the resource of kind ki a user names name in
// namespace (Calico's layout: a policy "x" is at ".../default.x").
func Key(ki api.KindInfo, namespace, name string) string {
	if !ki.Namespaced {
		namespace = ""
	}
	return datastore.ResourceKey(ki.Plural, namespace, api.StoredName(ki.Kind, name))
}

// KeyOf is the datastore key of r.
func KeyOf(r api.Resource) string {
	m := r.GetObjectMeta()
	return Key(api.Info(r), m.Namespace, m.Name)
}

// BadValueError is a stored value that cannot be decoded as its kind.
type BadValueError struct {
	Key string
	Err error
}

func (e *BadValueError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *BadValueError) Unwrap() error { return e.Err }

// Undecodable reports whether err is only about stored values that could
// not be decoded (List's error for them), so that a reader may go on with
// the rest.
func Undecodable(err error) bool {
	if err == nil {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !Undecodable(e) {
				return false
			}
		}
		return true
	}
	var bad *BadValueError
	return errors.As(err, &bad)
}

// Decode reads a stored value of kind (canonical name) in its client form
// (see api.DecodeStoredKey): identity from the key, resourceVersion the
// key's revision, unknown fields kept with the resource. An error is a
// *BadValueError naming the key.
func Decode(kind string, kv datastore.KV) (api.Resource, error) {
	_, ns, name, ok := datastore.ParseResourceKey(kv.Key)
	if !ok {
		return nil, &BadValueError{Key: kv.Key, Err: errors.New("not a resource key")}
	}
	r, err := api.DecodeStoredKey(kind, ns, name, kv.Value, kv.Revision)
	if err != nil {
		return nil, &BadValueError{Key: kv.Key, Err: err}
	}
	return r, nil
}

// kindOf resolves a kind name (canonical or any of calicoctl's aliases).
func kindOf(kind string) (api.KindInfo, error) {
	return api.LookupKind(kind)
}

// isBuiltinProfile reports whether r is Calico's built-in allow-all
// profile, which exists without being stored.
func isBuiltinProfile(r api.Resource) bool {
	return r.Kind() == api.KindProfile && r.GetObjectMeta().Name == api.DefaultAllowProfile
}

// Get reads one resource. A missing one is an error matching
// datastore.ErrNotFound. The built-in profile projectcalico-default-allow
// is always there.
func (c *Client) Get(ctx context.Context, kind, namespace, name string) (api.Resource, error) {
	ki, err := kindOf(kind)
	if err != nil {
		return nil, err
	}
	if ki.Kind == api.KindProfile && name == api.DefaultAllowProfile {
		return api.NewDefaultAllowProfile(), nil
	}
	kv, err := c.st.Get(ctx, Key(ki, namespace, name))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ident(ki, namespace, name), err)
	}
	return Decode(ki.Kind, kv)
}

// List reads every resource of a kind, of one namespace or (namespace "")
// of all, sorted by key, and the store revision the listing was read at.
// Listing profiles ends with the built-in one, as calicoctl shows it.
// Values that cannot be decoded are reported in err, which joins one error
// per bad key; items still holds every other resource.
func (c *Client) List(ctx context.Context, kind, namespace string) (items []api.Resource, rev int64, err error) {
	ki, err := kindOf(kind)
	if err != nil {
		return nil, 0, err
	}
	prefix := datastore.ResourcePrefix(ki.Plural)
	if ki.Namespaced && namespace != "" {
		// The prefix of one namespace, whatever the key layout puts
		// between the kind and the namespace.
		prefix = strings.TrimSuffix(datastore.ResourceKey(ki.Plural, namespace, "x"), "x")
	}
	kvs, rev, err := c.st.List(ctx, prefix)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", ki.Plural, err)
	}
	items = make([]api.Resource, 0, len(kvs)+1)
	var bad []error
	for _, kv := range kvs {
		r, err := Decode(ki.Kind, kv)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		items = append(items, r)
	}
	if ki.Kind == api.KindProfile {
		items = append(items, api.NewDefaultAllowProfile())
	}
	return items, rev, errors.Join(bad...)
}

// Create writes a new resource; one that exists is an error matching
// datastore.ErrExists. r gets its uid, creationTimestamp and
// resourceVersion; the returned resource is r.
func (c *Client) Create(ctx context.Context, r api.Resource) (api.Resource, error) {
	return c.writeOne(ctx, r, ModeCreate, false)
}

// Update replaces a stored resource; a missing one is an error matching
// datastore.ErrNotFound. With metadata.resourceVersion set it succeeds only
// while the stored resource has that version (else datastore.ErrConflict).
// Fields of the stored value that r's type does not know are kept.
func (c *Client) Update(ctx context.Context, r api.Resource) (api.Resource, error) {
	return c.writeOne(ctx, r, ModeReplace, false)
}

// Apply creates or updates r.
func (c *Client) Apply(ctx context.Context, r api.Resource) (api.Resource, error) {
	return c.writeOne(ctx, r, ModeApply, false)
}

// Modify reads a resource, calls change on it and writes it back by
// compare-and-swap, reading again and calling change again when someone
// else wrote meanwhile. change returns false to write nothing. A missing
// resource is an error matching datastore.ErrNotFound.
func (c *Client) Modify(ctx context.Context, kind, namespace, name string, change func(api.Resource) (bool, error)) (api.Resource, error) {
	ki, err := kindOf(kind)
	if err != nil {
		return nil, err
	}
	key := Key(ki, namespace, name)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		kv, err := c.st.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", ident(ki, namespace, name), err)
		}
		r, err := Decode(ki.Kind, kv)
		if err != nil {
			return nil, err
		}
		ok, err := change(r)
		if err != nil || !ok {
			return r, err
		}
		r.GetObjectMeta().ResourceVersion = strconv.FormatInt(kv.Revision, 10)
		out, err := c.writeOne(ctx, r, ModeReplace, false)
		if errors.Is(err, datastore.ErrConflict) {
			continue
		}
		return out, err
	}
	return nil, fmt.Errorf("%s: too many concurrent updates", ident(ki, namespace, name))
}

// maxAttempts bounds the compare-and-swap retries of Modify.
const maxAttempts = 20

// Delete removes a resource: with resourceVersion "" whatever its
// revision, else only at that revision (datastore.ErrConflict otherwise).
// A missing one is an error matching datastore.ErrNotFound.
func (c *Client) Delete(ctx context.Context, kind, namespace, name, resourceVersion string) error {
	ki, err := kindOf(kind)
	if err != nil {
		return err
	}
	if ki.Kind == api.KindProfile && name == api.DefaultAllowProfile {
		return fmt.Errorf("profile %s is Calico's built-in profile and cannot be deleted", name)
	}
	if ki.Kind == api.KindTier {
		refused, err := c.checkTierDeletes(ctx, []string{name}, nil)
		if err != nil {
			return err
		}
		if err := refused[name]; err != nil {
			return err
		}
	}
	var rev int64
	if resourceVersion != "" {
		if rev, err = strconv.ParseInt(resourceVersion, 10, 64); err != nil || rev <= 0 {
			return fmt.Errorf("delete %s: metadata.resourceVersion %q: not a revision", ident(ki, namespace, name), resourceVersion)
		}
	}
	if err := c.st.Delete(ctx, Key(ki, namespace, name), rev); err != nil {
		return fmt.Errorf("delete %s: %w", ident(ki, namespace, name), err)
	}
	return nil
}

// writeOne is Write of one resource, its errors not numbered as documents.
func (c *Client) writeOne(ctx context.Context, r api.Resource, mode Mode, full bool) (api.Resource, error) {
	d := api.Document{Resource: r}
	p, err := c.plan(ctx, []api.Document{d}, mode, false, full)
	if err != nil {
		return nil, err
	}
	if len(p.problems) > 0 {
		pr := p.problems[0]
		if pr.named {
			return nil, pr.err
		}
		return nil, fmt.Errorf("%s: %w", api.Ident(r), pr.err)
	}
	rev := p.unchangedRev
	if len(p.ops) > 0 {
		if rev, err = c.st.Txn(ctx, p.ops); err != nil {
			return nil, fmt.Errorf("%s %s: %w", mode.verb(), api.Ident(r), err)
		}
	}
	if rev > 0 {
		r.GetObjectMeta().ResourceVersion = strconv.FormatInt(rev, 10)
	}
	return r, nil
}

func ident(ki api.KindInfo, namespace, name string) string {
	if ki.Namespaced && namespace != "" {
		return ki.Kind + " " + namespace + "/" + name
	}
	return ki.Kind + " " + name
}

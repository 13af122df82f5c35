package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// KindBlock is the Update.Kind of an IPAM block.
const KindBlock = "IPAMBlock"

// BlockAssignmentPrefix is where IPAM blocks live.
const BlockAssignmentPrefix = datastore.IPAMRoot + "assignment/"

// Block is the part of an IPAM block the dataplane needs.
type Block struct {
	CIDR netip.Prefix
	// Node the block is affine to; "" when it has no host affinity.
	Node string
	// Holders names, for each assigned address that IPAM records as held by
	// another node than Node (an address borrowed from this block), the node
	// that holds it. BGP accepts a /32 (/128) route for such an address only
	// with that node as next hop.
	Holders map[netip.Addr]string
}

// Update is one upsert (Object non-nil) or delete (Object nil).
type Update struct {
	Kind      string
	Namespace string
	Name      string
	// Object is *api.<Kind> for resources, *Block for KindBlock; nil on delete.
	Object any
	// Revision is the datastore revision of the change.
	Revision int64
}

// Handler receives updates. Calls are serialised; OnUpdates gets batches in
// datastore order.
type Handler interface {
	OnUpdates(updates []Update)
	// OnStatus reports whether every watch is in sync; false while a watch is
	// re-listing or the datastore is unreachable (the last state stays valid).
	OnStatus(inSync bool, err error)
}

// Syncer watches the datastore.
type Syncer struct {
	store datastore.Store
	h     Handler
	log   *slog.Logger

	mu       sync.Mutex
	inSync   map[string]bool
	lastSync bool
}

// New returns a syncer that delivers to h.
func New(store datastore.Store, h Handler, log *slog.Logger) *Syncer {
	if log == nil {
		log = slog.Default()
	}
	return &Syncer{store: store, h: h, log: log, inSync: map[string]bool{}}
}

// Run watches until ctx is done.
func (s *Syncer) Run(ctx context.Context) {
	prefixes := []string{datastore.ResourcesRoot, BlockAssignmentPrefix}
	// Every prefix is known (not in sync) before any watch starts: a watch
	// that syncs first must not count as "all in sync" while the others are
	// missing from the map (and the map is only touched under s.mu).
	s.mu.Lock()
	for _, p := range prefixes {
		s.inSync[p] = false
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range prefixes {
		wg.Add(1)
		go func(prefix string) {
			defer wg.Done()
			s.watch(ctx, prefix)
		}(p)
	}
	wg.Wait()
}

// watch consumes one prefix's events, turning resets into upserts followed
// by deletes of keys that vanished.
func (s *Syncer) watch(ctx context.Context, prefix string) {
	known := map[string]Update{} // key -> identity of what the handler holds
	var seen map[string]bool     // non-nil while re-listing
	var batch []Update
	flush := func() {
		if len(batch) > 0 {
			s.deliver(batch)
			batch = nil
		}
	}
	for ev := range s.store.Watch(ctx, prefix) {
		switch ev.Type {
		case datastore.EventReset:
			flush()
			seen = map[string]bool{}
			s.setStatus(prefix, false, nil)
		case datastore.EventPut:
			u, ok := s.decode(ev.KV)
			if !ok {
				continue
			}
			if seen != nil {
				seen[ev.KV.Key] = true
			}
			if old, ok := known[ev.KV.Key]; ok && (old.Name != u.Name || old.Namespace != u.Namespace) {
				// The same key now shows another name (a policy's client
				// name is in an annotation): the old one is gone.
				old.Revision = ev.KV.Revision
				batch = append(batch, old)
			}
			known[ev.KV.Key] = Update{Kind: u.Kind, Namespace: u.Namespace, Name: u.Name}
			batch = append(batch, u)
			if seen == nil {
				flush()
			}
		case datastore.EventDelete:
			id, ok := known[ev.KV.Key]
			if !ok {
				continue
			}
			delete(known, ev.KV.Key)
			id.Revision = ev.Revision
			batch = append(batch, id)
			flush()
		case datastore.EventInSync:
			if seen != nil {
				for key, id := range known {
					if !seen[key] {
						delete(known, key)
						id.Revision = ev.Revision
						batch = append(batch, id)
					}
				}
				seen = nil
			}
			flush()
			s.setStatus(prefix, true, nil)
		case datastore.EventError:
			s.setStatus(prefix, false, ev.Err)
		}
	}
}

func (s *Syncer) deliver(b []Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.OnUpdates(b)
}

func (s *Syncer) setStatus(prefix string, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inSync[prefix] = ok
	all := true
	for _, v := range s.inSync {
		all = all && v
	}
	if all != s.lastSync || err != nil {
		s.lastSync = all
		s.h.OnStatus(all, err)
	}
}

// decode turns a stored key and value into an Update.
func (s *Syncer) decode(kv datastore.KV) (Update, bool) {
	u, err := Decode(kv)
	if errors.Is(err, ErrOtherKind) {
		// Calico kinds this dataplane does not use (cluster information, IPAM configuration, ...).
		return Update{}, false
	}
	if err != nil {
		s.log.Warn("skipping undecodable datastore value", "key", kv.Key, "err", err)
		return Update{}, false
	}
	return u, true
}

// ErrOtherKind: a resource of a kind this project does not read (Calico
// stores more kinds, e.g. cluster information, than the dataplane
// uses).
var ErrOtherKind = errors.New("resource type not used here")

// Decode turns one stored key/value into an Update. Name is the client
// name, as in Object (a policy stored under "default.x" is "x"; see
// resources.Decode).
func Decode(kv datastore.KV) (Update, error) {
	if strings.HasPrefix(kv.Key, BlockAssignmentPrefix) {
		b, err := decodeBlock(kv.Value)
		if err != nil {
			return Update{}, err
		}
		return Update{Kind: KindBlock, Name: b.CIDR.String(), Object: b, Revision: kv.Revision}, nil
	}
	plural, ns, _, ok := datastore.ParseResourceKey(kv.Key)
	if !ok {
		return Update{}, fmt.Errorf("key %q: want %s<plural>/[<namespace>/]<name>", kv.Key, datastore.ResourcesRoot)
	}
	info, ok := api.LookupPlural(plural)
	if !ok {
		return Update{}, fmt.Errorf("%w %q", ErrOtherKind, plural)
	}
	obj, err := resources.Decode(info.Kind, kv)
	if err != nil {
		return Update{}, err
	}
	// The name consumers key on is the client name (a policy stored as
	// "default.x" is "x"), as in the object.
	return Update{Kind: info.Kind, Namespace: ns, Name: obj.GetObjectMeta().Name, Object: obj, Revision: kv.Revision}, nil
}

func decodeBlock(v []byte) (*Block, error) {
	var raw struct {
		CIDR        string  `json:"cidr"`
		Affinity    *string `json:"affinity"`
		Allocations []*int  `json:"allocations"`
		Attributes  []struct {
			Secondary map[string]string `json:"secondary"`
		} `json:"attributes"`
	}
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, fmt.Errorf("decode IPAM block: %w", err)
	}
	p, err := netip.ParsePrefix(raw.CIDR)
	if err != nil {
		return nil, fmt.Errorf("decode IPAM block: cidr: %w", err)
	}
	b := &Block{CIDR: p.Masked()}
	if raw.Affinity != nil {
		b.Node, _ = strings.CutPrefix(*raw.Affinity, "host:")
	}
	// The node of each assignment is in its attribute's secondary map
	// (internal/ipam Attrs: key "node").
	addr := b.CIDR.Addr()
	for i, a := range raw.Allocations {
		if i > 0 {
			addr = addr.Next()
		}
		if !b.CIDR.Contains(addr) {
			break
		}
		if a == nil || *a < 0 || *a >= len(raw.Attributes) {
			continue
		}
		if n := raw.Attributes[*a].Secondary["node"]; n != "" && n != b.Node {
			if b.Holders == nil {
				b.Holders = map[netip.Addr]string{}
			}
			b.Holders[addr] = n
		}
	}
	return b, nil
}

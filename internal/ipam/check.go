package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// ReportVersion is the version of the Report JSON.
const ReportVersion = 1

// Reasons an address is leaked (LeakedAddress.Reason).
const (
	// LeakEndpointGone: the workload endpoint the address was for is deleted.
	LeakEndpointGone = "endpoint-gone"
	// LeakNotUsedByEndpoint: the endpoint exists but lists other addresses.
	LeakNotUsedByEndpoint = "not-used-by-endpoint"
	// LeakContainerGone: the endpoint's container no longer exists in Docker.
	LeakContainerGone = "container-gone"
	// LeakNoOwnerRecord: the block points the address at no attribute, so no
	// handle can ever release it.
	LeakNoOwnerRecord = "no-owner-record"
	// LeakNotInUse: an address Calico's IPAM library assigned (no kind of
	// ours) that no Node lists as a tunnel address and no endpoint lists:
	// what calicoctl ipam check calls "allocated in IPAM but not actually in
	// use".
	LeakNotInUse = "not-in-use"
)

// Inconsistency kinds and what release --from-report does about them.
const (
	// InconsistentBlock (Repair RepairBlock): a block's free list disagrees
	// with its allocations; Detail holds the BlockProblem kind
	// (allocated-and-free means the address would be handed out twice).
	InconsistentBlock = "block"
	// HandleMismatch (RepairHandle): a handle's counts differ from its blocks.
	HandleMismatch = "handle-mismatch"
	// HandleMissing (RepairHandle): blocks hold addresses for a handle that
	// has no record, so ReleaseByHandle would not find them.
	HandleMissing = "handle-missing"
	// HandleEmpty (RepairHandle): a handle record whose blocks hold nothing for it.
	HandleEmpty = "handle-empty"
	// AffinityDangling (RepairDeleteAffinity): an affinity key whose block is
	// missing or affine to another node.
	AffinityDangling = "affinity-dangling"
	// AffinityKeyMissing (RepairCreateAffinity): a block affine to a node
	// with no affinity key.
	AffinityKeyMissing = "affinity-key-missing"
	// AddressInTwoBlocks (report only): overlapping blocks both assign an address.
	AddressInTwoBlocks = "address-in-two-blocks"
	// AddressInTwoEndpoints (report only): two workload endpoints list one address.
	AddressInTwoEndpoints = "address-in-two-endpoints"
	// EndpointAddressUnassigned (report only): an endpoint lists an address
	// of a pool that IPAM has not assigned.
	EndpointAddressUnassigned = "endpoint-address-unassigned"
	// EndpointAddressHeldByOther (report only): an endpoint lists an address
	// that IPAM assigned to something else.
	EndpointAddressHeldByOther = "endpoint-address-held-by-other"
	// WorkloadUnnamed (report only): a workload address names neither an
	// endpoint nor a container, so it cannot be judged.
	WorkloadUnnamed = "workload-unnamed"
	// UnknownKind (report only): an address whose attrs have no known kind.
	UnknownKind = "unknown-kind"
	// Unreadable (report only): a block or handle that does not decode.
	Unreadable = "unreadable"
)

// Repairs.
const (
	RepairBlock          = "repair-block"
	RepairHandle         = "rewrite-handle"
	RepairDeleteAffinity = "delete-affinity"
	RepairCreateAffinity = "create-affinity"
)

// CheckOptions tunes Check.
type CheckOptions struct {
	// ContainerExists, when set, says whether a Docker container exists. It is
	// asked only about addresses on DockerNode, the node whose Docker daemon
	// it reaches.
	ContainerExists func(id string) (bool, error)
	DockerNode      string
	// NoDockerReason goes into the report's notes when ContainerExists is nil.
	NoDockerReason string
	// MinAge: workload addresses assigned less than MinAge ago are not judged
	// (their endpoint may still be on its way).
	MinAge time.Duration
}

// Report is the result of Check, and the input of ReleaseFromReport.
type Report struct {
	Version         int             `json:"version"`
	Time            time.Time       `json:"time"`
	Summary         Summary         `json:"summary"`
	Leaked          []LeakedAddress `json:"leaked"`
	StaleAffinities []StaleAffinity `json:"staleAffinities"`
	Inconsistencies []Inconsistency `json:"inconsistencies"`
	Manual          []Reservation   `json:"manual"`
	Notes           []string        `json:"notes"`
}

// Summary counts what Check saw and found.
type Summary struct {
	Pools             int  `json:"pools"`
	Blocks            int  `json:"blocks"`
	Nodes             int  `json:"nodes"`
	Endpoints         int  `json:"endpoints"`
	Handles           int  `json:"handles"`
	Assigned          int  `json:"assigned"`
	Workload          int  `json:"workload"`
	Manual            int  `json:"manual"`
	Recent            int  `json:"recent"`
	Leaked            int  `json:"leaked"`
	StaleAffinities   int  `json:"staleAffinities"`
	Inconsistencies   int  `json:"inconsistencies"`
	ContainersChecked bool `json:"containersChecked"`
}

// Problems is the number of findings.
func (s Summary) Problems() int { return s.Leaked + s.StaleAffinities + s.Inconsistencies }

// LeakedAddress is an address held for something that no longer exists.
type LeakedAddress struct {
	IP     netip.Addr   `json:"ip"`
	Block  netip.Prefix `json:"block"`
	Handle string       `json:"handle"`
	Reason string       `json:"reason"`
	Attrs  Attrs        `json:"attrs"`
}

// StaleAffinity is a block affine to a node that has no Node resource.
type StaleAffinity struct {
	Node  string       `json:"node"`
	Block netip.Prefix `json:"block"`
	InUse int          `json:"inUse"`
}

// Inconsistency is a record that disagrees with another.
type Inconsistency struct {
	Kind   string `json:"kind"`
	IP     string `json:"ip,omitempty"`
	Block  string `json:"block,omitempty"`
	Handle string `json:"handle,omitempty"`
	Node   string `json:"node,omitempty"`
	Detail string `json:"detail"`
	// Repair is what release --from-report does; "" means it needs a person.
	Repair string `json:"repair,omitempty"`
	// Problem and Ordinal locate a block problem (BlockProblem.Kind).
	Problem string `json:"problem,omitempty"`
	Ordinal *int   `json:"ordinal,omitempty"`
}

// Reservation is a manual reservation: listed, never a leak.
type Reservation struct {
	IP       netip.Addr `json:"ip"`
	Handle   string     `json:"handle"`
	Node     string     `json:"node,omitempty"`
	Note     string     `json:"note,omitempty"`
	Assigned time.Time  `json:"assigned,omitzero"`
}

// snapshot is everything Check reads. Blocks are read before endpoints, so
// that an address assigned and then given to a new endpoint is never seen
// without its endpoint.
type snapshot struct {
	pools      []Pool
	blocks     []blockKV
	affinities []affinityRef
	handles    map[string]*Handle
	nodes      map[string]bool
	nodeIPs    map[netip.Addr]string           // tunnel addresses Node resources list -> node
	weps       map[string]api.WorkloadEndpoint // "namespace/name"
	containers map[string]bool                 // checked container IDs -> exist
	unreadable []string                        // keys that do not decode, with why
	now        time.Time
}

type affinityRef struct {
	node string
	cidr netip.Prefix
}

// Check reads the whole IPAM state with the endpoints, nodes and (through
// opts) containers it refers to, and reports leaks, stale affinities,
// inconsistencies and manual reservations. It changes nothing.
func (a *Allocator) Check(ctx context.Context, opts CheckOptions) (Report, error) {
	s, err := a.readSnapshot(ctx)
	if err != nil {
		return Report{}, err
	}
	var notes []string
	if opts.ContainerExists != nil {
		s.containers = map[string]bool{}
		for _, id := range containersToCheck(s, opts) {
			ok, err := opts.ContainerExists(id)
			if err != nil {
				notes = append(notes, fmt.Sprintf("container %s: %v (not judged)", shortID(id), err))
				continue
			}
			s.containers[id] = ok
		}
	}
	r := analyze(s, opts)
	r.Notes = append(notes, r.Notes...)
	return r, nil
}

func (a *Allocator) readSnapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{handles: map[string]*Handle{}, nodes: map[string]bool{}, nodeIPs: map[netip.Addr]string{}, weps: map[string]api.WorkloadEndpoint{}, now: a.now()}
	var err error
	if s.pools, err = a.Pools(ctx); err != nil {
		return nil, err
	}
	for _, fam := range []int{4, 6} {
		bs, bad, err := a.listBlocksChecked(ctx, fam)
		if err != nil {
			return nil, err
		}
		s.blocks = append(s.blocks, bs...)
		for _, e := range bad {
			s.unreadable = append(s.unreadable, e.err.Error())
		}
	}
	kvs, _, err := a.store.List(ctx, HostsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list affinities: %w", err)
	}
	for _, kv := range kvs {
		if node, cidr, ok := ParseAffinityKey(kv.Key); ok {
			s.affinities = append(s.affinities, affinityRef{node, cidr})
		}
	}
	if kvs, _, err = a.store.List(ctx, HandlesPrefix); err != nil {
		return nil, fmt.Errorf("list handles: %w", err)
	}
	for _, kv := range kvs {
		h := &Handle{}
		if err := json.Unmarshal(kv.Value, h); err != nil {
			s.unreadable = append(s.unreadable, fmt.Sprintf("handle at %s: %v", kv.Key, err))
			continue
		}
		s.handles[strings.TrimPrefix(kv.Key, HandlesPrefix)] = h
	}
	if kvs, _, err = a.store.List(ctx, datastore.ResourcePrefix("nodes")); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	for _, kv := range kvs {
		if _, _, name, ok := datastore.ParseResourceKey(kv.Key); ok {
			s.nodes[name] = true
			for _, ip := range nodeTunnelAddrs(kv.Value) {
				s.nodeIPs[ip] = name
			}
		}
	}
	if kvs, _, err = a.store.List(ctx, datastore.ResourcePrefix("workloadendpoints")); err != nil {
		return nil, fmt.Errorf("list workload endpoints: %w", err)
	}
	for _, kv := range kvs {
		_, ns, name, ok := datastore.ParseResourceKey(kv.Key)
		if !ok {
			continue
		}
		r, err := resources.Decode(api.KindWorkloadEndpoint, kv)
		if err != nil {
			a.log.Warn("ipam: unreadable workload endpoint", "key", kv.Key, "error", err)
			continue
		}
		s.weps[ns+"/"+name] = *r.(*api.WorkloadEndpoint)
	}
	return s, nil
}

// containersToCheck lists the containers to ask Docker about: those of
// workload addresses on the Docker node that are not already leaked for
// another reason.
func containersToCheck(s *snapshot, opts CheckOptions) []string {
	seen := map[string]bool{}
	var out []string
	for _, bk := range s.blocks {
		for _, al := range bk.b.AllocationList() {
			at := al.Attrs
			if at.Kind != KindWorkload || at.ContainerID == "" || at.Node != opts.DockerNode || seen[at.ContainerID] {
				continue
			}
			if at.Endpoint != "" {
				if _, ok := s.weps[at.Endpoint]; !ok {
					continue
				}
			}
			seen[at.ContainerID] = true
			out = append(out, at.ContainerID)
		}
	}
	sort.Strings(out)
	return out
}

// endpointAddrs returns the addresses a workload endpoint lists.
func endpointAddrs(w api.WorkloadEndpoint) []netip.Addr {
	var out []netip.Addr
	for _, n := range w.Spec.IPNetworks {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Addr().Unmap())
		} else if ip, err := netip.ParseAddr(n); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// analyze is the pure heart of Check.
func analyze(s *snapshot, opts CheckOptions) Report {
	r := Report{Version: ReportVersion, Time: s.now.UTC(), Leaked: []LeakedAddress{}, StaleAffinities: []StaleAffinity{},
		Inconsistencies: []Inconsistency{}, Manual: []Reservation{}, Notes: []string{}}
	r.Summary.Pools, r.Summary.Blocks, r.Summary.Nodes = len(s.pools), len(s.blocks), len(s.nodes)
	r.Summary.Endpoints, r.Summary.Handles = len(s.weps), len(s.handles)
	r.Summary.ContainersChecked = s.containers != nil
	if s.containers == nil {
		why := opts.NoDockerReason
		if why == "" {
			why = "no Docker daemon given"
		}
		r.Notes = append(r.Notes, "containers not checked: "+why)
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("containers checked against the Docker daemon of node %q (%d containers)", opts.DockerNode, len(s.containers)))
	}

	// Endpoints' own addresses, for the cross checks.
	wepsByIP := map[netip.Addr][]string{}
	names := make([]string, 0, len(s.weps))
	for n := range s.weps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, ip := range endpointAddrs(s.weps[n]) {
			wepsByIP[ip] = append(wepsByIP[ip], n)
		}
	}

	for _, u := range s.unreadable {
		r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: Unreadable, Detail: u})
	}
	truth := map[string]map[string]int{} // handle -> block -> count
	assignedIn := map[netip.Addr][]netip.Prefix{}
	holder := map[netip.Addr]Allocation{}
	for _, bk := range s.blocks {
		b := bk.b
		for _, p := range b.Problems() {
			if p.Kind == ProblemAttrMissing {
				continue // a leak, below
			}
			ord := p.Ordinal
			inc := Inconsistency{Kind: InconsistentBlock, Block: b.CIDR.String(), Problem: p.Kind, Ordinal: &ord, Repair: RepairBlock,
				Detail: blockProblemText(b, p)}
			if p.IP.IsValid() {
				inc.IP = p.IP.String()
			}
			r.Inconsistencies = append(r.Inconsistencies, inc)
		}
		for _, al := range b.AllocationList() {
			r.Summary.Assigned++
			assignedIn[al.IP] = append(assignedIn[al.IP], b.CIDR)
			holder[al.IP] = al
			if al.Handle != "" {
				if truth[al.Handle] == nil {
					truth[al.Handle] = map[string]int{}
				}
				truth[al.Handle][b.CIDR.String()]++
			}
			leak := func(reason string) {
				r.Leaked = append(r.Leaked, LeakedAddress{IP: al.IP, Block: b.CIDR, Handle: al.Handle, Reason: reason, Attrs: al.Attrs})
			}
			if al.AttrMissing {
				leak(LeakNoOwnerRecord)
				continue
			}
			at := al.Attrs
			switch at.Kind {
			case KindManual:
				r.Summary.Manual++
				r.Manual = append(r.Manual, Reservation{IP: al.IP, Handle: al.Handle, Node: at.Node, Note: at.Note, Assigned: at.Assigned})
				continue
			case KindWorkload:
				r.Summary.Workload++
			case "":
				// Assigned by Calico's own IPAM library (calico/node's
				// tunnel addresses, the CNI plugin's pods): judged as
				// calicoctl ipam check judges every address, in use while a
				// Node lists it as a tunnel address or an endpoint lists it.
				r.Summary.Workload++
				if opts.MinAge > 0 && !at.Assigned.IsZero() && s.now.Sub(at.Assigned) < opts.MinAge {
					r.Summary.Recent++
					continue
				}
				if _, ok := s.nodeIPs[al.IP]; ok {
					continue
				}
				if len(wepsByIP[al.IP]) > 0 {
					continue
				}
				leak(LeakNotInUse)
				continue
			default:
				r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: UnknownKind, IP: al.IP.String(), Block: b.CIDR.String(),
					Handle: al.Handle, Detail: fmt.Sprintf("address records kind %q, neither %q nor %q", at.Kind, KindWorkload, KindManual)})
				continue
			}
			if opts.MinAge > 0 && !at.Assigned.IsZero() && s.now.Sub(at.Assigned) < opts.MinAge {
				r.Summary.Recent++
				continue
			}
			if at.Endpoint != "" {
				w, ok := s.weps[at.Endpoint]
				if !ok {
					leak(LeakEndpointGone)
					continue
				}
				if ips := endpointAddrs(w); len(ips) > 0 && !slices.Contains(ips, al.IP) {
					leak(LeakNotUsedByEndpoint)
					continue
				}
			}
			if at.ContainerID != "" && s.containers != nil && at.Node == opts.DockerNode {
				if exists, known := s.containers[at.ContainerID]; known && !exists {
					leak(LeakContainerGone)
					continue
				}
			}
			if at.Endpoint == "" && at.ContainerID == "" && strings.HasPrefix(al.Handle, SwarmHandlePrefix) {
				continue // the swarm's (swarm.go): its raft state owns it
			}
			if at.Endpoint == "" && at.ContainerID == "" {
				r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: WorkloadUnnamed, IP: al.IP.String(), Block: b.CIDR.String(),
					Handle: al.Handle, Node: at.Node, Detail: "workload address names no endpoint or container, so it cannot be judged"})
			}
		}
	}

	// Addresses assigned in two (overlapping) blocks.
	var twice []netip.Addr
	for ip, bs := range assignedIn {
		if len(bs) > 1 {
			twice = append(twice, ip)
		}
	}
	slices.SortFunc(twice, func(x, y netip.Addr) int { return x.Compare(y) })
	for _, ip := range twice {
		var bs []string
		for _, b := range assignedIn[ip] {
			bs = append(bs, b.String())
		}
		r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: AddressInTwoBlocks, IP: ip.String(),
			Detail: "assigned in overlapping blocks " + strings.Join(bs, " and ") + " (overlapping pools?)"})
	}

	// Endpoints' addresses against IPAM.
	var wips []netip.Addr
	for ip := range wepsByIP {
		wips = append(wips, ip)
	}
	slices.SortFunc(wips, func(x, y netip.Addr) int { return x.Compare(y) })
	for _, ip := range wips {
		ws := wepsByIP[ip]
		if len(ws) > 1 {
			r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: AddressInTwoEndpoints, IP: ip.String(),
				Detail: "listed by workload endpoints " + strings.Join(ws, ", ")})
		}
		if _, inPool := PoolFor(s.pools, ip); inPool && len(assignedIn[ip]) == 0 {
			r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: EndpointAddressUnassigned, IP: ip.String(),
				Detail: fmt.Sprintf("workload endpoint %s uses it but IPAM has not assigned it", strings.Join(ws, ", "))})
		}
		if h, ok := holder[ip]; ok && !h.AttrMissing {
			for _, w := range ws {
				if h.Attrs.Kind == KindManual || (h.Attrs.Kind == KindWorkload && h.Attrs.Endpoint != "" && h.Attrs.Endpoint != w) {
					r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: EndpointAddressHeldByOther, IP: ip.String(), Handle: h.Handle,
						Detail: fmt.Sprintf("workload endpoint %s uses it but IPAM assigned it to %s", w, h.Attrs.Describe())})
				}
			}
		}
	}

	// Handles against blocks.
	hnames := map[string]bool{}
	for h := range truth {
		hnames[h] = true
	}
	for h := range s.handles {
		hnames[h] = true
	}
	hs := make([]string, 0, len(hnames))
	for h := range hnames {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	for _, h := range hs {
		rec, want := s.handles[h], truth[h]
		switch {
		case rec == nil:
			r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: HandleMissing, Handle: h, Repair: RepairHandle,
				Detail: fmt.Sprintf("blocks hold %s for it but the handle has no record", countsText(want))})
		case len(want) == 0:
			r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: HandleEmpty, Handle: h, Repair: RepairHandle,
				Detail: fmt.Sprintf("the handle records %s but its blocks hold nothing for it", countsText(rec.Block))})
		case !countsEqual(rec.Block, want):
			r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: HandleMismatch, Handle: h, Repair: RepairHandle,
				Detail: fmt.Sprintf("the handle records %s, its blocks hold %s", countsText(rec.Block), countsText(want))})
		}
	}

	// Affinities.
	blockByCIDR := map[netip.Prefix]*Block{}
	for _, bk := range s.blocks {
		blockByCIDR[bk.b.CIDR] = bk.b
	}
	keyed := map[affinityRef]bool{}
	for _, af := range s.affinities {
		keyed[af] = true
		b := blockByCIDR[af.cidr]
		switch {
		case b == nil:
			r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: AffinityDangling, Node: af.node, Block: af.cidr.String(),
				Repair: RepairDeleteAffinity, Detail: "affinity key names a block that does not exist"})
		case b.Host() != af.node:
			r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: AffinityDangling, Node: af.node, Block: af.cidr.String(),
				Repair: RepairDeleteAffinity, Detail: fmt.Sprintf("affinity key, but the block is affine to %q", b.Host())})
		}
	}
	checkNodes := len(s.nodes) > 0
	if !checkNodes {
		r.Notes = append(r.Notes, "no Node resources exist, so block affinities were not checked against nodes")
	}
	for _, bk := range s.blocks {
		b := bk.b
		host := b.Host()
		if host == "" {
			continue
		}
		if !keyed[affinityRef{host, b.CIDR}] {
			r.Inconsistencies = append(r.Inconsistencies, Inconsistency{Kind: AffinityKeyMissing, Node: host, Block: b.CIDR.String(),
				Repair: RepairCreateAffinity, Detail: "block is affine to the node but the node's affinity key is missing"})
		}
		if checkNodes && !s.nodes[host] {
			r.StaleAffinities = append(r.StaleAffinities, StaleAffinity{Node: host, Block: b.CIDR, InUse: b.InUse()})
		}
	}
	if r.Summary.Recent > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d workload addresses younger than %s were not judged", r.Summary.Recent, opts.MinAge))
	}
	r.Summary.Leaked, r.Summary.StaleAffinities, r.Summary.Inconsistencies = len(r.Leaked), len(r.StaleAffinities), len(r.Inconsistencies)
	return r
}

func blockProblemText(b *Block, p BlockProblem) string {
	switch p.Kind {
	case ProblemAllocatedAndFree:
		return fmt.Sprintf("%s is assigned and also on the free list, so it would be handed out twice", p.IP)
	case ProblemFreeTwice:
		return fmt.Sprintf("%s is on the free list twice", p.IP)
	case ProblemLost:
		return fmt.Sprintf("%s is neither assigned nor free", p.IP)
	case ProblemBadOrdinal:
		return fmt.Sprintf("free list names ordinal %d outside the block of %d", p.Ordinal, b.Size())
	}
	return p.Kind
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "no addresses"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d in %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func countsEqual(a, b map[string]int) bool {
	clean := func(m map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range m {
			if v != 0 {
				out[k] = v
			}
		}
		return out
	}
	x, y := clean(a), clean(b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if y[k] != v {
			return false
		}
	}
	return true
}

// String is the human summary `calico ipam check` prints.
func (r Report) String() string {
	var sb strings.Builder
	s := r.Summary
	fmt.Fprintf(&sb, "Checked %d pools, %d blocks, %d nodes, %d workload endpoints, %d handles.\n", s.Pools, s.Blocks, s.Nodes, s.Endpoints, s.Handles)
	fmt.Fprintf(&sb, "%d addresses assigned: %d to workloads, %d manual reservations.\n", s.Assigned, s.Workload, s.Manual)
	fmt.Fprintf(&sb, "Found %d leaked addresses:\n", len(r.Leaked))
	for _, l := range r.Leaked {
		fmt.Fprintf(&sb, "  %s  handle %q  %s", l.IP, l.Handle, l.Reason)
		if d := l.Attrs.Describe(); d != "" {
			fmt.Fprintf(&sb, " (%s)", d)
		}
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "Found %d blocks affine to nodes that do not exist:\n", len(r.StaleAffinities))
	for _, sa := range r.StaleAffinities {
		fmt.Fprintf(&sb, "  %s  node %q  %d in use\n", sa.Block, sa.Node, sa.InUse)
	}
	fmt.Fprintf(&sb, "Found %d inconsistencies:\n", len(r.Inconsistencies))
	for _, in := range r.Inconsistencies {
		fix := in.Repair
		if fix == "" {
			fix = "needs a person"
		}
		fmt.Fprintf(&sb, "  %s: %s [%s]\n", in.Kind, inconsistencyWhere(in)+in.Detail, fix)
	}
	fmt.Fprintf(&sb, "Manual reservations (%d, not leaks):\n", len(r.Manual))
	for _, m := range r.Manual {
		fmt.Fprintf(&sb, "  %s  handle %q  node %q", m.IP, m.Handle, m.Node)
		if m.Note != "" {
			fmt.Fprintf(&sb, "  %q", m.Note)
		}
		sb.WriteString("\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&sb, "Note: %s\n", n)
	}
	fmt.Fprintf(&sb, "Check complete: %d problems.\n", s.Problems())
	return sb.String()
}

func inconsistencyWhere(in Inconsistency) string {
	var parts []string
	if in.IP != "" {
		parts = append(parts, in.IP)
	}
	if in.Block != "" {
		parts = append(parts, "block "+in.Block)
	}
	if in.Handle != "" {
		parts = append(parts, fmt.Sprintf("handle %q", in.Handle))
	}
	if in.Node != "" {
		parts = append(parts, fmt.Sprintf("node %q", in.Node))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + ": "
}

// RepairResult says what ReleaseFromReport did.
type RepairResult struct {
	Released           []netip.Addr   `json:"released"`
	AffinitiesReleased []netip.Prefix `json:"affinitiesReleased"`
	// EndpointsDeleted: workload endpoints of containers that are gone.
	EndpointsDeleted []string `json:"endpointsDeleted"`
	Repaired         []string `json:"repaired"`
	// Skipped lists findings that were no longer true, so nothing was done.
	Skipped []string `json:"skipped"`
}

// ReleaseFromReport frees exactly what the report lists as leaked, releases
// the stale affinities and applies the repairs of its inconsistencies. Each
// finding is checked again first: an address is freed only while the same
// handle still holds it (and, for a gone endpoint, the endpoint is still
// gone); manual reservations are never touched. Findings no longer true
// are skipped and listed. For an address leaked because its container is
// gone, the container's WorkloadEndpoint is stale too: it is deleted if it
// still names that container.
func (a *Allocator) ReleaseFromReport(ctx context.Context, r Report) (RepairResult, error) {
	var res RepairResult
	if r.Version != ReportVersion {
		return res, fmt.Errorf("report version %d: this calico reads version %d (run calico ipam check again)", r.Version, ReportVersion)
	}
	// Leaks, grouped by block.
	byBlock := map[netip.Prefix][]LeakedAddress{}
	for _, l := range r.Leaked {
		byBlock[l.Block] = append(byBlock[l.Block], l)
	}
	blocks := make([]netip.Prefix, 0, len(byBlock))
	for b := range byBlock {
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].Addr().Less(blocks[j].Addr()) })
	for _, cidr := range blocks {
		want := map[netip.Addr]LeakedAddress{}
		var ips []netip.Addr
		for _, l := range byBlock[cidr] {
			if l.Reason == LeakEndpointGone {
				if gone, err := a.endpointGone(ctx, l.Attrs.Endpoint); err != nil {
					return res, err
				} else if !gone {
					res.Skipped = append(res.Skipped, fmt.Sprintf("%s: endpoint %s exists again", l.IP, l.Attrs.Endpoint))
					continue
				}
			}
			want[l.IP] = l
			ips = append(ips, l.IP)
		}
		if len(ips) == 0 {
			continue
		}
		skipped, err := a.releaseInBlock(ctx, cidr, ips, func(al Allocation) bool {
			l, ok := want[al.IP]
			if !ok || al.Attrs.Kind == KindManual {
				return false
			}
			if l.Reason == LeakNoOwnerRecord {
				return al.AttrMissing
			}
			return !al.AttrMissing && al.Handle == l.Handle
		})
		if err != nil {
			return res, err
		}
		for _, ip := range ips {
			if slices.Contains(skipped, ip) {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s: no longer held by handle %q", ip, want[ip].Handle))
				continue
			}
			res.Released = append(res.Released, ip)
			if l := want[ip]; l.Reason == LeakContainerGone {
				deleted, err := a.deleteStaleEndpoint(ctx, l.Attrs)
				if err != nil {
					return res, err
				}
				if deleted {
					res.EndpointsDeleted = append(res.EndpointsDeleted, l.Attrs.Endpoint)
				}
			}
		}
	}

	for _, sa := range r.StaleAffinities {
		gone, err := a.nodeGone(ctx, sa.Node)
		if err != nil {
			return res, err
		}
		if !gone {
			res.Skipped = append(res.Skipped, fmt.Sprintf("block %s: node %q exists again", sa.Block, sa.Node))
			continue
		}
		done, err := a.releaseAffinity(ctx, sa.Node, sa.Block, func(*Block) bool { return true })
		if err != nil {
			return res, err
		}
		if done {
			res.AffinitiesReleased = append(res.AffinitiesReleased, sa.Block)
		}
	}

	for _, in := range r.Inconsistencies {
		if in.Repair == "" {
			continue
		}
		did, err := a.repair(ctx, in)
		if err != nil {
			return res, err
		}
		desc := in.Kind + " " + strings.TrimSuffix(inconsistencyWhere(in), ": ")
		if did {
			res.Repaired = append(res.Repaired, desc)
		} else {
			res.Skipped = append(res.Skipped, desc+": no longer inconsistent")
		}
	}
	return res, nil
}

func (a *Allocator) endpointGone(ctx context.Context, ep string) (bool, error) {
	ns, name, ok := strings.Cut(ep, "/")
	if !ok {
		return false, nil
	}
	_, err := a.store.Get(ctx, datastore.ResourceKey("workloadendpoints", ns, name))
	if errors.Is(err, datastore.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// deleteStaleEndpoint deletes the workload endpoint at.Endpoint if it still
// names the container at.ContainerID (which Check found gone).
func (a *Allocator) deleteStaleEndpoint(ctx context.Context, at Attrs) (bool, error) {
	ns, name, ok := strings.Cut(at.Endpoint, "/")
	if !ok || at.ContainerID == "" {
		return false, nil
	}
	key := datastore.ResourceKey("workloadendpoints", ns, name)
	kv, err := a.store.Get(ctx, key)
	if errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r, err := resources.Decode(api.KindWorkloadEndpoint, kv); err != nil || r.(*api.WorkloadEndpoint).Spec.ContainerID != at.ContainerID {
		return false, nil
	}
	if _, err := a.store.Txn(ctx, []datastore.Op{{Type: datastore.OpDelete, Key: key, Revision: kv.Revision}}); err != nil {
		if isRace(err) {
			return false, nil
		}
		return false, fmt.Errorf("delete stale workload endpoint %s: %w", at.Endpoint, err)
	}
	a.log.Info("ipam: deleted the workload endpoint of a container that is gone", "endpoint", at.Endpoint, "container", at.ContainerID)
	return true, nil
}

func (a *Allocator) nodeGone(ctx context.Context, node string) (bool, error) {
	_, err := a.store.Get(ctx, datastore.ResourceKey("nodes", "", node))
	if errors.Is(err, datastore.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// repair applies one inconsistency's repair if it still applies.
func (a *Allocator) repair(ctx context.Context, in Inconsistency) (bool, error) {
	switch in.Repair {
	case RepairBlock:
		cidr, err := netip.ParsePrefix(in.Block)
		if err != nil || in.Ordinal == nil || in.Problem == "" {
			return false, fmt.Errorf("report: %s needs block, problem and ordinal", in.Kind)
		}
		did := false
		err = a.retryBlock(ctx, cidr, func(b *Block) (bool, error) {
			did = b.Repair(BlockProblem{Kind: in.Problem, Ordinal: *in.Ordinal})
			return did, nil
		})
		if errors.Is(err, datastore.ErrNotFound) {
			return false, nil
		}
		return did, err
	case RepairHandle:
		return a.rewriteHandle(ctx, in.Handle)
	case RepairDeleteAffinity:
		cidr, err := netip.ParsePrefix(in.Block)
		if err != nil {
			return false, fmt.Errorf("report: %s: block %q: %w", in.Kind, in.Block, err)
		}
		key := AffinityKey(in.Node, cidr)
		kv, err := a.store.Get(ctx, key)
		if errors.Is(err, datastore.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		b, _, err := a.getBlock(ctx, cidr)
		if err == nil && b.Host() == in.Node {
			return false, nil
		}
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return false, err
		}
		if _, err := a.store.Txn(ctx, []datastore.Op{{Type: datastore.OpDelete, Key: key, Revision: kv.Revision}}); err != nil {
			if isRace(err) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	case RepairCreateAffinity:
		cidr, err := netip.ParsePrefix(in.Block)
		if err != nil {
			return false, fmt.Errorf("report: %s: block %q: %w", in.Kind, in.Block, err)
		}
		b, _, err := a.getBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			return false, nil
		}
		if err != nil || b.Host() != in.Node {
			return false, err
		}
		if _, err := a.store.Create(ctx, AffinityKey(in.Node, cidr), confirmedAffinity); err != nil {
			if errors.Is(err, datastore.ErrExists) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	}
	return false, fmt.Errorf("report: unknown repair %q", in.Repair)
}

// rewriteHandle makes a handle's record match its blocks (the blocks are the
// truth). The compare-and-swap on the handle guards it: every change to the
// handle's addresses writes the handle too.
func (a *Allocator) rewriteHandle(ctx context.Context, handle string) (bool, error) {
	if err := validName("handle", handle); err != nil {
		return false, err
	}
	for i := 0; ; i++ {
		if i > a.maxRetries {
			return false, fmt.Errorf("%w: rewriting handle %q", ErrTooManyRetries, handle)
		}
		h, hrev, err := a.getHandle(ctx, handle)
		if err != nil {
			return false, err
		}
		want := map[string]int{}
		for _, fam := range []int{4, 6} {
			bs, err := a.listBlocks(ctx, fam)
			if err != nil {
				return false, err
			}
			for _, bk := range bs {
				if n := bk.b.HandleCounts()[handle]; n > 0 {
					want[bk.b.CIDR.String()] = n
				}
			}
		}
		if hrev != 0 && countsEqual(h.Block, want) || hrev == 0 && len(want) == 0 {
			return false, nil
		}
		nh := &Handle{HandleID: handle, Block: want}
		if _, err := a.store.Txn(ctx, []datastore.Op{handleOp(handle, nh, hrev)}); err != nil {
			if isRace(err) {
				continue
			}
			return false, fmt.Errorf("rewrite handle %q: %w", handle, err)
		}
		return true, nil
	}
}

// nodeTunnelAddrs returns the tunnel addresses a stored Node lists, read as
// calicoctl ipam check reads them (VXLAN, IPIP, WireGuard; an address may
// carry a prefix length).
func nodeTunnelAddrs(value []byte) []netip.Addr {
	var n struct {
		Spec struct {
			IPv4VXLANTunnelAddr string `json:"ipv4VXLANTunnelAddr"`
			IPv6VXLANTunnelAddr string `json:"ipv6VXLANTunnelAddr"`
			BGP                 *struct {
				IPv4IPIPTunnelAddr string `json:"ipv4IPIPTunnelAddr"`
			} `json:"bgp"`
			Wireguard *struct {
				InterfaceIPv4Address string `json:"interfaceIPv4Address"`
				InterfaceIPv6Address string `json:"interfaceIPv6Address"`
			} `json:"wireguard"`
		} `json:"spec"`
	}
	if json.Unmarshal(value, &n) != nil {
		return nil
	}
	raw := []string{n.Spec.IPv4VXLANTunnelAddr, n.Spec.IPv6VXLANTunnelAddr}
	if n.Spec.BGP != nil {
		raw = append(raw, n.Spec.BGP.IPv4IPIPTunnelAddr)
	}
	if n.Spec.Wireguard != nil {
		raw = append(raw, n.Spec.Wireguard.InterfaceIPv4Address, n.Spec.Wireguard.InterfaceIPv6Address)
	}
	var out []netip.Addr
	for _, r := range raw {
		if r == "" {
			continue
		}
		if p, err := netip.ParsePrefix(r); err == nil {
			out = append(out, p.Addr().Unmap())
		} else if ip, err := netip.ParseAddr(r); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

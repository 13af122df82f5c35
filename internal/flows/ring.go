package flows

import (
	"net/netip"
	"sync"
	"time"
)

// Record is one flow in one interval, as `calico flows` shows it.
type Record struct {
	// Seq orders records; a client asks for those after the last it saw.
	Seq   uint64    `json:"seq"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Host  string    `json:"host"`
	// Src and Dst are addresses; SrcEndpoint/DstEndpoint the workload
	// endpoints that own them ("" outside the cluster or unknown here).
	Src         netip.Addr `json:"src"`
	Dst         netip.Addr `json:"dst"`
	Proto       string     `json:"proto"`
	SrcPort     uint16     `json:"srcPort,omitempty"`
	DstPort     uint16     `json:"dstPort,omitempty"`
	SrcEndpoint string     `json:"srcEndpoint,omitempty"`
	DstEndpoint string     `json:"dstEndpoint,omitempty"`
	// SrcName, SrcNetwork and SrcLabels (and Dst...) describe the endpoint
	// as it was when the flow was recorded: container name, Docker network
	// and labels. Remote endpoints are named too (from the datastore).
	SrcName    string            `json:"srcName,omitempty"`
	SrcNetwork string            `json:"srcNetwork,omitempty"`
	SrcLabels  map[string]string `json:"srcLabels,omitempty"`
	DstName    string            `json:"dstName,omitempty"`
	DstNetwork string            `json:"dstNetwork,omitempty"`
	DstLabels  map[string]string `json:"dstLabels,omitempty"`
	// Endpoint is the local endpoint whose chain decided, Direction "egress"
	// (its traffic out) or "ingress".
	Endpoint  string `json:"endpoint,omitempty"`
	Direction string `json:"direction"`
	// Action is "allow" or "deny".
	Action string `json:"action"`
	// Policy is the chain ID ("gnp:x", "policy:ns/x", "profile:x") and Rule
	// its rule index; Policy "" with Reason for end-of-chain drops.
	Policy  string `json:"policy,omitempty"`
	Rule    int    `json:"rule"`
	Reason  string `json:"reason"`
	Packets uint64 `json:"packets"`
}

// Key is what aggregation groups by (besides the interval).
func (r *Record) key() string {
	return r.Src.String() + "|" + r.Dst.String() + "|" + r.Proto + "|" + itoa(int(r.DstPort)) + "|" + r.Direction + "|" + r.Action + "|" + r.Policy + "|" + itoa(r.Rule) + "|" + r.Reason
}

func itoa(i int) string {
	if i < 0 {
		return "-" + itoa(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// Ring aggregates records per flow and interval and keeps the last Cap of
// them. Source ports are not part of the key: repeated connections from
// ephemeral ports are one flow, as in Calico's default aggregation.
type Ring struct {
	mu       sync.Mutex
	interval time.Duration
	cap      int
	seq      uint64
	recs     []*Record // oldest first
	open     map[string]*Record
	// Totals since start, per action, and denied packets per endpoint.
	totals map[string]uint64
	denied map[string]uint64
}

// NewRing keeps up to capacity records of interval length each.
func NewRing(capacity int, interval time.Duration) *Ring {
	return &Ring{interval: interval, cap: capacity, open: map[string]*Record{}, totals: map[string]uint64{}, denied: map[string]uint64{}}
}

// Add counts one packet of r (Seq, Start, End, Packets are set here).
func (g *Ring) Add(r Record, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	start := now.Truncate(g.interval)
	r.SrcPort = 0
	k := r.key()
	if cur := g.open[k]; cur != nil && cur.Start.Equal(start) {
		cur.Packets++
		cur.End = now
		g.seq++
		cur.Seq = g.seq
		g.moveToEnd(cur)
	} else {
		g.seq++
		r.Seq, r.Start, r.End, r.Packets = g.seq, start, now, 1
		rec := &r
		g.open[k] = rec
		g.recs = append(g.recs, rec)
		if len(g.recs) > g.cap {
			old := g.recs[0]
			g.recs = g.recs[1:]
			if g.open[old.key()] == old {
				delete(g.open, old.key())
			}
		}
	}
	g.totals[r.Action]++
	if r.Action == "deny" && r.Endpoint != "" {
		g.denied[r.Endpoint]++
	}
}

func (g *Ring) moveToEnd(rec *Record) {
	for i, x := range g.recs {
		if x == rec {
			copy(g.recs[i:], g.recs[i+1:])
			g.recs[len(g.recs)-1] = rec
			return
		}
	}
}

// Since returns copies of the records updated after seq, oldest first.
func (g *Ring) Since(seq uint64) []Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Record
	for _, r := range g.recs {
		if r.Seq > seq {
			out = append(out, *r)
		}
	}
	return out
}

// Totals returns packets seen per action and denied packets per endpoint.
func (g *Ring) Totals() (perAction, deniedPerEndpoint map[string]uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, d := make(map[string]uint64, len(g.totals)), make(map[string]uint64, len(g.denied))
	for k, v := range g.totals {
		a[k] = v
	}
	for k, v := range g.denied {
		d[k] = v
	}
	return a, d
}

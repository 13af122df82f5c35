package flows

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/calico-docker/calico/internal/api"
)

// Target is another node `calico flows` asks over its TLS API.
type Target struct {
	Node string
	// Addr is host:port of its flows API.
	Addr string
	// Err is why the node cannot be asked at all (no address known).
	Err error
}

// Targets are the other nodes to ask: all Node resources, or only the one
// named only, on their IPv4 address and port.
func Targets(nodes []api.Node, only string, port int) ([]Target, error) {
	var out []Target
	for _, n := range nodes {
		if only != "" && n.Name != only {
			continue
		}
		t := Target{Node: n.Name}
		switch a := nodeAddr(n); {
		case a == "":
			t.Err = errors.New("the Node has no IPv4 address (spec.bgp.ipv4Address)")
		case port <= 0:
			t.Err = errors.New("no flows port to ask other hosts on")
		default:
			t.Addr = net.JoinHostPort(a, strconv.Itoa(port))
		}
		out = append(out, t)
	}
	if only != "" && len(out) == 0 {
		return nil, errors.New("--node " + strconv.Quote(only) + ": no such Node in the datastore")
	}
	return out, nil
}

func nodeAddr(n api.Node) string {
	if n.Spec.BGP == nil {
		return ""
	}
	s := n.Spec.BGP.IPv4Address
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().String()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return ""
}

// Asker polls this host's node over its socket and other nodes over their
// TLS API, and remembers, per node, the last record seen. Which node is
// this host's is learnt from the socket's answer, so it is never asked
// twice; when the socket does not answer, every node is asked over TLS.
type Asker struct {
	// Socket is this host's node's flows socket ("" = none).
	Socket string
	// Only keeps the records of this node ("" = all).
	Only string
	// Remote asks other hosts; nil with RemoteErr when this host has no
	// credentials to.
	Remote    *Remote
	RemoteErr error

	mu   sync.Mutex
	seq  map[string]uint64
	self string
}

// LocalNode is the name of the node that answered on the socket ("" when
// none has).
func (a *Asker) LocalNode() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.self
}

// Poll asks this host's node, then every other target at once, for the
// records after the last poll. It returns the records of the nodes that
// answered, sorted by time (then host), why each target that is not this
// host's did not answer, and the socket's error.
func (a *Asker) Poll(ctx context.Context, targets []Target) (recs []Record, failed map[string]error, localErr error) {
	a.mu.Lock()
	if a.seq == nil {
		a.seq = map[string]uint64{}
	}
	a.mu.Unlock()
	failed = map[string]error{}
	if a.Socket != "" {
		rep, err := a.fetch(ctx, "", func(since uint64) (Reply, error) { return Fetch(ctx, a.Socket, since) })
		localErr = err
		if err == nil && (a.Only == "" || rep.Host == a.Only) {
			recs = append(recs, rep.Records...)
		}
	}
	self := a.LocalNode()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		if t.Node == self && localErr == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := a.fetch(ctx, t.Node, func(since uint64) (Reply, error) {
				switch {
				case t.Err != nil:
					return Reply{}, t.Err
				case a.Remote == nil:
					if a.RemoteErr != nil {
						return Reply{}, a.RemoteErr
					}
					return Reply{}, errors.New("no credentials to ask other hosts")
				}
				return a.Remote.Fetch(ctx, t.Addr, since)
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[t.Node] = err
				return
			}
			recs = append(recs, rep.Records...)
		}()
	}
	wg.Wait()
	slices.SortStableFunc(recs, func(x, y Record) int {
		return cmp.Or(x.End.Compare(y.End), strings.Compare(x.Host, y.Host), cmp.Compare(x.Seq, y.Seq))
	})
	return recs, failed, localErr
}

// fetch asks one node (node "" = the socket's, learnt from its answer)
// for what is new since its last answer, and stamps the host on records.
func (a *Asker) fetch(ctx context.Context, node string, get func(since uint64) (Reply, error)) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	a.mu.Lock()
	key := node
	if key == "" {
		key = a.self
	}
	since := a.seq[key]
	a.mu.Unlock()
	rep, err := get(since)
	if err != nil {
		return Reply{}, err
	}
	if rep.Host == "" {
		rep.Host = node
	}
	for i := range rep.Records {
		if rep.Records[i].Host == "" {
			rep.Records[i].Host = rep.Host
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if node == "" {
		a.self, key = rep.Host, rep.Host
	}
	a.seq[key] = max(a.seq[key], rep.Seq)
	return rep, nil
}

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

// Target is one node `calico flows` asks: this host's node over its unix
// socket, any other over its TLS API.
type Target struct {
	Node string
	// Socket is set for this host's node; Addr (host:port) for the others.
	Socket string
	Addr   string
	// Err is why the node cannot be asked at all (no address known).
	Err error
}

// Targets are the nodes to ask: all Node resources, or only the one named
// only. self is this host's node name, reached through socket; the others
// are reached on their IPv4 address and port.
func Targets(nodes []api.Node, self, only, socket string, port int) ([]Target, error) {
	var out []Target
	found := false
	for _, n := range nodes {
		if only != "" && n.Name != only {
			continue
		}
		found = true
		out = append(out, target(n.Name, nodeAddr(n), self, socket, port))
	}
	if only != "" && !found {
		if only != self {
			return nil, errors.New("--node " + strconv.Quote(only) + ": no such Node in the datastore")
		}
		out = append(out, target(self, "", self, socket, port))
	}
	if len(out) == 0 {
		out = append(out, target(self, "", self, socket, port))
	}
	return out, nil
}

func target(name, addr, self, socket string, port int) Target {
	t := Target{Node: name}
	switch {
	case name == self && socket != "":
		t.Socket = socket
	case addr == "":
		t.Err = errors.New("the Node has no IPv4 address (spec.bgp.ipv4Address)")
	case port <= 0:
		t.Err = errors.New("no flows port to ask other hosts on")
	default:
		t.Addr = net.JoinHostPort(addr, strconv.Itoa(port))
	}
	return t
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

// Asker polls several nodes and remembers, per node, the last record seen.
type Asker struct {
	// Remote asks other hosts; nil with RemoteErr when this host has no
	// credentials to.
	Remote    *Remote
	RemoteErr error
	mu        sync.Mutex
	seq       map[string]uint64
}

// Poll asks every target at once for the records after the last poll. It
// returns the records of the nodes that answered, sorted by time (then
// host), and why each other node did not answer.
func (a *Asker) Poll(ctx context.Context, targets []Target) ([]Record, map[string]error) {
	a.mu.Lock()
	if a.seq == nil {
		a.seq = map[string]uint64{}
	}
	a.mu.Unlock()
	var (
		mu     sync.Mutex
		recs   []Record
		failed = map[string]error{}
		wg     sync.WaitGroup
	)
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := a.ask(ctx, t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[t.Node] = err
				return
			}
			for i := range rep.Records {
				if rep.Records[i].Host == "" {
					rep.Records[i].Host = t.Node
				}
			}
			recs = append(recs, rep.Records...)
		}()
	}
	wg.Wait()
	slices.SortStableFunc(recs, func(x, y Record) int {
		return cmp.Or(x.End.Compare(y.End), strings.Compare(x.Host, y.Host), cmp.Compare(x.Seq, y.Seq))
	})
	return recs, failed
}

func (a *Asker) ask(ctx context.Context, t Target) (Reply, error) {
	if t.Err != nil {
		return Reply{}, t.Err
	}
	a.mu.Lock()
	since := a.seq[t.Node]
	a.mu.Unlock()
	var rep Reply
	var err error
	switch {
	case t.Socket != "":
		rep, err = Fetch(ctx, t.Socket, since)
	case a.Remote == nil:
		err = a.RemoteErr
		if err == nil {
			err = errors.New("no credentials to ask other hosts")
		}
	default:
		rep, err = a.Remote.Fetch(ctx, t.Addr, since)
	}
	if err != nil {
		return Reply{}, err
	}
	a.mu.Lock()
	a.seq[t.Node] = max(a.seq[t.Node], rep.Seq)
	a.mu.Unlock()
	return rep, nil
}

package ui

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/nodectl"
	"github.com/calico-docker/calico/internal/trace"
)

//go:embed assets
var assets embed.FS

// Source is where the view reads from.
type Source struct {
	// Load reads the datastore into a trace.Tracer (fresh on every call).
	Load func(ctx context.Context) (*trace.Tracer, *api.FelixConfigurationSpec, error)
	// Health reads this host's node status (BGP sessions); nil: none.
	Health func(ctx context.Context) (nodectl.Health, error)
	// FlowsSocket is this host's node flows socket ("" = none).
	FlowsSocket string
}

// CheckListen refuses addresses that are not loopback.
func CheckListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:9400", addr)
	}
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return fmt.Errorf("--listen %q: the view has no authentication, so it listens on loopback only (127.0.0.1 or ::1); reach it from elsewhere through an SSH tunnel", addr)
	}
	return nil
}

// Handler serves the page and its API (GET only).
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/cluster", func(w http.ResponseWriter, r *http.Request) {
		t, _, err := src.Load(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		c := cluster(t)
		if src.Health != nil {
			if h, err := src.Health(r.Context()); err == nil {
				c.Node = &h
			}
		}
		writeJSON(w, c)
	})
	mux.HandleFunc("GET /api/matrix", func(w http.ResponseWriter, r *http.Request) {
		t, _, err := src.Load(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		proto, port := uint8(1), uint16(0)
		if p := r.URL.Query().Get("protocol"); p != "" {
			if proto, err = trace.ParseProto(p); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		if p := r.URL.Query().Get("port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				http.Error(w, "port: want 1-65535", http.StatusBadRequest)
				return
			}
			port = uint16(n)
		}
		writeJSON(w, t.Matrix(r.URL.Query().Get("network"), proto, port))
	})
	mux.HandleFunc("GET /api/flows", func(w http.ResponseWriter, r *http.Request) {
		if src.FlowsSocket == "" {
			writeJSON(w, flows.Reply{})
			return
		}
		since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		rep, err := flows.Fetch(ctx, src.FlowsSocket, since)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		out := rep
		out.Records = nil
		for _, x := range rep.Records {
			if x.Action == "deny" {
				out.Records = append(out.Records, x)
			}
		}
		writeJSON(w, out)
	})
	return readOnly(mux)
}

// readOnly refuses everything but GET and HEAD, and sets headers that keep
// the page from being framed or fed foreign scripts.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "read-only view", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// Cluster is /api/cluster.
type Cluster struct {
	Hosts    []Host            `json:"hosts"`
	Networks []Network         `json:"networks"`
	Policies []Policy          `json:"policies"`
	Node     *nodectl.Health   `json:"node,omitempty"`
	Profiles map[string]string `json:"-"`
}

// Host is one Node.
type Host struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	Endpoints int      `json:"endpoints"`
}

// Network is a profile and its endpoints.
type Network struct {
	Name      string            `json:"name"`
	Endpoints []*trace.Endpoint `json:"endpoints"`
}

// Policy is one policy in evaluation order.
type Policy struct {
	ID       string   `json:"id"`
	Order    *float64 `json:"order,omitempty"`
	Selector string   `json:"selector"`
	Types    []string `json:"types"`
	Ingress  int      `json:"ingressRules"`
	Egress   int      `json:"egressRules"`
}

func cluster(t *trace.Tracer) Cluster {
	s := t.Snapshot()
	var c Cluster
	perNode := map[string]int{}
	nets := map[string][]*trace.Endpoint{}
	for _, e := range t.Endpoints() {
		perNode[e.Node]++
		n := e.Network
		if n == "" {
			n = "(none)"
		}
		nets[n] = append(nets[n], e)
	}
	for _, n := range s.Nodes {
		h := Host{Name: n.Name, Endpoints: perNode[n.Name]}
		if n.Spec.BGP != nil {
			for _, a := range []string{n.Spec.BGP.IPv4Address, n.Spec.BGP.IPv6Address} {
				if a != "" {
					h.Addresses = append(h.Addresses, a)
				}
			}
		}
		c.Hosts = append(c.Hosts, h)
	}
	slices.SortFunc(c.Hosts, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
	for name, eps := range nets {
		c.Networks = append(c.Networks, Network{Name: name, Endpoints: eps})
	}
	slices.SortFunc(c.Networks, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range s.GlobalNetworkPolicies {
		c.Policies = append(c.Policies, Policy{ID: "gnp:" + p.Name, Order: p.Spec.Order, Selector: p.Spec.Selector, Types: api.DefaultPolicyTypes(p.Spec), Ingress: len(p.Spec.Ingress), Egress: len(p.Spec.Egress)})
	}
	for _, p := range s.NetworkPolicies {
		c.Policies = append(c.Policies, Policy{ID: "policy:" + p.Namespace + "/" + p.Name, Order: p.Spec.Order, Selector: p.Spec.Selector, Types: api.DefaultPolicyTypes(p.Spec), Ingress: len(p.Spec.Ingress), Egress: len(p.Spec.Egress)})
	}
	slices.SortFunc(c.Policies, func(a, b Policy) int {
		switch {
		case a.Order == nil && b.Order != nil:
			return 1
		case a.Order != nil && b.Order == nil:
			return -1
		case a.Order != nil && *a.Order != *b.Order:
			if *a.Order < *b.Order {
				return -1
			}
			return 1
		}
		return strings.Compare(policyName(a.ID), policyName(b.ID))
	})
	return c
}

func policyName(id string) string {
	if n, ok := strings.CutPrefix(id, "gnp:"); ok {
		return n
	}
	n, _ := strings.CutPrefix(id, "policy:")
	return n
}

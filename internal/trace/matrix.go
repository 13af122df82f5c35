package trace

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Cell is one pair of a reachability matrix.
type Cell struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Allowed bool   `json:"allowed"`
	// Skipped says why no packet was traced (no common IP family).
	Skipped string  `json:"skipped,omitempty"`
	Result  *Result `json:"result,omitempty"`
	// StagedAllowed is the staged policies' verdict (nil when nothing is
	// staged or no packet was traced).
	StagedAllowed *bool `json:"stagedAllowed,omitempty"`
}

// Matrix is the reachability of every endpoint from every other.
type Matrix struct {
	Endpoints []*Endpoint `json:"endpoints"`
	// Cells[i][j] is from Endpoints[i] to Endpoints[j].
	Cells [][]Cell `json:"cells"`
}

// Matrix traces pkt's protocol and port from every endpoint to every
// other; with network set, only endpoints of that network (profile) take
// part. Source and destination addresses are the endpoints' own (IPv4
// when both have one).
func (t *Tracer) Matrix(network string, proto uint8, port uint16) *Matrix {
	m := &Matrix{}
	for _, e := range t.eps {
		if network == "" || e.Network == network || containsStr(e.Profiles, network) {
			m.Endpoints = append(m.Endpoints, e)
		}
	}
	for _, from := range m.Endpoints {
		row := make([]Cell, len(m.Endpoints))
		for j, to := range m.Endpoints {
			c := Cell{From: from.ID, To: to.ID}
			if from == to {
				c.Skipped = "same endpoint"
				c.Allowed = true
				row[j] = c
				continue
			}
			src, dst, ok := CommonFamily(from, to)
			if !ok {
				c.Skipped = "no common IP family"
				row[j] = c
				continue
			}
			p := Packet{Src: src, Dst: dst, Protocol: proto, DstPort: port}
			if proto == 1 {
				p.ICMPType = 8
			} else if proto == 58 {
				p.ICMPType = 128
			}
			if p.Protocol == 1 && dst.Is6() {
				p.Protocol, p.ICMPType = 58, 128
			}
			r := t.Trace(p)
			c.Allowed, c.Result = r.Allowed, &r
			if r.Staged != nil {
				c.StagedAllowed = &r.Staged.Allowed
			}
			row[j] = c
		}
		m.Cells = append(m.Cells, row)
	}
	return m
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// CommonFamily picks one address of each endpoint in a family both have
// (IPv4 first).
func CommonFamily(a, b *Endpoint) (src, dst netip.Addr, ok bool) {
	for _, v4 := range []bool{true, false} {
		var s, d netip.Addr
		for _, p := range a.Addrs {
			if p.Addr().Is4() == v4 && !s.IsValid() {
				s = p.Addr()
			}
		}
		for _, p := range b.Addrs {
			if p.Addr().Is4() == v4 && !d.IsValid() {
				d = p.Addr()
			}
		}
		if s.IsValid() && d.IsValid() {
			return s, d, true
		}
	}
	return netip.Addr{}, netip.Addr{}, false
}

// WriteTable prints the matrix: rows are sources, columns destinations,
// "ok" allowed, "DENY" denied, "-" the endpoint itself; where the staged
// policies would decide otherwise, the staged verdict follows
// ("ok>DENY": allowed now, denied with the staged set).
func (m *Matrix) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"FROM \\ TO"}
	for _, e := range m.Endpoints {
		head = append(head, e.Name())
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i, row := range m.Cells {
		line := []string{m.Endpoints[i].Name()}
		for j, c := range row {
			switch {
			case i == j:
				line = append(line, "-")
			case c.Skipped != "":
				line = append(line, "n/a")
			default:
				v := verdictWord(c.Allowed)
				if c.StagedAllowed != nil && *c.StagedAllowed != c.Allowed {
					v += ">" + verdictWord(*c.StagedAllowed)
				}
				line = append(line, v)
			}
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}

// WriteText prints a trace, step by step.
func (r *Result) WriteText(w io.Writer) {
	p := r.Packet
	port := ""
	if p.DstPort != 0 {
		port = fmt.Sprintf(" port %d", p.DstPort)
	}
	if p.Protocol == 1 || p.Protocol == 58 {
		port = fmt.Sprintf(" type %d code %d", p.ICMPType, p.ICMPCode)
	}
	fmt.Fprintf(w, "packet: %s -> %s %s%s\n", p.Src, p.Dst, dataplane.ProtoName(p.Protocol), port)
	for _, s := range []struct {
		name string
		side *Side
	}{{"egress", &r.Egress}, {"ingress", &r.Ingress}} {
		sd := s.side
		if !sd.Applies {
			addr := p.Src
			if s.name == "ingress" {
				addr = p.Dst
			}
			fmt.Fprintf(w, "%s: %s is no workload endpoint: no policy applies on this side\n", s.name, addr)
			continue
		}
		e := sd.Endpoint
		fmt.Fprintf(w, "%s of %s (%s on host %s, labels %s):\n", s.name, e.Name(), e.ID, e.Node, labelText(e.Labels))
		for _, st := range sd.Steps {
			what := st.Kind
			if st.Chain != "" {
				what += " " + st.Chain
			}
			if st.Rule >= 0 {
				what += fmt.Sprintf(" rule %d", st.Rule)
			}
			fmt.Fprintf(w, "  %-48s %s\n", what, st.Detail)
		}
		verdict := "DENY"
		if sd.Allowed {
			verdict = "ALLOW"
		}
		fmt.Fprintf(w, "  => %s (%s)\n", verdict, sd.Decider)
	}
	fmt.Fprintf(w, "verdict: %s\n", r.Summary)
	if st := r.Staged; st != nil {
		fmt.Fprintf(w, "%s\n", st.Summary)
		if st.Changed {
			for _, sd := range []*Side{&st.Egress, &st.Ingress} {
				if !sd.Applies {
					continue
				}
				for _, step := range sd.Steps {
					if strings.Contains(step.Chain, StagedPrefix) {
						what := step.Kind + " " + step.Chain
						if step.Rule >= 0 {
							what += fmt.Sprintf(" rule %d", step.Rule)
						}
						fmt.Fprintf(w, "  %-48s %s\n", what, step.Detail)
					}
				}
			}
		}
	}
}

func verdictWord(allowed bool) string {
	if allowed {
		return "ok"
	}
	return "DENY"
}

func labelText(l map[string]string) string {
	if len(l) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/trace"
)

func init() { register(newFlowsCmd) }

func newFlowsCmd() *cobra.Command {
	var socket, from, to, output string
	var follow, denied, allowed bool
	var interval time.Duration
	var ds *datastore.Config
	cmd := &cobra.Command{
		Use:   "flows [--follow] [--denied|--allowed] [--from X] [--to Y] [-o table|json]",
		Short: "Show this node's recent flows and the policy rule that allowed or denied each",
		Long: `Ask the calico node on this host (over its local socket, --socket) for
the flows it recorded: each flow per 10 s interval with both endpoints, the
action, and the policy or profile and rule index that decided, or why no
rule did. Flow logs are off until FelixConfiguration sets
flowLogsFileEnabled: true. X and Y are a container, an endpoint or an
address. With a reachable datastore endpoints are shown by container name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			if denied && allowed {
				return fmt.Errorf("--denied and --allowed exclude each other: give one or neither")
			}
			if interval <= 0 {
				return fmt.Errorf("--interval %s: want a positive duration", interval)
			}
			names := flowNamer(cmd, ds)
			keep := func(r *flows.Record) bool {
				switch {
				case denied && r.Action != "deny", allowed && r.Action != "allow":
					return false
				case from != "" && !matchesRef(from, r.Src.String(), r.SrcEndpoint, names(r.SrcEndpoint)):
					return false
				case to != "" && !matchesRef(to, r.Dst.String(), r.DstEndpoint, names(r.DstEndpoint)):
					return false
				}
				return true
			}
			out := cmd.OutOrStdout()
			var seq uint64
			header := true
			for {
				rep, err := flows.Fetch(cmd.Context(), socket, seq)
				if err != nil {
					return err
				}
				var recs []flows.Record
				for i := range rep.Records {
					if keep(&rep.Records[i]) {
						recs = append(recs, rep.Records[i])
					}
				}
				seq = rep.Seq
				if output == "json" {
					if follow {
						enc := json.NewEncoder(out)
						for _, r := range recs {
							if err := enc.Encode(r); err != nil {
								return err
							}
						}
					} else if err := writeJSON(out, nonNil(recs)); err != nil {
						return err
					}
				} else {
					writeFlowTable(out, recs, names, header)
					header = false
				}
				if !follow {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "socket", flows.DefaultSocket, "the node's flows socket")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing flows as they are updated")
	f.BoolVar(&denied, "denied", false, "only denied flows")
	f.BoolVar(&allowed, "allowed", false, "only allowed flows")
	f.StringVar(&from, "from", "", "only flows from this container, endpoint or address")
	f.StringVar(&to, "to", "", "only flows to this container, endpoint or address")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	f.DurationVar(&interval, "interval", time.Second, "with --follow: how often to ask")
	ds = addDatastoreFlags(cmd)
	return cmd
}

func nonNil(r []flows.Record) []flows.Record {
	if r == nil {
		return []flows.Record{}
	}
	return r
}

// flowNamer maps endpoint IDs to container names using the datastore when
// it answers quickly; otherwise names are the IDs.
func flowNamer(cmd *cobra.Command, cfg *datastore.Config) func(id string) string {
	names := map[string]string{}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	if st, err := openStore(ctx, cfg); err == nil {
		if t, err := trace.Load(ctx, st); err == nil {
			for _, e := range t.Endpoints() {
				names[e.ID] = e.Name()
			}
		}
		st.Close()
	}
	return func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id
	}
}

func matchesRef(ref, addr, id, name string) bool {
	if ref == addr || (id != "" && (ref == id || ref == name)) {
		return true
	}
	_, short, _ := strings.Cut(id, "/")
	return id != "" && ref == short
}

func writeFlowTable(w io.Writer, recs []flows.Record, names func(string) string, header bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "TIME\tHOST\tSOURCE\tDESTINATION\tPROTO\tPORT\tACTION\tBY\tPACKETS")
	}
	side := func(addr, id string) string {
		if id == "" {
			return addr
		}
		return names(id) + " (" + addr + ")"
	}
	for _, r := range recs {
		by := r.Reason
		if r.Policy != "" {
			by = fmt.Sprintf("%s rule %d", r.Policy, r.Rule)
		}
		by += " [" + r.Direction
		if r.Endpoint != "" {
			by += " of " + names(r.Endpoint)
		}
		by += "]"
		port := fmt.Sprint(r.DstPort)
		if r.Proto == "icmp" || r.Proto == "icmpv6" {
			port = fmt.Sprintf("type %d", r.DstPort>>8)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.End.Local().Format(time.TimeOnly), r.Host,
			side(r.Src.String(), r.SrcEndpoint), side(r.Dst.String(), r.DstEndpoint), r.Proto, port, strings.ToUpper(r.Action), by, r.Packets)
	}
	_ = tw.Flush()
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/pki"
	"github.com/calico-docker/calico/internal/trace"
)

func init() { register(newFlowsCmd) }

func newFlowsCmd() *cobra.Command {
	var socket, from, to, output, node, pkiDir string
	var follow, denied, allowed bool
	var port int
	var interval time.Duration
	var ds *datastore.Config
	cmd := &cobra.Command{
		Use:   "flows [--node NAME] [--follow] [--denied|--allowed] [--from X] [--to Y] [-o table|json]",
		Short: "Show the nodes' recent flows and the policy rule that allowed or denied each",
		Long: `Ask the calico nodes for the flows they recorded: each flow per 10 s
interval with both endpoints (container, network, labels), the host that
recorded it, the action, and the policy or profile and rule index that
decided, or why no rule did. Flow logs are off until FelixConfiguration
sets flowLogsFileEnabled: true.

By default every node in the datastore is asked, or only --node NAME. This
host's node answers over its local socket (--socket); the others over
their flows API (--port, TLS with this host's certificate from --pki-dir,
which they require: run as root on a node host). A node that does not
answer is reported on stderr; the others' flows are still shown. X and Y
are a container, an endpoint or an address.`,
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
			if port < 0 || port > 65535 {
				return fmt.Errorf("--port %d: want 1-65535", port)
			}
			names, nodes, dsErr := flowCluster(cmd, ds)
			if dsErr != nil && node == "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "datastore not reachable (%v): asking this host's node only\n", dsErr)
			}
			var targets []flows.Target
			if dsErr == nil {
				t, err := flows.Targets(nodes, node, port)
				if err != nil {
					return err
				}
				targets = t
			}
			asker := &flows.Asker{Socket: socket, Only: node}
			if cfg, err := flows.ClientTLS(pki.Paths{Dir: pkiDir}); err != nil {
				asker.RemoteErr = err
			} else {
				asker.Remote = flows.NewRemote(cfg)
			}
			keep := func(r *flows.Record) bool {
				switch {
				case denied && r.Action != "deny", allowed && r.Action != "allow":
					return false
				case from != "" && !matchesRef(from, r.Src.String(), r.SrcEndpoint, r.SrcName, names(r.SrcEndpoint)):
					return false
				case to != "" && !matchesRef(to, r.Dst.String(), r.DstEndpoint, r.DstName, names(r.DstEndpoint)):
					return false
				}
				return true
			}
			out := cmd.OutOrStdout()
			header := true
			reported := map[string]string{}
			for {
				all, failed, localErr := asker.Poll(cmd.Context(), targets)
				if self := asker.LocalNode(); dsErr != nil && node != "" && self != "" && self != node {
					return fmt.Errorf("--node %s: this host's node is %s, and the datastore, which has %s's address, is not reachable: %w", node, self, node, dsErr)
				}
				answered := len(targets) - len(failed)
				if localErr == nil {
					answered = max(answered, 1)
				} else if len(targets) == 0 || node == "" && asker.Remote == nil {
					// Only this host could be asked: its socket is the news.
					failed["this host"] = localErr
				}
				if answered == 0 && !follow {
					msgs := []string{}
					if localErr != nil {
						msgs = append(msgs, "this host's node: "+localErr.Error())
					}
					for _, t := range targets {
						if failed[t.Node] != nil {
							msgs = append(msgs, fmt.Sprintf("node %s: %v", t.Node, failed[t.Node]))
						}
					}
					return fmt.Errorf("no node answered: %s", strings.Join(msgs, "; "))
				}
				for n, err := range failed {
					if msg := err.Error(); reported[n] != msg {
						fmt.Fprintf(cmd.ErrOrStderr(), "node %s did not answer: %s\n", n, msg)
						reported[n] = msg
					}
				}
				for n := range reported {
					if failed[n] == nil {
						delete(reported, n)
					}
				}
				var recs []flows.Record
				for i := range all {
					if keep(&all[i]) {
						recs = append(recs, all[i])
					}
				}
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
	f.StringVar(&node, "node", "", "ask only this node (default: every node in the datastore)")
	f.StringVar(&socket, "socket", flows.DefaultSocket, "this host's node's flows socket")
	f.IntVar(&port, "port", flows.DefaultPort, "the other nodes' flows API port (calico node run --flows-port)")
	f.StringVar(&pkiDir, "pki-dir", pki.Dir, "this host's cluster credentials, to ask other nodes")
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

// flowCluster reads the nodes to ask and a map from endpoint IDs to
// container names from the datastore, when it answers quickly; otherwise
// names are the IDs and only this host's node is asked.
func flowCluster(cmd *cobra.Command, cfg *datastore.Config) (func(id string) string, []api.Node, error) {
	names := map[string]string{}
	byID := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return byID, nil, err
	}
	defer st.Close()
	snap, felix, err := trace.LoadSnapshot(ctx, st)
	if err != nil {
		return byID, nil, err
	}
	for _, e := range trace.New(snap, felix).Endpoints() {
		names[e.ID] = e.Name()
	}
	return byID, snap.Nodes, nil
}

func matchesRef(ref, addr, id, name, dsName string) bool {
	if ref == addr || (name != "" && ref == name) || (id != "" && (ref == id || ref == dsName)) {
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
	side := func(addr, id, name, network string, labels map[string]string) string {
		if name == "" && id != "" {
			name = names(id)
		}
		if name == "" {
			return addr
		}
		in := []string{addr}
		if network != "" {
			in = append(in, network)
		}
		if l := compactLabels(labels); l != "" {
			in = append(in, l)
		}
		return name + " (" + strings.Join(in, " ") + ")"
	}
	for _, r := range recs {
		by := r.Reason
		if r.Policy != "" {
			by = fmt.Sprintf("%s rule %d", r.Policy, r.Rule)
		}
		by += " [" + r.Direction
		if r.Endpoint != "" {
			who := names(r.Endpoint)
			if r.Direction == "ingress" && r.DstName != "" {
				who = r.DstName
			} else if r.Direction == "egress" && r.SrcName != "" {
				who = r.SrcName
			}
			by += " of " + who
		}
		by += "]"
		port := fmt.Sprint(r.DstPort)
		if r.Proto == "icmp" || r.Proto == "icmpv6" {
			port = fmt.Sprintf("type %d", r.DstPort>>8)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.End.Local().Format(time.TimeOnly), r.Host,
			side(r.Src.String(), r.SrcEndpoint, r.SrcName, r.SrcNetwork, r.SrcLabels),
			side(r.Dst.String(), r.DstEndpoint, r.DstName, r.DstNetwork, r.DstLabels), r.Proto, port, strings.ToUpper(r.Action), by, r.Packets)
	}
	_ = tw.Flush()
}

// compactLabels shows labels as k=v,k=v, sorted, leaving out the ones the
// Docker plugin sets (the container and network are shown already).
func compactLabels(l map[string]string) string {
	var kv []string
	for k, v := range l {
		if strings.HasPrefix(k, "docker.") || strings.HasPrefix(k, "projectcalico.org/") {
			continue
		}
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

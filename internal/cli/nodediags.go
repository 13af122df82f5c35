package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/diags"
	"github.com/calico-docker/calico/internal/nodectl"
)

func newNodeDiagsCmd() *cobra.Command {
	var output, healthAddr string
	var logLines int
	var ds *datastore.Config
	cmd := &cobra.Command{
		Use:   "diags [-o FILE]",
		Short: "Collect diagnostics of this node into one tar.gz (secrets left out)",
		Long: `Collect what support needs from this host into a tar.gz: version, node
status, the nftables table and ruleset, routes and rules per family, links
and addresses, BGP peers and the routes the node installed, the node
container's recent logs, resources from the datastore, an IPAM check and
the Docker plugin state. Keys, tokens and passwords are left out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if output == "" {
				output = fmt.Sprintf("calico-diags-%s.tar.gz", time.Now().UTC().Format("20060102-150405"))
			}
			src := diags.Source{
				Version: Version,
				Node:    defaultNodeName(),
				Health: func(ctx context.Context) (nodectl.Health, error) {
					return nodectl.ReadHealth(ctx, healthAddr)
				},
			}
			if st, err := openStore(ctx, ds); err == nil {
				defer st.Close()
				src.Store = st
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "datastore not collected: %v\n", err)
			}
			if dc, err := nodectl.Docker(); err == nil {
				defer dc.Close()
				src.Logs = func(ctx context.Context) (string, error) { return nodectl.Logs(ctx, dc, logLines), nil }
				src.Docker = func(ctx context.Context) (map[string][]byte, error) { return dockerDiags(ctx, dc) }
			}
			f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("-o %s: %w", output, err)
			}
			names, err := diags.Collect(ctx, src, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				_ = os.Remove(output)
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Diagnostics (%d files) written to %s\n", len(names), output)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "archive to write (default calico-diags-<time>.tar.gz)")
	cmd.Flags().StringVar(&healthAddr, "health-addr", agent.DefaultHealthAddr, "the node's health address")
	cmd.Flags().IntVar(&logLines, "log-lines", 2000, "how many recent lines of the node's log to include")
	ds = addDatastoreFlags(cmd)
	return cmd
}

// dockerDiags describes Docker's side: calico networks, plugins, and the
// node container (its configuration is redacted by diags.Collect).
func dockerDiags(ctx context.Context, dc *client.Client) (map[string][]byte, error) {
	out := map[string][]byte{}
	var firstErr error
	note := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	if res, err := dc.NetworkList(ctx, client.NetworkListOptions{}); err == nil {
		var nets []any
		for _, n := range res.Items {
			if n.Driver == "calico" || n.IPAM.Driver == "calico-ipam" {
				if ins, err := dc.NetworkInspect(ctx, n.ID, client.NetworkInspectOptions{}); err == nil {
					nets = append(nets, ins.Network)
					continue
				}
				nets = append(nets, n)
			}
		}
		out["networks.json"], _ = json.MarshalIndent(nets, "", "  ")
	} else {
		note(fmt.Errorf("list networks: %w", err))
	}
	if res, err := dc.PluginList(ctx, client.PluginListOptions{}); err == nil {
		out["plugins.json"], _ = json.MarshalIndent(res.Items, "", "  ")
	} else {
		note(fmt.Errorf("list plugins: %w", err))
	}
	if res, err := dc.ContainerInspect(ctx, nodectl.ContainerName, client.ContainerInspectOptions{}); err == nil {
		c := res.Container
		summary := map[string]any{"Name": c.Name, "State": c.State, "RestartCount": c.RestartCount}
		if c.Config != nil {
			summary["Image"] = c.Config.Image
			summary["Cmd"] = c.Config.Cmd
			summary["Env"] = c.Config.Env
		}
		out["node-container.json"], _ = json.MarshalIndent(summary, "", "  ")
	} else {
		note(fmt.Errorf("inspect node container: %w", err))
	}
	return out, firstErr
}

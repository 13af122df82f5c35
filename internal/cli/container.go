package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/plugin/docker"
)

// calico container add/remove/list: the seed's way of networking a
// container started with --net=none, without the network plugin.

func init() { register(newContainerCmd) }

type containerFlags struct {
	ds   *datastore.Config
	node string
}

func newContainerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "container",
		Short: "Network containers started with --net=none (add, remove, list)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	f := &containerFlags{ds: addDatastoreFlags(cmd)}
	cmd.PersistentFlags().StringVar(&f.node, "node", containerNodeName(), "this host's node name (default $NODENAME, else /var/lib/calico/nodename, else the hostname)")
	cmd.AddCommand(newContainerAddCmd(f), newContainerRemoveCmd(f), newContainerListCmd(f))
	return cmd
}

// nodenameFile is where a Calico node records its name (as calico/node does
// for the CNI plugin), so that tools on the host agree with it.
const nodenameFile = "/var/lib/calico/nodename"

// containerNodeName is $NODENAME, else the name the node recorded, else the
// hostname: the endpoint must carry the name of the node that programs it.
func containerNodeName() string {
	if n := strings.TrimSpace(os.Getenv("NODENAME")); n != "" {
		return n
	}
	if b, err := os.ReadFile(nodenameFile); err == nil {
		if n := strings.TrimSpace(string(b)); n != "" {
			return n
		}
	}
	return defaultNodeName()
}

// withContainerEnv opens the datastore and Docker and runs fn.
func withContainerEnv(ctx context.Context, f *containerFlags, needDocker bool, fn func(docker.ContainerEnv) error) error {
	if f.node == "" {
		return fmt.Errorf("no node name: set --node or NODENAME")
	}
	st, err := openStore(ctx, f.ds)
	if err != nil {
		return err
	}
	defer st.Close()
	log := newLogger("container")
	env := docker.ContainerEnv{Store: st, IPAM: ipam.New(st, ipam.WithLogger(log)), Node: f.node, Logger: log}
	dc, err := client.New(client.FromEnv)
	if err != nil {
		if needDocker {
			return fmt.Errorf("docker client: %w", err)
		}
	} else {
		defer dc.Close()
		env.Docker = dc
	}
	return fn(env)
}

// endpointLabelsFlag reads --labels like `calico selector match` and
// refuses labels an endpoint cannot carry.
func endpointLabelsFlag(items []string) (map[string]string, error) {
	out, err := parseLabelsFlag(items)
	if err != nil {
		return nil, err
	}
	probe := &api.Profile{ObjectMeta: api.ObjectMeta{Name: "labels", Labels: out}}
	if err := api.Validate(probe); err != nil {
		return nil, fmt.Errorf("--labels: %w", err)
	}
	return out, nil
}

func newContainerAddCmd(f *containerFlags) *cobra.Command {
	var ips, profiles, labels []string
	cmd := &cobra.Command{
		Use:   "add CONTAINER [--ip IP] [--profile P ...] [--labels k=v,...]",
		Short: "Connect a running --net=none container: veth, address, workload endpoint",
		Long: `Connect a container started with --net=none to Calico: a veth into its
network namespace (host side cali<container ID prefix>), an address from the
enabled IPPools (or --ip; give --ip twice for an IPv4 and an IPv6 address), and
a workload endpoint (orchestrator "docker") carrying the container's Docker
labels, docker.container=<name> and --labels. Without --profile the endpoint
only gets traffic that a policy allows.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := docker.AddOptions{Profiles: profiles}
			for _, s := range ips {
				ip, err := netip.ParseAddr(strings.TrimSpace(s))
				if err != nil {
					return fmt.Errorf("--ip %q is not an IP address", s)
				}
				opts.IPs = append(opts.IPs, ip.Unmap())
			}
			var err error
			if opts.Labels, err = endpointLabelsFlag(labels); err != nil {
				return err
			}
			return withContainerEnv(cmd.Context(), f, true, func(env docker.ContainerEnv) error {
				w, err := docker.AddContainer(cmd.Context(), env, args[0], opts)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "container %s: %s on %s (endpoint %s)\n",
					containerName(w), strings.Join(w.Spec.IPNetworks, ", "), w.Spec.InterfaceName, w.Name)
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&ips, "ip", nil, "address to give the container (IPv4 and/or IPv6; default: one IPv4 address from IPAM)")
	cmd.Flags().StringArrayVar(&profiles, "profile", nil, "profile the endpoint uses (repeatable; must exist)")
	cmd.Flags().StringArrayVar(&labels, "labels", nil, "endpoint labels, k=v,k2=v2 (repeatable)")
	return cmd
}

func newContainerRemoveCmd(f *containerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove CONTAINER",
		Short: "Disconnect a container networked by `calico container add` and free its addresses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withContainerEnv(cmd.Context(), f, false, func(env docker.ContainerEnv) error {
				w, err := docker.RemoveContainer(cmd.Context(), env, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "container %s: removed %s (released %s)\n",
					containerName(w), w.Name, strings.Join(w.Spec.IPNetworks, ", "))
				return nil
			})
		},
	}
}

func newContainerListCmd(f *containerFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List this node's container endpoints (network plugin and container add)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "table" && output != "json" {
				return fmt.Errorf("--output %q: want table or json", output)
			}
			return withContainerEnv(cmd.Context(), f, false, func(env docker.ContainerEnv) error {
				weps, err := docker.ListEndpoints(cmd.Context(), env.Store, env.Node)
				if err != nil {
					return err
				}
				return printContainers(cmd.OutOrStdout(), weps, output)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func printContainers(w io.Writer, weps []*api.WorkloadEndpoint, output string) error {
	if output == "json" {
		if weps == nil {
			weps = []*api.WorkloadEndpoint{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(weps)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tID\tVIA\tADDRESSES\tINTERFACE\tPROFILES\tLABELS")
	for _, e := range weps {
		id := e.Spec.ContainerID
		if len(id) > 12 {
			id = id[:12]
		}
		via := "container add"
		if e.Spec.Orchestrator == docker.OrchestratorLibnetwork {
			via = "network plugin"
		}
		keys := make([]string, 0, len(e.Labels))
		for k := range e.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var ls []string
		for _, k := range keys {
			ls = append(ls, k+"="+e.Labels[k])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(containerName(e)), dash(id), via,
			dash(strings.Join(e.Spec.IPNetworks, ",")), dash(e.Spec.InterfaceName), dash(strings.Join(e.Spec.Profiles, ",")), dash(strings.Join(ls, ",")))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// containerName is the Docker name of an endpoint's container (its label;
// spec.workload holds the short container ID that Calico's endpoint name is
// derived from).
func containerName(w *api.WorkloadEndpoint) string {
	if n := w.Labels[docker.LabelContainer]; n != "" {
		return n
	}
	return w.Spec.Workload
}

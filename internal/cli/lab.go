package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/lab"
)

func init() { register(newLabCmd) }

// NodeImage is the node image this binary builds and runs.
func NodeImage() string { return "calico/node:" + imageTag() }

// TestImage is the busybox image the lab and tests use.
const TestImage = "calico-lab/busybox:latest"

func imageTag() string {
	v := strings.NewReplacer("+", "-", "/", "-").Replace(Version)
	if v == "" {
		return "dev"
	}
	return v
}

func newLabCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "A multi-host Calico lab on this machine (network namespaces, a dockerd per host)",
	}
	cmd.PersistentFlags().StringVar(&name, "name", envOr("CALICO_LAB", "lab"), "lab name")

	var hosts, subnets int
	var noNodes, swarm bool
	var iptBackend string
	up := &cobra.Command{
		Use:   "up",
		Short: "Build the lab (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			st, err := lab.Up(ctx, lab.Config{
				Name: name, Hosts: hosts, Subnets: subnets, CalicoBin: self,
				NodeImage: NodeImage(), TestImage: TestImage, StartNodes: !noNodes, IptablesBackend: iptBackend, Swarm: swarm,
				Progress: cmd.ErrOrStderr(), Logger: newLogger("lab"),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s is up: %d hosts; etcd at %s; dockerd with Docker's defaults, iptables back end %s\n",
				st.Name, len(st.Hosts), strings.Join(st.EtcdEndpoints, ","), st.IptablesBackend)
			for _, h := range st.Hosts {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s  %s  calico lab exec --name %s %s -- docker ps\n", h.Name, h.Addr(), st.Name, h.Name)
			}
			return nil
		},
	}
	up.Flags().IntVar(&hosts, "hosts", 2, "number of hosts")
	up.Flags().IntVar(&subnets, "subnets", 1, "number of fabric subnets (more than 1 adds a router between them)")
	up.Flags().BoolVar(&noNodes, "no-nodes", false, "do not start calico node on the hosts")
	up.Flags().BoolVar(&swarm, "swarm", false, "make the hosts a Docker swarm (host1 manager) with the managed calico plugin on each")
	up.Flags().StringVar(&iptBackend, "iptables-backend", "", "iptables back end of the hosts' dockerds: nft or legacy (default: what this machine's iptables is)")

	down := &cobra.Command{
		Use:   "down",
		Short: "Remove everything the lab made, and nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return lab.Down(cmd.Context(), name, cmd.ErrOrStderr())
		},
	}

	var output string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the lab's hosts, fabric and datastore",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := lab.GetStatus(name)
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			case "", "table":
			default:
				return fmt.Errorf("invalid --output %q: want table or json", output)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "HOST\tNETNS\tIP\tIPV6\tDOCKER_HOST\tDOCKERD")
			for _, h := range s.Hosts {
				state := "stopped"
				if h.DockerdRunning {
					state = "running"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.NetNS, h.IP, h.IP6, h.DockerHost, state)
			}
			_ = w.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "fabric: netns %s", s.Fabric.NetNS)
			for _, b := range s.Fabric.Bridges {
				fmt.Fprintf(cmd.OutOrStdout(), ", bridge %s %s %s", b.Name, b.Subnet, b.Subnet6)
			}
			if s.Router != "" {
				fmt.Fprintf(cmd.OutOrStdout(), ", router netns %s", s.Router)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\netcd: %s\n", strings.Join(s.EtcdEndpoints, ","))
			if s.IptablesBackend != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "iptables back end: %s\n", s.IptablesBackend)
			}
			return nil
		},
	}
	status.Flags().StringVarP(&output, "output", "o", "", "output format: table or json")

	env := &cobra.Command{
		Use:   "env HOST",
		Short: "Print export lines that let this machine's shell use a lab host: its dockerd and the datastore (local sockets, the host's certificate)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := lab.Load(name)
			if err != nil {
				return err
			}
			h, err := st.HostByName(args[0])
			if err != nil {
				return err
			}
			vars, err := st.MachineEnv(cmd.Context(), h)
			if err != nil {
				return err
			}
			for _, kv := range vars {
				k, v, _ := strings.Cut(kv, "=")
				fmt.Fprintf(cmd.OutOrStdout(), "export %s=%q\n", k, v)
			}
			return nil
		},
	}

	execCmd := &cobra.Command{
		Use:   "exec HOST -- CMD [ARGS...]",
		Short: "Run a command inside a lab host's network and mount namespaces",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := lab.Load(name)
			if err != nil {
				return err
			}
			h, err := st.HostByName(args[0])
			if err != nil {
				return err
			}
			c, err := lab.ExecCmd(context.Background(), st, h, args[1], args[2:]...)
			if err != nil {
				return err
			}
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return &ExitError{Code: ee.ExitCode()}
				}
				return err
			}
			return nil
		},
	}
	cmd.AddCommand(up, down, status, env, execCmd)
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

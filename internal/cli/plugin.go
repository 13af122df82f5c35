package cli

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/plugin/managed"
)

// calico plugin create|proxy: the managed (v2) Docker plugin that swarm
// needs; see internal/plugin/managed and docs/docker.md.

func init() { register(newPluginCmd) }

func newPluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "The managed Docker plugin (for swarm): create it, or run its proxy",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var o managed.CreateOptions
	var dockerHost, dir string
	create := &cobra.Command{
		Use:   "create",
		Short: "Build the managed plugin from this binary and install it with `docker plugin create`",
		Long: `Build the managed plugin (config.json and a rootfs holding this static
binary) and install it on the dockerd with 'docker plugin create'; with
--enable also enable it. The plugin forwards Docker's calls to the calico
node on the same host, which must run there (calico node start|run).
With --dir only the plugin directory is written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			o.Bin = self
			if dir != "" {
				if err := managed.Build(dir, self); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "plugin directory written to %s (install it with: docker plugin create %s %s)\n", dir, orDefault(o.Name, managed.DefaultName), dir)
				return nil
			}
			o.Docker = []string{"docker"}
			if dockerHost != "" {
				o.Docker = append(o.Docker, "-H", dockerHost)
			}
			if err := managed.Create(cmd.Context(), o); err != nil {
				return err
			}
			state := "installed (disabled; enable it with `docker plugin enable " + orDefault(o.Name, managed.DefaultName) + "`)"
			if o.Enable {
				state = "installed and enabled"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "plugin %s %s\n", orDefault(o.Name, managed.DefaultName), state)
			return nil
		},
	}
	create.Flags().StringVar(&o.Name, "name", managed.DefaultName, "plugin reference (also the --driver and --ipam-driver name)")
	create.Flags().BoolVar(&o.Enable, "enable", true, "enable the plugin once created")
	create.Flags().BoolVar(&o.Replace, "replace", false, "remove an installed plugin of that name first")
	create.Flags().StringVar(&o.NodeSockets, "node-sockets", "", "host directory of the node's calico.sock and calico-ipam.sock (default "+managed.HostSocketsDir+")")
	create.Flags().StringVarP(&dockerHost, "host", "H", "", "dockerd to install on (default: $DOCKER_HOST or the local one)")
	create.Flags().StringVar(&dir, "dir", "", "only write the plugin directory DIR (config.json, rootfs/)")

	var listen, nodeDir string
	proxy := &cobra.Command{
		Use:    "proxy",
		Short:  "The managed plugin's entrypoint: forward Docker's plugin calls to the node's sockets",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p := managed.NewProxy(managed.ProxyConfig{Listen: listen, NodeDir: nodeDir, Logger: newLogger("plugin-proxy")})
			return p.Run(ctx)
		},
	}
	proxy.Flags().StringVar(&listen, "listen", filepath.Join("/run/docker/plugins", managed.SocketName), "socket to serve")
	proxy.Flags().StringVar(&nodeDir, "node-dir", managed.NodeSocketsDir, "directory of the node's sockets")
	cmd.AddCommand(create, proxy)
	return cmd
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

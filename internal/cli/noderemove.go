package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane/dockerfw"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/nodectl"
	"github.com/calico-docker/calico/internal/plugin/docker"
	"github.com/calico-docker/calico/internal/resources"
	"github.com/calico-docker/calico/internal/uninstall"
)

// Directories the node container mounts from the host; --purge deletes them.
var purgeDirs = []string{"/var/lib/calico", "/var/run/calico", "/var/log/calico"}

func newNodeRemoveCmd() *cobra.Command {
	var force, fromDatastore, purge bool
	var name, healthAddr, unitDir string
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Remove the node from this host: container, calico networks, dataplane, sockets (and with flags its datastore records and files)",
		Long: `Remove everything the calico node put on this host:

  - the calico Docker networks of this host (removed through the plugin while
    the node still runs; the profiles of the same name stay in the datastore)
  - the calico-node container
  - the nftables table "inet calico", routes with protocol 80, interfaces
    named cali* and vxlan.calico
  - our rule in Docker's DOCKER-USER chain (both iptables back ends;
    Docker's own rules and chains stay)
  - the plugin sockets in /run/docker/plugins
  - the systemd unit written by "calico node install-systemd"

It refuses while containers are attached to calico networks (they would lose
their network) unless --force. With --datastore it also deletes this host's
Node resource and gives up its IPAM block affinities (not possible when the
datastore is embedded in this very node: it goes with the node). With
--purge it deletes /var/lib/calico (the embedded etcd's data, if any),
/var/run/calico and /var/log/calico. Docker images are left.`,
		Args: cobra.NoArgs,
	}
	ds := addDatastoreFlags(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "remove even while containers are attached to calico networks (they lose their network)")
	cmd.Flags().BoolVar(&fromDatastore, "datastore", false, "also delete this host's Node resource and release its IPAM block affinities")
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete /var/lib/calico (embedded etcd data), /var/run/calico and /var/log/calico")
	cmd.Flags().StringVar(&name, "name", agent.DefaultConfig().NodeName, "node name, when the node is not running to tell it (NODENAME; default: hostname)")
	cmd.Flags().StringVar(&healthAddr, "health-addr", agent.DefaultHealthAddr, "the node's health address")
	cmd.Flags().StringVar(&unitDir, "unit-dir", defaultUnitDir, "where install-systemd wrote the unit")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		out := cmd.OutOrStdout()
		dc, err := nodectl.Docker()
		if err != nil {
			return err
		}
		defer dc.Close()
		if err := nodectl.Ping(ctx, dc); err != nil {
			return err
		}
		h, healthErr := nodectl.ReadHealth(ctx, healthAddr)
		running := healthErr == nil
		if running && h.Node != "" {
			name = h.Node
		}
		spec, haveSpec, err := nodectl.Current(ctx, dc)
		if err != nil {
			return err
		}
		embedded := haveSpec && slices.Contains(spec.Args, "--embedded-etcd")

		// 1. Calico networks and the containers on them.
		nets, attached, err := calicoNetworks(ctx, dc)
		if err != nil {
			return err
		}
		if len(attached) > 0 && !force {
			return fmt.Errorf("containers are attached to calico networks and would lose their network: %s; remove them (docker rm -f ...) or use --force",
				strings.Join(attached, ", "))
		}
		var left []string
		for _, n := range nets {
			if !running {
				left = append(left, n)
				continue
			}
			if _, err := dc.NetworkRemove(ctx, n, client.NetworkRemoveOptions{}); err != nil {
				fmt.Fprintf(out, "network %s: not removed: %v\n", n, err)
				left = append(left, n)
				continue
			}
			fmt.Fprintf(out, "removed docker network %s\n", n)
		}
		if len(left) > 0 {
			fmt.Fprintf(out, "left docker networks %s: Docker removes a network only through its plugin; start the node (calico node start) and run remove again, or remove them while it runs\n", strings.Join(left, ", "))
		}

		// 2. The node container.
		removed, err := nodectl.Stop(ctx, dc)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "container %s: %s\n", nodectl.ContainerName, map[bool]string{true: "removed", false: "not present"}[removed])

		// 3. Datastore records.
		if fromDatastore {
			if embedded {
				fmt.Fprintln(out, "datastore: embedded in this node, gone with it (--purge deletes its data)")
			} else if err := removeFromDatastore(ctx, out, ds, name); err != nil {
				return err
			}
		}

		// 4. Dataplane and sockets. The node is stopped, so nothing re-creates them.
		dp, err := uninstall.Dataplane("")
		fmt.Fprintf(out, "dataplane: table inet calico %s, %d routes with protocol 80, %d interfaces (%s)\n",
			map[bool]string{true: "deleted", false: "not present"}[dp.Table], dp.Routes, len(dp.Links), strings.Join(dp.Links, " "))
		if err != nil {
			return fmt.Errorf("remove dataplane: %w", err)
		}
		n, err := dockerfw.New(dockerfw.Options{}).Remove(ctx)
		fmt.Fprintf(out, "docker firewall: %d rule(s) of ours removed from DOCKER-USER\n", n)
		if err != nil {
			return fmt.Errorf("remove our DOCKER-USER rules: %w", err)
		}
		socks, err := uninstall.Sockets(agent.DefaultPluginDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "plugin sockets removed: %d\n", len(socks))

		// 5. The systemd unit, if we wrote one.
		if err := removeUnit(ctx, out, unitDir); err != nil {
			return err
		}

		// 6. Files.
		if purge {
			dirs := slices.Clone(purgeDirs)
			if d := nodectl.ArgValue(spec.Args, "--etcd-data-dir"); d != "" && !underAny(d, dirs) {
				dirs = append(dirs, d)
			}
			for _, d := range dirs {
				if err := os.RemoveAll(d); err != nil {
					return fmt.Errorf("remove %s: %w", d, err)
				}
			}
			fmt.Fprintf(out, "deleted %s\n", strings.Join(dirs, " "))
		}
		fmt.Fprintln(out, "node removed from this host")
		return nil
	}
	return cmd
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// calicoNetworks lists Docker networks with driver calico, and the
// containers attached to them as "container (network)".
func calicoNetworks(ctx context.Context, dc *client.Client) (nets, attached []string, err error) {
	res, err := dc.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("driver", "calico")})
	if err != nil {
		return nil, nil, fmt.Errorf("list docker networks: %w", err)
	}
	for _, n := range res.Items {
		if n.Driver != "calico" {
			continue
		}
		nets = append(nets, n.Name)
		ins, err := dc.NetworkInspect(ctx, n.ID, client.NetworkInspectOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("inspect docker network %s: %w", n.Name, err)
		}
		for _, c := range ins.Network.Containers {
			attached = append(attached, fmt.Sprintf("%s (%s)", c.Name, n.Name))
		}
	}
	slices.Sort(nets)
	slices.Sort(attached)
	return nets, attached, nil
}

// removeFromDatastore deletes the Node resource of name, gives up its IPAM
// block affinities and forgets its Docker network records.
func removeFromDatastore(ctx context.Context, out io.Writer, cfg *datastore.Config, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("datastore: %w", err)
	}
	defer st.Close()
	err = resources.New(st).Delete(ctx, api.KindNode, "", name, "")
	switch {
	case err == nil:
		fmt.Fprintf(out, "datastore: deleted Node %s\n", name)
	case errors.Is(err, datastore.ErrNotFound):
		fmt.Fprintf(out, "datastore: no Node %s\n", name)
	default:
		return err
	}
	blocks, err := ipam.New(st).ReleaseHostAffinities(ctx, name, false)
	if err != nil {
		return fmt.Errorf("release IPAM affinities of %s: %w", name, err)
	}
	fmt.Fprintf(out, "datastore: released %d IPAM block affinities of %s\n", len(blocks), name)
	// The node's Docker network records and its memories of swarm
	// addresses it took up (the swarm allocator releases those addresses).
	for _, prefix := range []string{docker.NetworksPrefix, docker.SwarmPrefix} {
		kvs, _, err := st.List(ctx, prefix+name+"/")
		if err != nil {
			return fmt.Errorf("list docker records of %s: %w", name, err)
		}
		for _, kv := range kvs {
			if err := st.Delete(ctx, kv.Key, 0); err != nil && !errors.Is(err, datastore.ErrNotFound) {
				return fmt.Errorf("delete %s: %w", kv.Key, err)
			}
		}
	}
	return nil
}

func removeUnit(ctx context.Context, out io.Writer, dir string) error {
	p := unitPath(dir)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), unitMarker) {
		fmt.Fprintf(out, "left %s: not written by calico node install-systemd\n", p)
		return nil
	}
	if dir == defaultUnitDir {
		if _, err := exec.LookPath("systemctl"); err == nil {
			// Best effort: on a host without a running systemd this fails, and
			// removing the file is all there is to do.
			_ = exec.CommandContext(ctx, "systemctl", "disable", unitName).Run()
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	fmt.Fprintf(out, "removed %s\n", p)
	return nil
}

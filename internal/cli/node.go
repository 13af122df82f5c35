package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/bgp"
	"github.com/calico-docker/calico/internal/dataplane/dockerfw"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/join"
	"github.com/calico-docker/calico/internal/nodectl"
	"github.com/calico-docker/calico/internal/pki"
)

func init() { register(newNodeCmd) }

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run, start, stop and inspect the calico node on this host",
	}
	cmd.AddCommand(newNodeRunCmd(), newNodeStartCmd(), newNodeStopCmd(), newNodeStatusCmd(), newNodeImageCmd(), newNodeCheckSystemCmd(),
		newNodeRemoveCmd(), newNodeInstallSystemdCmd(), newNodeTokenCmd())
	cmd.AddCommand(newNodeDiagsCmd())
	return cmd
}

// nodeFlags are shared by `node run` and `node start`.
type nodeFlags struct {
	name, ip, ip6       string
	noBGP, noPlugin     bool
	noDockerFirewall    bool
	embeddedEtcd        bool
	insecurePlaintext   bool
	etcdListen          string
	etcdDataDir         string
	etcdSocket          string
	etcdMembers         int
	pkiDir              string
	joinURL, joinToken  string
	joinPort            int
	healthAddr          string
	metricsAddr         string
	flowsSocket         string
	flowsPort           int
	resync              time.Duration
	bgpPort             int
	ds                  *datastore.Config
	endpointsFlagChosen func() bool
}

func addNodeFlags(cmd *cobra.Command) *nodeFlags {
	def := agent.DefaultConfig()
	f := &nodeFlags{}
	cmd.Flags().StringVar(&f.name, "name", def.NodeName, "node name (NODENAME; default: hostname)")
	cmd.Flags().StringVar(&f.ip, "ip", def.IPv4, "this host's IPv4 address with prefix length, e.g. 10.0.0.1/24 (IP; default: autodetect)")
	cmd.Flags().StringVar(&f.ip6, "ip6", def.IPv6, "this host's IPv6 address with prefix length (IP6)")
	cmd.Flags().BoolVar(&f.noBGP, "no-bgp", !def.BGP, "do not run the BGP speaker")
	cmd.Flags().BoolVar(&f.noPlugin, "no-docker-plugin", false, "do not serve the Docker network and IPAM plugins")
	cmd.Flags().BoolVar(&f.noDockerFirewall, "no-docker-firewall", false, "do not keep the rule that lets workload traffic through Docker's iptables firewall (DOCKER-USER)")
	cmd.Flags().BoolVar(&f.embeddedEtcd, "embedded-etcd", false, "first host: create the cluster CA and run the embedded etcd (TLS with client certificates); other hosts join with --join-url and --join-token")
	cmd.Flags().BoolVar(&f.insecurePlaintext, "insecure-plaintext", false, "with --embedded-etcd: run one plaintext etcd member without authentication on --etcd-listen (INSECURE: anyone who reaches it can rewrite the policy; a warning is logged at every start)")
	cmd.Flags().StringVar(&f.etcdListen, "etcd-listen", "", "client URLs the embedded etcd listens on (comma separated; default https://<host IP>:2379 plus the local socket --etcd-socket)")
	cmd.Flags().StringVar(&f.etcdDataDir, "etcd-data-dir", agent.DefaultEtcdDataDir, "embedded etcd data directory")
	cmd.Flags().StringVar(&f.etcdSocket, "etcd-socket", agent.DefaultEtcdSocket, "local unixs:// socket of the embedded etcd member")
	cmd.Flags().IntVar(&f.etcdMembers, "etcd-members", agent.DefaultEtcdMembers, "first host: how many hosts run an etcd member (1 keeps a single member; hosts past this are datastore clients)")
	cmd.Flags().StringVar(&f.pkiDir, "pki-dir", def.PKIDir, "the datastore credentials: cluster CA, this host's certificate, join tokens; calicoctl.cfg is written next to it")
	cmd.Flags().StringVar(&f.joinURL, "join-url", os.Getenv("CALICO_JOIN_URL"), "join the cluster whose first host serves joins here, e.g. https://10.0.0.1:2378 (CALICO_JOIN_URL)")
	cmd.Flags().StringVar(&f.joinToken, "join-token", os.Getenv("CALICO_JOIN_TOKEN"), "join token printed by \"calico node token create\" on the first host (CALICO_JOIN_TOKEN)")
	cmd.Flags().IntVar(&f.joinPort, "join-port", def.JoinPort, "port the first host serves joins on (0: none)")
	cmd.Flags().StringVar(&f.healthAddr, "health-addr", agent.DefaultHealthAddr, "health endpoint address (/liveness, /readiness, /status)")
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-addr", agent.DefaultMetricsAddr, "Prometheus metrics address")
	cmd.Flags().StringVar(&f.flowsSocket, "flows-socket", flows.DefaultSocket, "unix socket `calico flows` asks (served once FelixConfiguration flowLogsFileEnabled is true; \"\" for none)")
	cmd.Flags().IntVar(&f.flowsPort, "flows-port", def.FlowsPort, "port on this host's IPv4 address where other hosts' `calico flows` ask for its flows (TLS, client certificate of the cluster CA required; 0: none)")
	cmd.Flags().DurationVar(&f.resync, "resync-interval", 0, "dataplane resync interval (default: FelixConfiguration, else 90s)")
	cmd.Flags().IntVar(&f.bgpPort, "bgp-port", 179, "BGP listen port")
	f.ds = addDatastoreFlagsOnly(cmd)
	if fl := cmd.PersistentFlags().Lookup("etcd-endpoints"); fl != nil {
		fl.Usage = "an external etcd cluster's client URLs, comma separated (env ETCD_ENDPOINTS; default: the managed datastore, see --embedded-etcd and --join-url)"
		fl.DefValue = "[]"
	}
	f.endpointsFlagChosen = func() bool {
		return cmd.Flags().Changed("etcd-endpoints") || os.Getenv("ETCD_ENDPOINTS") != ""
	}
	return f
}

func newNodeRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node daemon in the foreground in this network namespace",
		Args:  cobra.NoArgs,
	}
	f := addNodeFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg := agent.DefaultConfig()
		cfg.NodeName, cfg.IPv4, cfg.IPv6 = f.name, f.ip, f.ip6
		cfg.BGP, cfg.DockerPlugin = !f.noBGP, !f.noPlugin
		cfg.DockerFirewall = !f.noDockerFirewall
		cfg.Datastore = *f.ds
		if !f.endpointsFlagChosen() {
			cfg.Datastore.Endpoints = nil // no external etcd named: the managed datastore
		}
		cfg.EmbeddedEtcd = f.embeddedEtcd
		cfg.InsecurePlaintext = f.insecurePlaintext
		cfg.EtcdListenURLs = splitList(f.etcdListen)
		if f.insecurePlaintext && len(cfg.EtcdListenURLs) == 0 {
			cfg.EtcdListenURLs = []string{datastore.DefaultEndpoint}
		}
		cfg.EtcdDataDir = f.etcdDataDir
		cfg.EtcdSocket = f.etcdSocket
		cfg.EtcdMembers = f.etcdMembers
		cfg.PKIDir = f.pkiDir
		cfg.JoinURL, cfg.JoinToken, cfg.JoinPort = f.joinURL, f.joinToken, f.joinPort
		cfg.HealthAddr, cfg.MetricsAddr = f.healthAddr, f.metricsAddr
		cfg.FlowsSocket, cfg.FlowsPort = f.flowsSocket, f.flowsPort
		cfg.ResyncInterval = f.resync
		cfg.BGPPort = f.bgpPort
		cfg.Logger = newLogger("") // each part of the node names itself
		a, err := agent.New(cfg, Version)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		go releaseAfterFirstProgramming(ctx, a.Status)
		return a.Run(ctx)
	}
	return cmd
}

func newNodeStartCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the node as the calico-node container (idempotent) and wait until it is ready",
		Long: `Start the node as the calico-node container (idempotent) and wait until it is ready.

The datastore is one of:
  - the first host (nothing configured, or --embedded-etcd): creates the
    cluster CA and runs etcd embedded, TLS with client certificates only;
    print a join token for other hosts with "calico node token create";
  - another host: --join-url https://<first host>:2378 --join-token K10...
    (the first three hosts run etcd members, the others are clients);
  - an external etcd: --etcd-endpoints (and --etcd-ca-cert-file,
    --etcd-cert-file, --etcd-key-file, mounted read-only into the node).
A host that joined before needs none of these again. Credentials are in
--pki-dir; "calico" on the host finds them through /var/lib/calico/calicoctl.cfg.
See docs/datastore.md.`,
		Args: cobra.NoArgs,
	}
	f := addNodeFlags(cmd)
	var image string
	var timeout time.Duration
	cmd.Flags().StringVar(&image, "image", NodeImage(), "node image (built from this binary when missing)")
	cmd.Flags().DurationVar(&timeout, "timeout", 90*time.Second, "how long to wait for the node to become ready")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		out := cmd.OutOrStdout()
		step := func(what string) func(error, string) error {
			fmt.Fprintf(out, "%s ... ", what)
			return func(err error, ok string) error {
				if err != nil {
					fmt.Fprintln(out, "failed")
					return err
				}
				fmt.Fprintln(out, ok)
				return nil
			}
		}
		fmt.Fprint(out, "checking the host ... ")
		if err := checkHostBeforeStart(ctx, out, !f.noDockerFirewall); err != nil {
			return err
		}
		done := step("checking docker")
		dc, err := nodectl.Docker()
		if err == nil {
			err = nodectl.Ping(ctx, dc)
		}
		if err := done(err, "ok"); err != nil {
			return err
		}
		sock, err := nodectl.DockerSocketPath()
		if err != nil {
			return err
		}

		embedded := f.embeddedEtcd
		endpoints := strings.Join(f.ds.Endpoints, ",")
		p := pki.Paths{Dir: f.pkiDir}
		done = step("checking the datastore")
		external := f.endpointsFlagChosen()
		switch {
		case external:
			pctx, cancel := context.WithTimeout(ctx, 4*time.Second)
			s, err := datastore.NewEtcd(pctx, *f.ds)
			cancel()
			if err != nil {
				if errors.Is(err, datastore.ErrUnavailable) {
					err = fmt.Errorf("%w; the node does not fall back to an embedded datastore when the configured one is unreachable", err)
				}
				return done(err, "")
			}
			s.Close()
			_ = done(nil, "external etcd reachable at "+endpoints)
		case f.joinURL != "" && !p.HasNodeCert():
			// Join here, before the container starts, so that a bad token
			// or URL is reported now; the node finds the credentials.
			ip, err := hostIPForJoin(f.ip)
			if err != nil {
				return done(err, "")
			}
			r, err := join.Join(ctx, f.joinURL, f.joinToken, f.name, []net.IP{ip}, p)
			if err != nil {
				return done(err, "")
			}
			_ = done(nil, "joined via "+f.joinURL+"; credentials in "+p.Dir+" (datastore "+strings.Join(r.Endpoints, ",")+")")
		case p.HasNodeCert():
			_ = done(nil, "managed datastore, credentials in "+p.Dir)
		case embedded && f.insecurePlaintext:
			_ = done(nil, "embedded, INSECURE plaintext on "+f.etcdListen)
		default:
			embedded = true
			_ = done(nil, "none configured; this is the first host: it creates the cluster CA and runs etcd embedded (TLS, client certificates)")
		}

		done = step("node image " + image)
		self, err := os.Executable()
		if err != nil {
			return err
		}
		built, err := nodectl.EnsureImage(ctx, dc, image, self)
		if err := done(err, map[bool]string{true: "built", false: "present"}[built]); err != nil {
			return err
		}

		args := []string{"node", "run", "--name", f.name, "--health-addr", f.healthAddr, "--metrics-addr", f.metricsAddr,
			"--bgp-port", fmt.Sprint(f.bgpPort)}
		if f.ip != "" {
			args = append(args, "--ip", f.ip)
		}
		if f.ip6 != "" {
			args = append(args, "--ip6", f.ip6)
		}
		if f.noBGP {
			args = append(args, "--no-bgp")
		}
		if f.noPlugin {
			args = append(args, "--no-docker-plugin")
		}
		if f.noDockerFirewall {
			args = append(args, "--no-docker-firewall")
		}
		if f.resync > 0 {
			args = append(args, "--resync-interval", f.resync.String())
		}
		var env []string
		var roFiles []string
		if external {
			env = append(env, "ETCD_ENDPOINTS="+endpoints)
			for k, v := range map[string]string{"ETCD_CA_CERT_FILE": f.ds.CACertFile, "ETCD_CERT_FILE": f.ds.CertFile, "ETCD_KEY_FILE": f.ds.KeyFile} {
				if v != "" {
					env = append(env, k+"="+v)
					roFiles = append(roFiles, v)
				}
			}
		} else {
			args = append(args, "--etcd-data-dir", f.etcdDataDir, "--pki-dir", f.pkiDir, "--etcd-socket", f.etcdSocket,
				"--join-port", fmt.Sprint(f.joinPort), "--etcd-members", fmt.Sprint(f.etcdMembers))
			if f.etcdListen != "" {
				args = append(args, "--etcd-listen", f.etcdListen)
			}
			if embedded || p.HasCAKey() {
				args = append(args, "--embedded-etcd")
				if f.insecurePlaintext {
					args = append(args, "--insecure-plaintext")
				}
			}
		}
		if lvl := os.Getenv("CALICO_LOG_LEVEL"); lvl != "" {
			env = append(env, "CALICO_LOG_LEVEL="+lvl)
		}
		if n := os.Getenv("CALICO_BGP_MAX_PREFIXES"); n != "" {
			env = append(env, "CALICO_BGP_MAX_PREFIXES="+n)
		}
		done = step("container " + nodectl.ContainerName)
		state, err := nodectl.Start(ctx, dc, nodectl.Spec{Image: image, Args: args, Env: env, DockerSocket: sock, ReadOnlyFiles: roFiles})
		if err := done(err, state); err != nil {
			return err
		}

		fmt.Fprint(out, "waiting for the node to be ready ")
		deadline := time.Now().Add(timeout)
		var last string
		for {
			h, err := nodectl.ReadHealth(ctx, f.healthAddr)
			if err == nil && h.Ready {
				fmt.Fprintf(out, " ready (%d endpoints)\n", h.Endpoints)
				if embedded && !f.insecurePlaintext {
					fmt.Fprintf(out, "datastore: etcd embedded in the node (TLS, client certificates); credentials in %s\n", f.pkiDir)
					fmt.Fprintf(out, "other hosts join with: calico node start --join-url https://<this host's IP>:%d --join-token \"$(calico node token create)\"\n", f.joinPort)
				}
				return nil
			}
			if err != nil {
				last = err.Error()
			} else {
				last = h.Reason
			}
			if st, ierr := nodectl.Inspect(ctx, dc); ierr == nil && st.Exists && st.Restarts >= 2 {
				fmt.Fprintln(out, "failed")
				logs := nodectl.Logs(context.Background(), dc, 20)
				return fmt.Errorf("the node keeps exiting (%d restarts): %s\nlast node log lines:\n%s", st.Restarts, last, logs)
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(out, "timed out")
				logs := nodectl.Logs(context.Background(), dc, 20)
				return fmt.Errorf("node not ready after %v: %s\nlast node log lines:\n%s", timeout, last, logs)
			}
			fmt.Fprint(out, ".")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return cmd
}

func newNodeStopCmd() *cobra.Command {
	var remove bool
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Remove the calico-node container; workloads keep their networking",
		Long: "Remove the calico-node container. Workloads keep their networking: the dataplane is left in place.\n" +
			"With --remove the node is being removed from this host: its rule in Docker's iptables firewall\n" +
			"(DOCKER-USER, every back end and family) is deleted too, after which Docker's FORWARD policy\n" +
			"applies to calico workloads again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dc, err := nodectl.Docker()
			if err != nil {
				return err
			}
			removed, err := nodectl.Stop(cmd.Context(), dc)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case removed && !remove:
				fmt.Fprintln(out, "node stopped (the dataplane is left in place)")
			case removed:
				fmt.Fprintln(out, "node stopped")
			default:
				fmt.Fprintln(out, "node was not running")
			}
			if !remove {
				return nil
			}
			n, err := dockerfw.New(dockerfw.Options{}).Remove(cmd.Context())
			if err != nil {
				return fmt.Errorf("remove our rules from Docker's firewall: %w", err)
			}
			fmt.Fprintf(out, "removed %d rule(s) of ours from Docker's firewall (DOCKER-USER)\n", n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "also remove what the node added to Docker's iptables firewall")
	return cmd
}

func newNodeStatusCmd() *cobra.Command {
	var healthAddr string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the node runs, its readiness, endpoints and BGP peers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			ctx := cmd.Context()
			if dc, err := nodectl.Docker(); err == nil {
				if st, err := nodectl.Inspect(ctx, dc); err == nil {
					switch {
					case !st.Exists:
						fmt.Fprintln(out, "calico-node container: not present")
					default:
						fmt.Fprintf(out, "calico-node container: %s (image %s, started %s, restarts %d)\n",
							st.Status, st.Image, st.Started.Local().Format(time.DateTime), st.Restarts)
					}
				}
			}
			h, err := nodectl.ReadHealth(ctx, healthAddr)
			if err != nil {
				fmt.Fprintln(out, "calico process is not running (no answer at "+healthAddr+")")
				return &ExitError{Code: 1}
			}
			state := "ready"
			if !h.Ready {
				state = "not ready: " + h.Reason
			}
			fmt.Fprintf(out, "calico process is running: node %s, %s, %d local endpoints, version %s\n", h.Node, state, h.Endpoints, h.Version)
			if h.DockerFirewall != "" {
				fmt.Fprintf(out, "docker firewall: %s\n", h.DockerFirewall)
			}
			if h.Forwarding != "" {
				fmt.Fprintf(out, "forwarding: %s\n", h.Forwarding)
			}
			if len(h.Peers) > 0 {
				var peers []bgp.PeerStatus
				err := json.Unmarshal(h.Peers, &peers)
				if err != nil {
					return err
				}
				fmt.Fprintln(out)
				bgp.FormatStatus(out, peers)
			} else {
				fmt.Fprintln(out, "\nBGP: not running")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&healthAddr, "health-addr", agent.DefaultHealthAddr, "the node's health address")
	return cmd
}

func newNodeImageCmd() *cobra.Command {
	var image string
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build the node image (FROM scratch, this binary) on the Docker host unless it is current",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dc, err := nodectl.Docker()
			if err != nil {
				return err
			}
			defer dc.Close()
			self, err := os.Executable()
			if err != nil {
				return err
			}
			built, err := nodectl.EnsureImage(cmd.Context(), dc, image, self)
			if err != nil {
				return err
			}
			state := "up to date"
			if built {
				state = "built"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", image, state)
			return nil
		},
	}
	cmd.Flags().StringVar(&image, "image", NodeImage(), "image name")
	return cmd
}

package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/spf13/cobra"
)

func init() { register(newDatastoreCmd) }

func newDatastoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datastore",
		Short: "Run the etcd datastore, list and remove its members",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDatastoreRunCmd(), newDatastoreMemberCmd())
	return cmd
}

// newDatastoreRunCmd runs embedded etcd in the foreground. Flag names are
// etcd's own, so an operator's etcd habits carry over.
func newDatastoreRunCmd() *cobra.Command {
	var cfg datastore.EmbeddedConfig
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run an etcd server (embedded) in the foreground until SIGTERM or SIGINT",
		Long: `Run an etcd server in this process, in the foreground, with etcd's flag
names. With the defaults it is a single-member cluster on 127.0.0.1:2379 that
the other calico commands find without configuration. It stops cleanly on
SIGTERM or SIGINT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = newLogger("etcd")
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runDatastore(ctx, cmd, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", datastore.DefaultDataDir, "directory of the etcd data (created if missing)")
	f.StringVar(&cfg.Name, "name", defaultMemberName(), "member name, unique in the cluster (default: the host name)")
	f.StringSliceVar(&cfg.ListenClientURLs, "listen-client-urls", []string{datastore.DefaultEndpoint}, "URLs to serve clients on (port 0: any free port)")
	f.StringSliceVar(&cfg.ListenPeerURLs, "listen-peer-urls", []string{datastore.DefaultListenPeerURL}, "URLs to serve cluster peers on")
	f.StringSliceVar(&cfg.AdvertiseClientURLs, "advertise-client-urls", nil, "client URLs told to the cluster (default: --listen-client-urls)")
	f.StringSliceVar(&cfg.AdvertisePeerURLs, "initial-advertise-peer-urls", nil, "peer URLs told to the cluster (default: --listen-peer-urls)")
	f.StringVar(&cfg.InitialCluster, "initial-cluster", "", "name=peerURL,... of the initial members (default: this member alone)")
	f.StringVar(&cfg.InitialClusterState, "initial-cluster-state", "new", "new, or existing to join a running cluster")
	f.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", "calico-etcd", "token that keeps separate clusters apart")
	f.UintVar(&cfg.TickMs, "heartbeat-interval", 50, "raft heartbeat interval in ms")
	f.UintVar(&cfg.ElectionMs, "election-timeout", 500, "raft election timeout in ms (a fresh single member waits about this long before serving)")
	f.StringVar(&cfg.CertFile, "cert-file", "", "TLS certificate for clients")
	f.StringVar(&cfg.KeyFile, "key-file", "", "TLS key for clients")
	f.StringVar(&cfg.TrustedCAFile, "trusted-ca-file", "", "CA that signs client certificates")
	f.BoolVar(&cfg.ClientCertAuth, "client-cert-auth", false, "require client certificates signed by --trusted-ca-file")
	f.StringVar(&cfg.PeerCertFile, "peer-cert-file", "", "TLS certificate for peers")
	f.StringVar(&cfg.PeerKeyFile, "peer-key-file", "", "TLS key for peers")
	f.StringVar(&cfg.PeerTrustedCAFile, "peer-trusted-ca-file", "", "CA that signs peer certificates")
	f.BoolVar(&cfg.PeerClientCertAuth, "peer-client-cert-auth", false, "require peer certificates signed by --peer-trusted-ca-file")
	f.BoolVar(&cfg.InsecurePlaintext, "insecure-plaintext", false, "allow http:// client or peer URLs on non-loopback addresses (INSECURE: no encryption, no authentication; warned at every start)")
	f.StringVar(&cfg.AutoCompactionRetention, "auto-compaction-retention", "1h", `history to keep (periodic compaction), e.g. "1h"; "0" keeps all`)
	f.UintVar(&cfg.MaxTxnOps, "max-txn-ops", 10000, "most operations in one transaction")
	f.UintVar(&cfg.MaxRequestBytes, "max-request-bytes", 8<<20, "largest client request in bytes")
	f.StringVar(&cfg.LogLevel, "log-level", "warn", "etcd's own log level: debug, info, warn, error")
	return cmd
}

// defaultMemberName names the member after its host, as Calico names nodes.
func defaultMemberName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "default"
}

func runDatastore(ctx context.Context, cmd *cobra.Command, cfg datastore.EmbeddedConfig) error {
	log := newLogger("datastore")
	begin := time.Now()
	emb, err := datastore.RunEmbedded(ctx, cfg)
	if err != nil {
		return err
	}
	defer emb.Close()
	if err := emb.WaitReady(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // signalled before the cluster formed: a clean stop
		}
		return err
	}
	// One line on stdout that scripts and tests can wait for.
	fmt.Fprintf(cmd.OutOrStdout(), "etcd ready: serving clients at %s (data in %s)\n", strings.Join(emb.Endpoints(), ","), cfg.DataDir)
	log.Info("etcd ready", "endpoints", emb.Endpoints(), "data-dir", cfg.DataDir, "startup", time.Since(begin).Round(time.Millisecond))
	select {
	case <-ctx.Done():
		log.Info("stopping etcd")
	case <-emb.Done():
		if err := emb.Err(); err != nil {
			return err
		}
	}
	if err := emb.Close(); err != nil {
		return err
	}
	log.Info("etcd stopped")
	return nil
}

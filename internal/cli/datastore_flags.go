package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/spf13/cobra"
)

// addDatastoreFlags adds the etcd client flags to cmd (as persistent flags,
// so a command group can carry them for all its subcommands) and returns
// the Config they fill in when the command line is parsed. Defaults come
// from Calico's environment variables ETCD_ENDPOINTS, ETCD_CA_CERT_FILE,
// ETCD_CERT_FILE and ETCD_KEY_FILE; a flag given on the command line wins.
//
// With none of them given, the settings come from a CalicoAPIConfig file:
// --config, else the first of /etc/calico/calicoctl.cfg and
// /var/lib/calico/calicoctl.cfg (written by the calico node) that exists.
func addDatastoreFlags(cmd *cobra.Command) *datastore.Config {
	cfg := addDatastoreFlagsOnly(cmd)
	var path string
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "",
		"calicoctl CalicoAPIConfig file with the datastore settings (default: "+configPathsHelp()+", when no --etcd-* flag or ETCD_* variable is given)")
	prev := cmd.PersistentPreRunE
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if prev != nil {
			if err := prev(c, args); err != nil {
				return err
			}
		}
		return resolveDatastoreConfig(c, cfg, path)
	}
	return cfg
}

// addDatastoreFlagsOnly is addDatastoreFlags without the configuration
// files (the node: its datastore is what its flags and environment say).
func addDatastoreFlagsOnly(cmd *cobra.Command) *datastore.Config {
	cfg := &datastore.Config{}
	endpoints := []string{datastore.DefaultEndpoint}
	if env := splitList(os.Getenv("ETCD_ENDPOINTS")); len(env) > 0 {
		endpoints = env
	}
	fs := cmd.PersistentFlags()
	fs.StringSliceVar(&cfg.Endpoints, "etcd-endpoints", endpoints,
		"etcd client URLs, comma separated (env ETCD_ENDPOINTS)")
	fs.StringVar(&cfg.CACertFile, "etcd-ca-cert-file", os.Getenv("ETCD_CA_CERT_FILE"),
		"CA certificate that signs the etcd servers' certificates (env ETCD_CA_CERT_FILE)")
	fs.StringVar(&cfg.CertFile, "etcd-cert-file", os.Getenv("ETCD_CERT_FILE"),
		"client certificate for etcd (env ETCD_CERT_FILE)")
	fs.StringVar(&cfg.KeyFile, "etcd-key-file", os.Getenv("ETCD_KEY_FILE"),
		"key of the etcd client certificate (env ETCD_KEY_FILE)")
	return cfg
}

// splitList splits a comma-separated list and drops empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// openStore connects to the datastore cfg describes. An unreachable
// datastore fails within a few seconds with one line naming the endpoints
// and how to point elsewhere; the error matches datastore.ErrUnavailable.
// The caller closes the store.
func openStore(ctx context.Context, cfg *datastore.Config) (datastore.Store, error) {
	if cfg == nil {
		cfg = &datastore.Config{}
	}
	st, err := datastore.NewEtcd(ctx, *cfg)
	if errors.Is(err, datastore.ErrUnavailable) {
		return nil, fmt.Errorf("%w (set --etcd-endpoints or ETCD_ENDPOINTS, or the etcdEndpoints of %s)", err, configPathsHelp())
	}
	return st, err
}

package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/calico-docker/calico/internal/datastore"
)

// Where `calico` looks for its datastore settings when no --etcd-* flag and
// no ETCD_* variable is given: a user's calicoctl configuration first, then
// the one the calico node writes on its host.
var defaultConfigPaths = []string{"/etc/calico/calicoctl.cfg", "/var/lib/calico/calicoctl.cfg"}

// apiConfig is calicoctl's CalicoAPIConfig (the etcd part).
type apiConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		DatastoreType  string `json:"datastoreType"`
		EtcdEndpoints  string `json:"etcdEndpoints"`
		EtcdCACertFile string `json:"etcdCACertFile"`
		EtcdCertFile   string `json:"etcdCertFile"`
		EtcdKeyFile    string `json:"etcdKeyFile"`
		EtcdCACert     string `json:"etcdCACert"`
		EtcdCert       string `json:"etcdCert"`
		EtcdKey        string `json:"etcdKey"`
		EtcdUsername   string `json:"etcdUsername"`
		EtcdPassword   string `json:"etcdPassword"`
	} `json:"spec"`
}

// loadAPIConfig reads a CalicoAPIConfig file.
func loadAPIConfig(path string) (datastore.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return datastore.Config{}, err
	}
	var c apiConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return datastore.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if c.Kind != "CalicoAPIConfig" || (c.APIVersion != "projectcalico.org/v3" && c.APIVersion != "") {
		return datastore.Config{}, fmt.Errorf("%s: want apiVersion projectcalico.org/v3, kind CalicoAPIConfig (got %q, %q)", path, c.APIVersion, c.Kind)
	}
	s := c.Spec
	switch s.DatastoreType {
	case "", "etcdv3":
	default:
		return datastore.Config{}, fmt.Errorf("%s: spec.datastoreType %q is not supported: this project stores its data in etcd (etcdv3)", path, s.DatastoreType)
	}
	if s.EtcdCACert != "" || s.EtcdCert != "" || s.EtcdKey != "" {
		return datastore.Config{}, fmt.Errorf("%s: inline spec.etcdCACert/etcdCert/etcdKey are not supported: put the PEM in files and use etcdCACertFile/etcdCertFile/etcdKeyFile", path)
	}
	if s.EtcdUsername != "" || s.EtcdPassword != "" {
		return datastore.Config{}, fmt.Errorf("%s: spec.etcdUsername/etcdPassword are not supported: use client certificates (etcdCertFile, etcdKeyFile)", path)
	}
	return datastore.Config{Endpoints: splitList(s.EtcdEndpoints), CACertFile: s.EtcdCACertFile, CertFile: s.EtcdCertFile, KeyFile: s.EtcdKeyFile}, nil
}

// resolveDatastoreConfig fills cfg from a CalicoAPIConfig file when neither
// a datastore flag nor an ETCD_* variable was given. path "" searches
// defaultConfigPaths; a path given explicitly must exist.
func resolveDatastoreConfig(cmd *cobra.Command, cfg *datastore.Config, path string) error {
	// calicoctl's DATASTORE_TYPE: etcdv3 is the only datastore here.
	switch dt := os.Getenv("DATASTORE_TYPE"); dt {
	case "", "etcdv3":
	case "kubernetes":
		return errors.New("DATASTORE_TYPE=kubernetes is not supported: this project stores its data in etcd; set DATASTORE_TYPE=etcdv3 (or unset it) and ETCD_ENDPOINTS")
	default:
		return fmt.Errorf("DATASTORE_TYPE=%q is not supported: want etcdv3", dt)
	}
	explicit := false
	for _, f := range []string{"etcd-endpoints", "etcd-ca-cert-file", "etcd-cert-file", "etcd-key-file"} {
		if fl := cmd.Flags().Lookup(f); fl != nil && fl.Changed {
			explicit = true
		}
	}
	for _, e := range []string{"ETCD_ENDPOINTS", "ETCD_CA_CERT_FILE", "ETCD_CERT_FILE", "ETCD_KEY_FILE"} {
		if os.Getenv(e) != "" {
			explicit = true
		}
	}
	if path != "" {
		c, err := loadAPIConfig(path)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if !explicit {
			*cfg = c
		}
		return nil
	}
	if explicit {
		return nil
	}
	for _, p := range defaultConfigPaths {
		c, err := loadAPIConfig(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		*cfg = c
		return nil
	}
	return nil
}

// configPathsHelp names the files for flag help.
func configPathsHelp() string { return strings.Join(defaultConfigPaths, ", then ") }

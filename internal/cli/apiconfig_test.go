package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func writeCfg(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "calicoctl.cfg")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodCfg = `apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
metadata:
spec:
  datastoreType: "etcdv3"
  etcdEndpoints: "https://10.0.0.1:2379,https://10.0.0.2:2379"
  etcdCACertFile: /etc/calico/ca.pem
  etcdCertFile: /etc/calico/cert.pem
  etcdKeyFile: /etc/calico/key.pem
`

func TestLoadAPIConfig(t *testing.T) {
	c, err := loadAPIConfig(writeCfg(t, goodCfg))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Endpoints, []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}) ||
		c.CACertFile != "/etc/calico/ca.pem" || c.CertFile != "/etc/calico/cert.pem" || c.KeyFile != "/etc/calico/key.pem" {
		t.Fatalf("%+v", c)
	}
	for body, want := range map[string]string{
		strings.Replace(goodCfg, `"etcdv3"`, "kubernetes", 1):                                `spec.datastoreType "kubernetes" is not supported`,
		strings.Replace(goodCfg, "etcdCACertFile: /etc/calico/ca.pem", "etcdCACert: abc", 1): "inline spec.etcdCACert",
		strings.Replace(goodCfg, "CalicoAPIConfig", "IPPool", 1):                             "kind CalicoAPIConfig",
		goodCfg + "  etcdPassword: x\n":                                                      "etcdUsername/etcdPassword are not supported",
	} {
		if _, err := loadAPIConfig(writeCfg(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}

// The file applies only when no flag and no ETCD_* variable is given.
func TestConfigFileVersusFlagsAndEnv(t *testing.T) {
	for _, e := range []string{"ETCD_ENDPOINTS", "ETCD_CA_CERT_FILE", "ETCD_CERT_FILE", "ETCD_KEY_FILE"} {
		t.Setenv(e, "")
	}
	path := writeCfg(t, goodCfg)
	run := func(args ...string) []string {
		t.Helper()
		cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
		cfg := addDatastoreFlags(cmd)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return cfg.Endpoints
	}
	if got := run("--config", path); got[0] != "https://10.0.0.1:2379" {
		t.Fatalf("file not used: %v", got)
	}
	if got := run("--config", path, "--etcd-endpoints", "http://127.0.0.1:1"); !slices.Equal(got, []string{"http://127.0.0.1:1"}) {
		t.Fatalf("flag did not win: %v", got)
	}
	t.Setenv("ETCD_ENDPOINTS", "http://127.0.0.1:2")
	if got := run("--config", path); !slices.Equal(got, []string{"http://127.0.0.1:2"}) {
		t.Fatalf("env did not win: %v", got)
	}
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	addDatastoreFlags(cmd)
	cmd.SetArgs([]string{"--config", filepath.Join(t.TempDir(), "missing.cfg")})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing --config file: %v", err)
	}
}

package cli

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/spf13/cobra"
)

func TestDatastoreFlagsDefaults(t *testing.T) {
	t.Setenv("ETCD_ENDPOINTS", "")
	t.Setenv("ETCD_CA_CERT_FILE", "")
	t.Setenv("ETCD_CERT_FILE", "")
	t.Setenv("ETCD_KEY_FILE", "")
	// The defaults, not whatever calicoctl.cfg this machine holds.
	saved := defaultConfigPaths
	defaultConfigPaths = []string{t.TempDir() + "/absent.cfg"}
	t.Cleanup(func() { defaultConfigPaths = saved })
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	cfg := addDatastoreFlags(cmd)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://127.0.0.1:2379"}; !slices.Equal(cfg.Endpoints, want) {
		t.Fatalf("endpoints %v, want %v", cfg.Endpoints, want)
	}
	if cfg.CACertFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
		t.Fatalf("unexpected TLS settings %+v", cfg)
	}
}

func TestDatastoreFlagsEnvAndOverride(t *testing.T) {
	t.Setenv("ETCD_ENDPOINTS", "http://10.0.0.1:2379, http://10.0.0.2:2379")
	t.Setenv("ETCD_CA_CERT_FILE", "/ca.pem")
	t.Setenv("ETCD_CERT_FILE", "/cert.pem")
	t.Setenv("ETCD_KEY_FILE", "/key.pem")

	// Environment only.
	parent := &cobra.Command{Use: "p"}
	child := &cobra.Command{Use: "c", RunE: func(*cobra.Command, []string) error { return nil }}
	parent.AddCommand(child)
	cfg := addDatastoreFlags(parent) // persistent: the subcommand inherits them
	parent.SetArgs([]string{"c"})
	if err := parent.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}; !slices.Equal(cfg.Endpoints, want) {
		t.Fatalf("endpoints %v, want %v", cfg.Endpoints, want)
	}
	if cfg.CACertFile != "/ca.pem" || cfg.CertFile != "/cert.pem" || cfg.KeyFile != "/key.pem" {
		t.Fatalf("TLS settings from env not applied: %+v", cfg)
	}

	// Flags win over the environment.
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	cfg = addDatastoreFlags(cmd)
	cmd.SetArgs([]string{"--etcd-endpoints", "http://127.0.0.1:1,http://127.0.0.1:2", "--etcd-ca-cert-file", "/other-ca.pem"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}; !slices.Equal(cfg.Endpoints, want) {
		t.Fatalf("endpoints %v, want %v", cfg.Endpoints, want)
	}
	if cfg.CACertFile != "/other-ca.pem" || cfg.CertFile != "/cert.pem" {
		t.Fatalf("flag override wrong: %+v", cfg)
	}
}

// deadEndpoint returns a loopback URL nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestOpenStoreUnreachableFailsFast(t *testing.T) {
	ep := deadEndpoint(t)
	start := time.Now()
	st, err := openStore(context.Background(), &datastore.Config{Endpoints: []string{ep}})
	elapsed := time.Since(start)
	if err == nil {
		st.Close()
		t.Fatal("openStore on a dead endpoint succeeded")
	}
	if !errors.Is(err, datastore.ErrUnavailable) {
		t.Fatalf("error does not match ErrUnavailable: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "datastore unreachable at "+ep) || !strings.Contains(msg, "set --etcd-endpoints or ETCD_ENDPOINTS") || strings.Contains(msg, "\n") {
		t.Fatalf("unclear error: %q", msg)
	}
	if elapsed > 6*time.Second {
		t.Fatalf("took %v to fail, want a few seconds", elapsed)
	}
	t.Logf("failed after %v: %s", elapsed.Round(time.Millisecond), msg)
}

func TestOpenStoreBadEndpoint(t *testing.T) {
	_, err := openStore(context.Background(), &datastore.Config{Endpoints: []string{"127.0.0.1:2379"}})
	if err == nil || !strings.Contains(err.Error(), `invalid etcd endpoint "127.0.0.1:2379"`) {
		t.Fatalf("want an invalid endpoint error, got %v", err)
	}
}

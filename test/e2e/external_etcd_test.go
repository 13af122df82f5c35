package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/lab/labtest"
)

// A node on an external etcd with TLS: a configured datastore that is
// unreachable or misconfigured stops `calico node start` with a clear
// error (no embedded fallback), and the certificate files are mounted
// read-only into the node container.
func TestExternalEtcdTLS(t *testing.T) {
	t.Parallel()
	l := newLabWith(t, lab.Config{Hosts: 1, Subnets: 1})
	st, bin := l.St, l.Bin
	h := l.host("host1")

	// The operator's own etcd, with its own CA, in host1.
	dir := t.TempDir()
	p := labtest.ExternalPKI(t, dir, h.Addr())
	ep := "https://" + h.Addr() + ":2479"
	ds, err := lab.ExecCmd(context.Background(), st, h, bin, "datastore", "run", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", ep, "--listen-peer-urls", "http://127.0.0.1:2480",
		"--cert-file", p.Cert(), "--key-file", p.Key(), "--trusted-ca-file", p.CACert(), "--client-cert-auth")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := ds.StdoutPipe()
	if err := ds.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ds.Process.Kill(); _ = ds.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "etcd ready") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("calico datastore run exited")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("external etcd not ready")
	}

	start := []string{"node", "start", "--name", "host1", "--ip", h.IP, "--ip6", h.IP6, "--image", st.NodeImage, "--timeout", "60s"}
	creds := []string{"--etcd-ca-cert-file", p.CACert(), "--etcd-cert-file", p.Cert(), "--etcd-key-file", p.Key()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--etcd-endpoints", "https://" + h.Addr() + ":2999"}, "does not fall back to an embedded datastore"},
		{append([]string{"--etcd-endpoints", "http://" + h.Addr() + ":2479"}, creds...), "is plaintext: use https://"},
		{[]string{"--etcd-endpoints", ep, "--etcd-ca-cert-file", p.CACert()}, "refused our client certificate"},
		{[]string{"--etcd-endpoints", ep, "--etcd-ca-cert-file", filepath.Join(dir, "missing.pem")}, "ETCD_CA_CERT_FILE"},
	} {
		out, err := l.Exec("host1", append(append([]string{bin}, start...), tc.args...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("node start %v: want an error saying %q, got %v:\n%s", tc.args, tc.want, err, out)
		}
		if _, err := os.Stat(filepath.Join(h.LibDir, "calico", "pki", "ca.crt")); err == nil {
			t.Fatalf("node start %v fell back to the managed datastore (a CA was made)", tc.args)
		}
	}
	l.Calico("host1", append(append(start, "--etcd-endpoints", ep), creds...)...)
	var mounts []struct {
		Source, Destination string
		RW                  bool
	}
	if err := json.Unmarshal([]byte(l.Docker("host1", "inspect", "-f", "{{json .Mounts}}", "calico-node")), &mounts); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.CACert(), p.Cert(), p.Key()} {
		found := false
		for _, m := range mounts {
			if m.Source == f && m.Destination == f {
				found = true
				if m.RW {
					t.Errorf("%s mounted read-write", f)
				}
			}
		}
		if !found {
			t.Errorf("%s not mounted into the node: %+v", f, mounts)
		}
	}
	// The node wrote its Node resource into the external etcd.
	if out := l.Calico("host1", append([]string{"get", "nodes", "--etcd-endpoints", ep}, creds...)...); !strings.Contains(out, "host1") {
		t.Fatalf("node not registered in the external etcd:\n%s", out)
	}
}

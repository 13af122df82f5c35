package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// fabricCalico runs calico in the lab's fabric namespace: a machine on the
// hosts' network with no credentials. No ETCD_* from the test's environment.
func (l *Lab) fabricCalico(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.St.Fabric.NetNS, l.Bin}, args...)...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "ETCD_") })
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func countVoters(out string) int { return strings.Count(out, " voter ") }

// The managed datastore: three TLS etcd members (a fourth host is a client
// only) that only holders of a cluster certificate can use, joins by token,
// and a cluster that keeps working when one member's host goes down.
func TestDatastoreSecurityAndFailover(t *testing.T) {
	t.Parallel()
	l := newLab(t, 4, 1)
	h1 := l.host("host1")
	if out := l.Calico("host4", "datastore", "member", "list"); countVoters(out) != 3 || strings.Contains(out, "host4") {
		t.Fatalf("want 3 voting members, host4 a client only:\n%s", out)
	}
	ca := filepath.Join(lab.PKIDir(h1), "ca.crt")

	// From the fabric, without a client certificate: nothing works.
	for _, tc := range []struct{ what, want string }{
		{"--etcd-endpoints http://" + h1.Addr() + ":2379", "is not an etcd server"},
		{"--etcd-endpoints https://" + h1.Addr() + ":2379", "the server's certificate does not verify"},
		{"--etcd-endpoints https://" + h1.Addr() + ":2379 --etcd-ca-cert-file " + ca, "the server refused our client certificate"},
		{"--etcd-endpoints https://" + h1.Addr() + ":2380 --etcd-ca-cert-file " + ca, "the server refused our client certificate"},
		{"--etcd-endpoints http://" + h1.Addr() + ":2380", "is not an etcd server"},
	} {
		out, err := l.fabricCalico(30*time.Second, append([]string{"get", "nodes"}, strings.Fields(tc.what)...)...)
		if err == nil || !strings.Contains(out, tc.want) || strings.Contains(out, "host2") {
			t.Errorf("fabric, %s: want an error saying %q, got %v:\n%s", tc.what, tc.want, err, out)
		}
		t.Logf("fabric, %s: %s", tc.what, strings.TrimSpace(out))
	}

	// Joins from the fabric: a token naming another CA is refused before the
	// secret is sent; a revoked token is refused by the first host.
	join := func(token string) string {
		dir := t.TempDir()
		out, err := l.fabricCalico(60*time.Second, "node", "run", "--name", "intruder", "--ip", "10.99.1.250/24",
			"--no-bgp", "--no-docker-plugin", "--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
			"--join-url", lab.JoinURL(l.St), "--join-token", token, "--pki-dir", filepath.Join(dir, "pki"),
			"--etcd-data-dir", filepath.Join(dir, "etcd"), "--etcd-socket", filepath.Join(dir, "etcd.sock"))
		if err == nil {
			t.Fatalf("join with %q succeeded:\n%s", token, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "pki", "node.crt")); err == nil {
			t.Fatal("a refused join wrote a certificate")
		}
		return out
	}
	tok := strings.TrimSpace(l.Calico("host1", "node", "token", "create"))
	hash, rest, _ := strings.Cut(strings.TrimPrefix(tok, "K10"), "::")
	wrong := "K10" + strings.Repeat("0", len(hash)) + "::" + rest
	if out := join(wrong); !strings.Contains(out, "does not match the token's CA hash; the token's secret was NOT sent") {
		t.Errorf("wrong CA hash:\n%s", out)
	}
	id, _, _ := strings.Cut(rest, ":")
	l.Calico("host1", "node", "token", "revoke", id)
	if out := join(tok); !strings.Contains(out, "401") || !strings.Contains(out, "refused") {
		t.Errorf("revoked token:\n%s", out)
	}

	// `lab env` works from the machine's own namespace (no route into the lab).
	env, err := l.St.MachineEnv(context.Background(), h1)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(l.Bin, "get", "nodes")
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "ETCD_") }), env...)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "host3") {
		t.Fatalf("calico with `lab env` from the machine: %v\n%s", err, out)
	}

	// Lose host1's node (its etcd member): the others keep reading and writing.
	l.Calico("host1", "node", "stop")
	profile := "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: written-while-host1-down\n"
	began := time.Now()
	testutil.Eventually(t, 30*time.Second, func() error {
		f := filepath.Join(t.TempDir(), "p.yaml")
		_ = os.WriteFile(f, []byte(profile), 0o644)
		_, err := l.Exec("host2", l.Bin, "apply", "-f", f)
		return err
	})
	t.Logf("writable from host2 %v after host1's node stopped", time.Since(began).Round(time.Millisecond))
	for _, h := range []string{"host3", "host4"} {
		if out := l.Calico(h, "get", "profiles"); !strings.Contains(out, "written-while-host1-down") {
			t.Fatalf("%s does not read host2's write:\n%s", h, out)
		}
	}
	// host1 comes back with the same command the lab used (the CA host
	// keeps --embedded-etcd by itself) and its member catches up.
	l.Calico("host1", "node", "start", "--name", "host1", "--ip", h1.IP, "--ip6", h1.IP6, "--image", l.St.NodeImage)
	local := []string{"get", "profiles", "--etcd-endpoints", "unixs:///var/run/calico/etcd.sock",
		"--etcd-ca-cert-file", "/var/lib/calico/pki/ca.crt", "--etcd-cert-file", "/var/lib/calico/pki/node.crt", "--etcd-key-file", "/var/lib/calico/pki/node.key"}
	testutil.Eventually(t, 30*time.Second, func() error {
		out, err := l.Exec("host1", append([]string{l.Bin}, local...)...)
		if err != nil || !strings.Contains(out, "written-while-host1-down") {
			return fmt.Errorf("host1's own member: %v\n%s", err, out)
		}
		return nil
	})
	if out := l.Calico("host2", "datastore", "member", "list"); countVoters(out) != 3 {
		t.Fatalf("want 3 voting members after host1 rejoined:\n%s", out)
	}
}

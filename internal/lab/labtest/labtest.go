// Package labtest drives a calico lab (package lab) from Go tests: it brings
// one up for a test, removes it at cleanup (with the nodes' logs when the
// test failed), and runs commands, containers and connectivity checks in its
// hosts. test/e2e and test/reliability use it; each test gets its own lab
// with a random name, so tests may run in parallel.
package labtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/pki"
	"github.com/calico-docker/calico/internal/testutil"
)

// Lab is a running lab for one test.
type Lab struct {
	T   *testing.T
	St  *lab.State
	Bin string // the calico binary the lab runs
}

// Require skips the test unless a lab can run here.
func Require(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "dockerd", "docker", "nsenter", "unshare")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipped: /bin/busybox (busybox-static) missing")
	}
}

// New brings up a lab from c, whose name is prefix plus a random suffix
// and whose binary and images are filled in, and removes it at cleanup.
func New(t *testing.T, prefix string, c lab.Config, timeout time.Duration) *Lab {
	t.Helper()
	Require(t)
	bin := testutil.CalicoBin(t)
	name := prefix + testutil.RandSuffix(5)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var progress strings.Builder
	c.Name, c.CalicoBin, c.NodeImage, c.TestImage, c.Progress = name, bin, cli.NodeImage(), cli.TestImage, &progress
	start := time.Now()
	st, err := lab.Up(ctx, c)
	t.Cleanup(func() {
		if t.Failed() {
			dump(t, name)
		}
		if err := lab.Down(context.Background(), name, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, progress.String())
	}
	t.Logf("lab %s up in %v", name, time.Since(start).Round(time.Second))
	return &Lab{T: t, St: st, Bin: bin}
}

// dump logs the end of every node's log.
func dump(t *testing.T, name string) {
	st, err := lab.Load(name)
	if err != nil {
		return
	}
	for i := range st.Hosts {
		h := &st.Hosts[i]
		out, _ := lab.DockerCmd(context.Background(), h, "logs", "--tail", "80", "calico-node").CombinedOutput()
		t.Logf("=== %s calico-node logs:\n%s", h.Name, out)
	}
}

// Host is the lab host of that name.
func (l *Lab) Host(name string) *lab.Host {
	h, err := l.St.HostByName(name)
	if err != nil {
		l.T.Fatal(err)
	}
	return h
}

// Cmd is a command run in a lab host (not started).
func (l *Lab) Cmd(ctx context.Context, host string, args ...string) *exec.Cmd {
	l.T.Helper()
	cmd, err := lab.ExecCmd(ctx, l.St, l.Host(host), args[0], args[1:]...)
	if err != nil {
		l.T.Fatal(err)
	}
	return cmd
}

// Exec runs a command in a lab host and returns its output.
func (l *Lab) Exec(host string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := l.Cmd(ctx, host, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s on %s: %w: %s", strings.Join(args, " "), host, err, out)
	}
	return string(out), nil
}

// MustExec runs a command in a lab host and fails the test on error.
func (l *Lab) MustExec(host string, args ...string) string {
	l.T.Helper()
	out, err := l.Exec(host, args...)
	if err != nil {
		l.T.Fatal(err)
	}
	return out
}

// Calico runs the calico binary in a host.
func (l *Lab) Calico(host string, args ...string) string {
	l.T.Helper()
	return l.MustExec(host, append([]string{l.Bin}, args...)...)
}

// Docker runs the docker CLI against a host's dockerd.
func (l *Lab) Docker(host string, args ...string) string {
	l.T.Helper()
	return l.MustExec(host, append([]string{"docker"}, args...)...)
}

// Apply applies a manifest through host's calico.
func (l *Lab) Apply(host, manifest string) {
	l.T.Helper()
	f := filepath.Join(l.T.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		l.T.Fatal(err)
	}
	l.Calico(host, "apply", "-f", f)
}

// ApplyFile applies the manifest in file (relative to the test's package).
func (l *Lab) ApplyFile(host, file string) {
	l.T.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		l.T.Fatal(err)
	}
	l.Apply(host, string(b))
}

// Network creates a calico network on each given host.
func (l *Lab) Network(name string, hosts ...string) {
	l.T.Helper()
	for _, h := range hosts {
		l.Docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", name)
	}
}

// RunWith starts a busybox container (extra docker run flags before the
// image) and returns its IPv4 address.
func (l *Lab) RunWith(host, name, network string, extra ...string) string {
	l.T.Helper()
	args := append([]string{"run", "-d", "--name", name, "--net", network}, extra...)
	args = append(args, cli.TestImage, "sleep", "1d")
	l.Docker(host, args...)
	return l.IP(host, name)
}

// Run starts a busybox container with the given labels (k=v) and returns
// its IPv4 address.
func (l *Lab) Run(host, name, network string, labels ...string) string {
	l.T.Helper()
	var extra []string
	for _, lb := range labels {
		extra = append(extra, "--label", lb)
	}
	return l.RunWith(host, name, network, extra...)
}

// IP is a container's IPv4 address.
func (l *Lab) IP(host, name string) string {
	l.T.Helper()
	return strings.TrimSpace(l.Docker(host, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
}

// CanPing reports whether container (on host) reaches ip with one ping.
func (l *Lab) CanPing(host, container, ip string) bool {
	_, err := l.Exec(host, "docker", "exec", container, "ping", "-c1", "-W1", ip)
	return err == nil
}

// TCPConnects reports whether container (on host) completes a TCP
// connection to ip:port within 2 s (busybox nc; a dropped SYN times out).
func (l *Lab) TCPConnects(host, container, ip string, port int) bool {
	_, err := l.Exec(host, "docker", "exec", container, "nc", "-w", "2", ip, strconv.Itoa(port))
	return err == nil
}

// EventuallyReach waits until container reaches ip.
func (l *Lab) EventuallyReach(host, container, ip string, within time.Duration) {
	l.T.Helper()
	testutil.Eventually(l.T, within, func() error {
		if !l.CanPing(host, container, ip) {
			return fmt.Errorf("%s on %s cannot reach %s", container, host, ip)
		}
		return nil
	})
}

// EventuallyBlocked waits until container can no longer reach ip.
func (l *Lab) EventuallyBlocked(host, container, ip string, within time.Duration) {
	l.T.Helper()
	testutil.Eventually(l.T, within, func() error {
		if l.CanPing(host, container, ip) {
			return fmt.Errorf("%s on %s still reaches %s", container, host, ip)
		}
		return nil
	})
}

// AssertBlocked checks, a few times, that container cannot reach ip.
func (l *Lab) AssertBlocked(host, container, ip string) {
	l.T.Helper()
	for i := 0; i < 2; i++ {
		if l.CanPing(host, container, ip) {
			l.T.Fatalf("%s on %s reaches %s, want denied", container, host, ip)
		}
	}
}

// Routes lists a host's routes with the calico protocol number.
func (l *Lab) Routes(host string) string {
	l.T.Helper()
	return l.MustExec(host, "ip", "route", "show", "proto", "80")
}

// IPAMCheck runs `calico ipam check` and fails unless it finds nothing.
func (l *Lab) IPAMCheck(host string) string {
	l.T.Helper()
	out := l.Calico(host, "ipam", "check", "--min-age", "0s")
	if !strings.Contains(out, "Check complete: 0 problems") {
		l.T.Fatalf("ipam check on %s:\n%s", host, out)
	}
	return out
}

// ExternalPKI makes, in dir/pki, an operator's own CA and a server
// certificate for an external etcd listening on ip, as a test of an
// external datastore needs them.
func ExternalPKI(t *testing.T, dir, ip string) pki.Paths {
	t.Helper()
	p := pki.Paths{Dir: filepath.Join(dir, "pki")}
	ca, err := pki.CreateCA(p, "external")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueLocal(p, "etcd", []net.IP{net.ParseIP(ip)}); err != nil {
		t.Fatal(err)
	}
	return p
}

// Package e2e holds multi-host end-to-end tests: a lab of network namespaces,
// each with a real dockerd and a calico node container, and real containers.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// calicoBin returns the calico binary the lab runs.
func calicoBin(t *testing.T) string { return testutil.CalicoBin(t) }

// Lab is a running lab for one test.
type Lab struct {
	t   *testing.T
	St  *lab.State
	bin string
}

func requireLab(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "dockerd", "docker", "nsenter", "unshare")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipped: /bin/busybox (busybox-static) missing")
	}
}

// newLab brings up a lab with calico nodes and removes it at cleanup.
func newLab(t *testing.T, hosts, subnets int) *Lab {
	t.Helper()
	return newLabWith(t, lab.Config{Hosts: hosts, Subnets: subnets, StartNodes: true})
}

// newLabWith brings up a lab from c (name, binary and images filled in) and
// removes it at cleanup.
func newLabWith(t *testing.T, c lab.Config) *Lab {
	t.Helper()
	requireLab(t)
	bin := calicoBin(t)
	name := "e" + testutil.RandSuffix(5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress strings.Builder
	c.Name, c.CalicoBin, c.NodeImage, c.TestImage, c.Progress = name, bin, cli.NodeImage(), cli.TestImage, &progress
	st, err := lab.Up(ctx, c)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLab(t, name)
		}
		if err := lab.Down(context.Background(), name, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, progress.String())
	}
	return &Lab{t: t, St: st, bin: bin}
}

func dumpLab(t *testing.T, name string) {
	st, err := lab.Load(name)
	if err != nil {
		return
	}
	for i := range st.Hosts {
		h := &st.Hosts[i]
		out, _ := lab.DockerCmd(context.Background(), h, "logs", "--tail", "60", "calico-node").CombinedOutput()
		t.Logf("=== %s calico-node logs:\n%s", h.Name, out)
	}
}

func (l *Lab) host(name string) *lab.Host {
	h, err := l.St.HostByName(name)
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

// Exec runs a command in a lab host and returns its output.
func (l *Lab) Exec(host string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := lab.ExecCmd(ctx, l.St, l.host(host), args[0], args[1:]...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s on %s: %w: %s", strings.Join(args, " "), host, err, out)
	}
	return string(out), nil
}

// MustExec runs a command in a lab host and fails the test on error.
func (l *Lab) MustExec(host string, args ...string) string {
	l.t.Helper()
	out, err := l.Exec(host, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

// Calico runs the calico binary in a host.
func (l *Lab) Calico(host string, args ...string) string {
	l.t.Helper()
	return l.MustExec(host, append([]string{l.bin}, args...)...)
}

// Docker runs the docker CLI against a host's dockerd.
func (l *Lab) Docker(host string, args ...string) string {
	l.t.Helper()
	return l.MustExec(host, append([]string{"docker"}, args...)...)
}

// seedPolicy is the seed scenario's policy, shared with `make demo`.
const seedPolicy = "../../examples/allow-web-to-db.yaml"

// ApplyFile applies the manifest in file (relative to this package) on host.
func (l *Lab) ApplyFile(host, file string) {
	l.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		l.t.Fatal(err)
	}
	l.Apply(host, string(b))
}

// Apply applies a manifest through host's calico.
func (l *Lab) Apply(host, manifest string) {
	l.t.Helper()
	f := filepath.Join(l.t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.Calico(host, "apply", "-f", f)
}

// Network creates a calico network on each given host.
func (l *Lab) Network(name string, hosts ...string) {
	l.t.Helper()
	for _, h := range hosts {
		l.Docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", name)
	}
}

// Run starts a busybox container and returns its IPv4 address.
func (l *Lab) Run(host, name, network string, labels ...string) string {
	l.t.Helper()
	args := []string{"run", "-d", "--name", name, "--net", network}
	for _, lb := range labels {
		args = append(args, "--label", lb)
	}
	args = append(args, cli.TestImage, "sleep", "1d")
	l.Docker(host, args...)
	return strings.TrimSpace(l.Docker(host, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
}

// CanPing reports whether container (on host) reaches ip with one ping.
func (l *Lab) CanPing(host, container, ip string) bool {
	_, err := l.Exec(host, "docker", "exec", container, "ping", "-c1", "-W1", ip)
	return err == nil
}

// EventuallyReach waits until container reaches ip.
func (l *Lab) EventuallyReach(host, container, ip string, within time.Duration) {
	l.t.Helper()
	testutil.Eventually(l.t, within, func() error {
		if !l.CanPing(host, container, ip) {
			return fmt.Errorf("%s on %s cannot reach %s", container, host, ip)
		}
		return nil
	})
}

// EventuallyBlocked waits until container can no longer reach ip.
func (l *Lab) EventuallyBlocked(host, container, ip string, within time.Duration) {
	l.t.Helper()
	testutil.Eventually(l.t, within, func() error {
		if l.CanPing(host, container, ip) {
			return fmt.Errorf("%s on %s still reaches %s", container, host, ip)
		}
		return nil
	})
}

// AssertBlocked checks, a few times, that container cannot reach ip.
func (l *Lab) AssertBlocked(host, container, ip string) {
	l.t.Helper()
	for i := 0; i < 2; i++ {
		if l.CanPing(host, container, ip) {
			l.t.Fatalf("%s on %s reaches %s, want denied", container, host, ip)
		}
	}
}

// Routes lists a host's routes with the calico protocol number.
func (l *Lab) Routes(host string) string {
	l.t.Helper()
	return l.MustExec(host, "ip", "route", "show", "proto", "80")
}

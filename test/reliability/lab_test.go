package reliability

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/dataplane/routes/nsexec"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// full reports whether the whole suite runs (make test-reliability); the
// short form runs in `make test`.
func full() bool { return os.Getenv("CALICO_RELIABILITY") == "full" }

// record is one row of RELIABILITY.md.
type record struct {
	Scenario, Tried, Survived, Lost, Numbers, Command string
}

var (
	recMu   sync.Mutex
	records []record
)

// report records a scenario's outcome; it is logged and, when
// CALICO_RELIABILITY_REPORT names a file, appended to it as a table row.
func report(t *testing.T, r record) {
	t.Helper()
	t.Logf("RESULT %s | %s | %s | %s | %s | %s", r.Scenario, r.Tried, r.Survived, r.Lost, r.Numbers, r.Command)
	recMu.Lock()
	defer recMu.Unlock()
	records = append(records, r)
	if p := os.Getenv("CALICO_RELIABILITY_REPORT"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "| %s | %s | %s | %s | %s | `%s` |\n", r.Scenario, r.Tried, r.Survived, r.Lost, r.Numbers, r.Command)
	}
}

// Lab is a running lab for one test.
type Lab struct {
	t   *testing.T
	St  *lab.State
	bin string
}

func newLab(t *testing.T, hosts int) *Lab {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "dockerd", "docker", "nsenter", "unshare", "nft")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipped: /bin/busybox (busybox-static) missing")
	}
	bin := testutil.CalicoBin(t)
	name := "r" + testutil.RandSuffix(5)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var progress strings.Builder
	c := lab.Config{Name: name, Hosts: hosts, Subnets: 1, StartNodes: true, CalicoBin: bin,
		NodeImage: cli.NodeImage(), TestImage: cli.TestImage, Progress: &progress}
	start := time.Now()
	st, err := lab.Up(ctx, c)
	t.Cleanup(func() {
		if t.Failed() {
			if st, err := lab.Load(name); err == nil {
				for i := range st.Hosts {
					out, _ := lab.DockerCmd(context.Background(), &st.Hosts[i], "logs", "--tail", "80", "calico-node").CombinedOutput()
					t.Logf("=== %s calico-node logs:\n%s", st.Hosts[i].Name, out)
				}
			}
		}
		if err := lab.Down(context.Background(), name, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, progress.String())
	}
	t.Logf("lab %s up in %v", name, time.Since(start).Round(time.Second))
	return &Lab{t: t, St: st, bin: bin}
}

func (l *Lab) host(name string) *lab.Host {
	h, err := l.St.HostByName(name)
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

// Cmd is a command run in a lab host (not started).
func (l *Lab) Cmd(ctx context.Context, host string, args ...string) *exec.Cmd {
	l.t.Helper()
	cmd, err := lab.ExecCmd(ctx, l.St, l.host(host), args[0], args[1:]...)
	if err != nil {
		l.t.Fatal(err)
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
	l.t.Helper()
	out, err := l.Exec(host, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

func (l *Lab) Calico(host string, args ...string) string {
	l.t.Helper()
	return l.MustExec(host, append([]string{l.bin}, args...)...)
}

func (l *Lab) Docker(host string, args ...string) string {
	l.t.Helper()
	return l.MustExec(host, append([]string{"docker"}, args...)...)
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

func (l *Lab) Network(name string, hosts ...string) {
	l.t.Helper()
	for _, h := range hosts {
		l.Docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", name)
	}
}

// Run starts a busybox container (extra docker run flags before the image)
// and returns its IPv4 address.
func (l *Lab) Run(host, name, network string, extra ...string) string {
	l.t.Helper()
	args := append([]string{"run", "-d", "--name", name, "--net", network}, extra...)
	args = append(args, cli.TestImage, "sleep", "1d")
	l.Docker(host, args...)
	return l.IP(host, name)
}

// IP is a container's IPv4 address.
func (l *Lab) IP(host, name string) string {
	l.t.Helper()
	return strings.TrimSpace(l.Docker(host, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
}

// CanPing reports whether container (on host) reaches ip with one ping.
func (l *Lab) CanPing(host, container, ip string) bool {
	_, err := l.Exec(host, "docker", "exec", container, "ping", "-c1", "-W1", ip)
	return err == nil
}

// TCPConnects reports whether container completes a TCP connection to
// ip:port within 2 s.
func (l *Lab) TCPConnects(host, container, ip string, port int) bool {
	_, err := l.Exec(host, "docker", "exec", container, "nc", "-w", "2", ip, strconv.Itoa(port))
	return err == nil
}

func (l *Lab) EventuallyReach(host, container, ip string, within time.Duration) {
	l.t.Helper()
	testutil.Eventually(l.t, within, func() error {
		if !l.CanPing(host, container, ip) {
			return fmt.Errorf("%s on %s cannot reach %s", container, host, ip)
		}
		return nil
	})
}

// IPAMCheck runs `calico ipam check` and fails unless it finds nothing.
func (l *Lab) IPAMCheck(host string) string {
	l.t.Helper()
	out := l.Calico(host, "ipam", "check", "--min-age", "0s")
	if !strings.Contains(out, "Check complete: 0 problems") {
		l.t.Fatalf("ipam check on %s:\n%s", host, out)
	}
	return out
}

// stream is a background command in a lab host whose output is read when
// it ends.
type stream struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

func (l *Lab) Start(ctx context.Context, host string, args ...string) *stream {
	l.t.Helper()
	s := &stream{cmd: l.Cmd(ctx, host, args...), done: make(chan error, 1)}
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	return s
}

// Wait waits for the stream to end and returns its output and error.
func (s *stream) Wait(timeout time.Duration) (string, error) {
	select {
	case err := <-s.done:
		return s.out.String(), err
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return s.out.String(), fmt.Errorf("still running after %v", timeout)
	}
}

var pingRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`)

// pingCounts parses busybox ping's summary.
func pingCounts(out string) (sent, recv int, ok bool) {
	m := pingRE.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ = strconv.Atoi(m[2])
	return sent, recv, true
}

// listenIn opens a TCP listener in a lab host's network namespace that
// accepts and closes every connection.
func listenIn(t *testing.T, netns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := nsexec.Do("/run/netns/"+netns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, netns, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// dialIn connects to addr from a lab host's network namespace.
func dialIn(netns, addr string) (net.Conn, error) {
	var c net.Conn
	err := nsexec.Do("/run/netns/"+netns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	})
	return c, err
}

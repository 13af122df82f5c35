package reliability

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/lab/labtest"
	"github.com/calico-docker/calico/internal/nsexec"
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

// Lab is a running lab for one test (labtest.Lab), with this suite's own
// helpers.
type Lab struct{ *labtest.Lab }

func newLab(t *testing.T, hosts int) *Lab {
	t.Helper()
	testutil.RequireCmd(t, "nft")
	return &Lab{labtest.New(t, "r", lab.Config{Hosts: hosts, Subnets: 1, StartNodes: true}, 6*time.Minute)}
}

func (l *Lab) host(name string) *lab.Host { return l.Host(name) }

// stream is a background command in a lab host whose output is read when
// it ends.
type stream struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

func (l *Lab) Start(ctx context.Context, host string, args ...string) *stream {
	l.T.Helper()
	s := &stream{cmd: l.Cmd(ctx, host, args...), done: make(chan error, 1)}
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		l.T.Fatal(err)
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

package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/testutil"
)

// buildCalico returns the binary under test.
func buildCalico(t *testing.T) string { return testutil.CalicoBin(t) }

// datastoreProc is a running `calico datastore run`.
type datastoreProc struct {
	cmd      *exec.Cmd
	stderr   *bytes.Buffer
	endpoint string
	exited   chan error
}

// startDatastore runs `calico datastore run args...` and waits for its
// ready line. The process is killed by PID at cleanup if still running.
func startDatastore(t *testing.T, bin string, args ...string) *datastoreProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"datastore", "run"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &datastoreProc{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "etcd ready: serving clients at "); ok {
				ready <- strings.Fields(rest)[0]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.exited <- cmd.Wait()
	}()
	select {
	case p.endpoint = <-ready:
		return p
	case err := <-p.exited:
		t.Fatalf("calico datastore run exited before ready: %v\n%s", err, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("calico datastore run not ready within 30s\n%s", p.stderr)
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (p *datastoreProc) stop(t *testing.T) time.Duration {
	t.Helper()
	begin := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("calico datastore run after SIGTERM: %v\n%s", err, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("calico datastore run still running 15s after SIGTERM\n%s", p.stderr)
	}
	return time.Since(begin)
}

func TestDatastoreRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs etcd; skipped with -short")
	}
	bin := buildCalico(t)
	dataDir := filepath.Join(t.TempDir(), "etcd")
	args := []string{"--data-dir", dataDir, "--name", "dstest",
		"--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0"}

	begin := time.Now()
	p := startDatastore(t, bin, args...)
	t.Logf("ready in %v at %s", time.Since(begin).Round(time.Millisecond), p.endpoint)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := datastore.NewEtcd(ctx, datastore.Config{Endpoints: []string{p.endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	key := datastore.ResourceKey("profiles", "", "run-test")
	if _, err := st.Create(ctx, key, []byte(`{"kind":"Profile"}`)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := exec.LookPath("etcdctl"); err == nil {
		// An independent client sees the key under Calico's layout.
		cmd := exec.Command("etcdctl", "--endpoints", p.endpoint, "get", "--print-value-only", key)
		cmd.Env = []string{"ETCDCTL_API=3", "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != `{"kind":"Profile"}` {
			t.Fatalf("etcdctl get: %v %q", err, out)
		}
	}

	took := p.stop(t)
	t.Logf("stopped %v after SIGTERM", took.Round(time.Millisecond))
	logs := p.stderr.String()
	if !strings.Contains(logs, "etcd stopped") || strings.Contains(logs, "level=ERROR") {
		t.Fatalf("unclean shutdown logs:\n%s", logs)
	}
	if n := strings.Count(logs, "\n"); n > 10 {
		t.Fatalf("%d log lines for a start and a stop; etcd should be quiet:\n%s", n, logs)
	}

	// The data survives a restart from the same directory.
	p = startDatastore(t, bin, args...)
	st, err = datastore.NewEtcd(ctx, datastore.Config{Endpoints: []string{p.endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	if kv, err := st.Get(ctx, key); err != nil || string(kv.Value) != `{"kind":"Profile"}` {
		t.Fatalf("after restart: %v %q", err, kv.Value)
	}
	st.Close()
	p.stop(t)
}

func TestDatastoreRunBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--initial-cluster-state", "bogus"}, `--initial-cluster-state "bogus": want new or existing`},
		{[]string{"--listen-client-urls", "127.0.0.1:2379"}, `--listen-client-urls: invalid URL "127.0.0.1:2379"`},
		{[]string{"--client-cert-auth"}, "--client-cert-auth needs --trusted-ca-file"},
	} {
		args := append([]string{"datastore", "run", "--data-dir", t.TempDir(),
			"--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0"}, tc.args...)
		root := NewRoot()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want error containing %q, got %v", tc.args, tc.want, err)
		}
	}
}

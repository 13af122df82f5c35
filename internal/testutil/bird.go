package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BIRD is a BIRD 2 daemon a test started in a network namespace: the
// external router our BGP speaker peers with in interop tests.
type BIRD struct {
	// Sock is BIRD's control socket (birdc -s).
	Sock string
	// Config is the configuration it runs with.
	Config string
	log    *syncBuffer
}

// StartBIRD checks config with `bird -p`, runs BIRD in the foreground in the
// named namespace with its files in a temporary directory, and waits until
// its control socket answers. BIRD is killed by PID at cleanup; its log and
// configuration are printed if the test failed. Skips without BIRD.
func StartBIRD(t testing.TB, netns, config string) *BIRD {
	t.Helper()
	RequireCmd(t, "bird", "birdc")
	dir := t.TempDir()
	cfg, sock, pid := filepath.Join(dir, "bird.conf"), filepath.Join(dir, "bird.ctl"), filepath.Join(dir, "bird.pid")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bird", "-p", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("bird rejects the config: %v: %s\n%s", err, out, config)
	}
	b := &BIRD{Sock: sock, Config: config, log: &syncBuffer{}}
	// -f keeps BIRD in the foreground, so the PID we hold is BIRD's own.
	cmd := exec.Command("ip", "netns", "exec", netns, "bird", "-f", "-c", cfg, "-s", sock, "-P", pid)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("bird log:\n%s\nconfig:\n%s", b.log.String(), config)
		}
	})
	Eventually(t, 10*time.Second, func() error {
		_, err := b.Ctl("show status")
		return err
	})
	return b
}

// Ctl runs birdc against this BIRD.
func (b *BIRD) Ctl(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.Sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Log is what BIRD printed so far (with `log stderr all` in its config).
func (b *BIRD) Log() string { return b.log.String() }

// syncBuffer is a bytes.Buffer safe for a process's writes and a test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

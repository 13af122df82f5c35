package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// CalicoBin returns a static calico binary for tests that run the real
// command: $CALICO_BIN when it exists (make test sets it to bin/calico),
// else one built once per test process with CGO_ENABLED=0 (the node image
// needs a static binary).
func CalicoBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("CALICO_BIN"); p != "" {
			if _, err := os.Stat(p); err == nil {
				binPath = p
				return
			}
		}
		dir, err := os.MkdirTemp("", "calico-test-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "calico")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/calico-docker/calico/cmd/calico")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/calico: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// RemoveBuiltCalicoBin deletes the binary CalicoBin built, if it built one;
// call it from TestMain after m.Run.
func RemoveBuiltCalicoBin() {
	if binPath != "" && binPath != os.Getenv("CALICO_BIN") {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
}

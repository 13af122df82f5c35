package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/bgp"
)

// Passwords come from <dir>/<name>/<key> without the trailing newline; a
// peer whose secret cannot be read is left out, never peered without it.
func TestWithSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "s"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "s", "k"), []byte("pw1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "s", "empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	peer := func(a string, ref bgp.SecretRef) bgp.Peer {
		return bgp.Peer{Address: netip.MustParseAddr(a), ASN: 1, PasswordSecret: ref}
	}
	in := []bgp.Peer{
		peer("10.0.0.1", bgp.SecretRef{}),
		peer("10.0.0.2", bgp.SecretRef{Name: "s", Key: "k"}),
		peer("10.0.0.3", bgp.SecretRef{Name: "s", Key: "missing"}),
		peer("10.0.0.4", bgp.SecretRef{Name: "..", Key: "k"}),
		peer("10.0.0.5", bgp.SecretRef{Name: "s", Key: "empty"}),
		peer("10.0.0.6", bgp.SecretRef{Name: "s", Key: "missing", Optional: true}),
		peer("10.0.0.7", bgp.SecretRef{Name: "s", Key: "empty", Optional: true}),
	}
	out, err := withSecrets(in, dir)
	// Optional covers a missing file only: an empty one is still an error.
	if len(out) != 3 || out[0].Password != "" || out[1].Address != in[1].Address || out[1].Password != "pw1" ||
		out[2].Address != in[5].Address || out[2].Password != "" {
		t.Fatalf("peers %+v", out)
	}
	for _, want := range []string{"10.0.0.3", "no such file", "10.0.0.4", "invalid secret name", "10.0.0.5", "is empty", "10.0.0.6 (", "without a password", "10.0.0.7"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if in[1].Password != "" {
		t.Error("withSecrets changed its input")
	}
}

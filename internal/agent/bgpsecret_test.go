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
	}
	out, err := withSecrets(in, dir)
	if len(out) != 2 || out[0].Password != "" || out[1].Address != in[1].Address || out[1].Password != "pw1" {
		t.Fatalf("peers %+v", out)
	}
	for _, want := range []string{"10.0.0.3", "no such file", "10.0.0.4", "invalid secret name", "10.0.0.5", "is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if in[1].Password != "" {
		t.Error("withSecrets changed its input")
	}
}

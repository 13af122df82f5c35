package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/bgp"
)

// secretRereadInterval is how often the BGP runner reads the password
// files again.
const secretRereadInterval = time.Minute

// withSecrets reads the password of every peer that names a secret, from
// dir/<name>/<key>. A peer whose secret cannot be read is left out (a
// session configured with a password is never made without it) and
// reported, unless its reference is optional and the file does not exist:
// then, as in Calico, the session is made without a password (reported
// too). One trailing newline is removed, so `echo pw > file` works.
func withSecrets(peers []bgp.Peer, dir string) ([]bgp.Peer, error) {
	if dir == "" {
		dir = DefaultBGPSecretDir
	}
	out := peers[:0:0]
	var errs []error
	for _, p := range peers {
		ref := p.PasswordSecret
		if ref == (bgp.SecretRef{}) {
			out = append(out, p)
			continue
		}
		pw, err := readSecret(dir, ref)
		if err != nil && ref.Optional && errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("BGP peer %s (%s %s) without a password: spec.password.secretKeyRef is optional and %w", p.Address, p.Type, p.Name, err))
			out = append(out, p)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("BGP peer %s (%s %s) left out: spec.password.secretKeyRef: %w", p.Address, p.Type, p.Name, err))
			continue
		}
		p.Password = pw
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

func readSecret(dir string, ref bgp.SecretRef) (string, error) {
	// Validation already refuses such names; this keeps a bad stored value
	// from reading outside dir.
	for _, part := range []string{ref.Name, ref.Key} {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, `/\`) {
			return "", fmt.Errorf("invalid secret name or key %q", part)
		}
	}
	path := filepath.Join(dir, ref.Name, ref.Key)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w (write the password to that file; the node mounts %s read-only)", path, err, DefaultBGPSecretDir)
	}
	pw := strings.TrimSuffix(string(b), "\n")
	if pw == "" {
		return "", fmt.Errorf("secret %s is empty", path)
	}
	if len(pw) > 80 {
		return "", fmt.Errorf("secret %s: TCP MD5 keys are at most 80 bytes (got %d)", path, len(pw))
	}
	return pw, nil
}

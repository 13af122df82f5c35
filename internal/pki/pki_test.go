package pki

import (
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	p := Paths{Dir: t.TempDir()}
	if _, err := CreateToken(p, "", 0); err == nil {
		t.Fatal("token created without a CA")
	}
	ca, err := CreateCA(p, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateCA(p, "test"); err == nil {
		t.Fatal("CreateCA overwrote an existing CA")
	}
	tok, err := CreateToken(p, "for host2", 0)
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if !strings.HasPrefix(s, "K10"+Hash(ca.CertPEM)+"::") {
		t.Fatalf("token %q does not carry the CA hash", s)
	}
	got, err := ParseToken(s)
	if err != nil || got != tok {
		t.Fatalf("parse %q: %+v %v", s, got, err)
	}
	// Only the hash of the secret is stored.
	b, _ := os.ReadFile(p.Tokens())
	if strings.Contains(string(b), tok.Secret) {
		t.Fatal("tokens.json holds the secret in clear")
	}
	if fi, _ := os.Stat(p.Tokens()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens.json mode %v", fi.Mode())
	}
	now := time.Now()
	if err := CheckToken(p, tok.ID, tok.Secret, now); err != nil {
		t.Fatalf("good token refused: %v", err)
	}
	if err := CheckToken(p, tok.ID, strings.Repeat("0", 32), now); !errors.Is(err, ErrTokenRefused) {
		t.Fatalf("wrong secret: %v", err)
	}
	other, _ := CreateToken(p, "", 0)
	if err := CheckToken(p, tok.ID, other.Secret, now); !errors.Is(err, ErrTokenRefused) {
		t.Fatalf("another token's secret accepted for this id: %v", err)
	}
	if err := RevokeToken(p, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := CheckToken(p, tok.ID, tok.Secret, now); !errors.Is(err, ErrTokenRefused) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := RevokeToken(p, tok.ID); err == nil {
		t.Fatal("revoking an unknown id succeeded")
	}
	short, _ := CreateToken(p, "", time.Minute)
	if err := CheckToken(p, short.ID, short.Secret, now.Add(2*time.Minute)); !errors.Is(err, ErrTokenRefused) {
		t.Fatalf("expired token: %v", err)
	}
	ts, _ := ListTokens(p)
	if len(ts) != 2 {
		t.Fatalf("tokens %+v", ts)
	}
}

func TestParseTokenRefusesGarbage(t *testing.T) {
	good := "K10" + strings.Repeat("ab", 32) + "::abc123:" + strings.Repeat("f", 32)
	if _, err := ParseToken(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "K10", good[3:], "K11" + good[3:], strings.Replace(good, "::", ":", 1),
		"K10" + strings.Repeat("ab", 31) + "::abc123:" + strings.Repeat("f", 32), good + "/x", strings.Replace(good, "abc123", "ABC123", 1)} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestSignedCertificate(t *testing.T) {
	p := Paths{Dir: t.TempDir()}
	ca, err := CreateCA(p, "test")
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP("10.0.0.7")
	if err := ca.IssueLocal(p, "host1", []net.IP{ip}); err != nil {
		t.Fatal(err)
	}
	if !p.HasNodeCert() || !p.HasCAKey() {
		t.Fatal("credentials missing")
	}
	b, _ := os.ReadFile(p.Cert())
	cert, err := ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, name := range []string{"10.0.0.7", "127.0.0.1", "localhost", SocketSAN} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("certificate not valid for %s: %v", name, err)
		}
	}
	if cert.Subject.CommonName != "node:host1" {
		t.Errorf("CN %q", cert.Subject.CommonName)
	}
	if fi, _ := os.Stat(p.Key()); fi.Mode().Perm() != 0o600 {
		t.Errorf("node.key mode %v", fi.Mode())
	}
	// A request whose signature does not match is refused.
	csr, _, _ := NewCSR("x", nil, nil)
	tampered := []byte(strings.Replace(string(csr), "A", "B", 3))
	if _, err := ca.SignCSR(tampered, "x"); err == nil {
		t.Error("tampered CSR signed")
	}
}

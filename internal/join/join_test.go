package join

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/calico-docker/calico/internal/pki"
)

// firstHost makes a CA with its node certificate and serves joins on
// loopback with real TLS, recording every request that reaches it.
type firstHost struct {
	p    pki.Paths
	url  string
	mu   sync.Mutex
	seen []string // "METHOD path body"
}

func newFirstHost(t *testing.T) *firstHost {
	t.Helper()
	f := &firstHost{p: pki.Paths{Dir: t.TempDir()}}
	ca, err := pki.CreateCA(f.p, "first")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueLocal(f.p, "host1", nil); err != nil {
		t.Fatal(err)
	}
	f.url = f.serve(t, Handler(f.p, func() []string { return []string{"https://127.0.0.1:2379"} }, slog.New(slog.NewTextHandler(io.Discard, nil))), f.p)
	return f
}

func (f *firstHost) serve(t *testing.T, h http.Handler, p pki.Paths) string {
	t.Helper()
	rec := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, r.Method+" "+r.URL.Path+" "+string(body))
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(rec)
	tcfg, err := ServerTLS(p)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = tcfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *firstHost) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func TestJoinGivesACertificateForTheJoinersKey(t *testing.T) {
	f := newFirstHost(t)
	tok, err := pki.CreateToken(f.p, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	joiner := pki.Paths{Dir: t.TempDir()}
	r, err := Join(context.Background(), f.url, tok.String(), "host2", []net.IP{net.ParseIP("10.0.0.2")}, joiner)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Endpoints) != 1 || !joiner.HasNodeCert() || joiner.HasCAKey() {
		t.Fatalf("answer %+v, files: cert %v, CA key %v", r, joiner.HasNodeCert(), joiner.HasCAKey())
	}
	if eps := pki.LoadEndpoints(joiner); len(eps) != 1 {
		t.Fatalf("endpoints not remembered: %v", eps)
	}
	// The certificate goes with the key generated on the joiner.
	if _, err := tls.LoadX509KeyPair(joiner.Cert(), joiner.Key()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(joiner.Cert())
	cert, _ := pki.ParseCert(b)
	if cert.Subject.CommonName != "node:host2" || len(cert.IPAddresses) < 3 {
		t.Fatalf("certificate %v %v", cert.Subject, cert.IPAddresses)
	}
	// The private key never travelled.
	kb, _ := os.ReadFile(joiner.Key())
	for _, req := range f.requests() {
		if strings.Contains(req, strings.TrimSpace(string(kb))) || strings.Contains(req, "PRIVATE KEY") {
			t.Fatal("the joiner's private key was sent")
		}
	}
}

// A server that does not hold the CA the token names never sees the secret.
func TestJoinWrongCAHashSendsNoSecret(t *testing.T) {
	f := newFirstHost(t)
	tok, err := pki.CreateToken(f.p, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	wrong := tok
	wrong.CAHash = strings.Repeat("0", 64)
	_, err = Join(context.Background(), f.url, wrong.String(), "host2", nil, pki.Paths{Dir: t.TempDir()})
	if !errors.Is(err, ErrCAMismatch) {
		t.Fatalf("want ErrCAMismatch, got %v", err)
	}
	// An impostor with its own CA, given the real token, gets only the CA request.
	imp := &firstHost{p: pki.Paths{Dir: t.TempDir()}}
	ca, _ := pki.CreateCA(imp.p, "impostor")
	_ = ca.IssueLocal(imp.p, "host1", nil)
	impURL := imp.serve(t, Handler(imp.p, func() []string { return nil }, slog.New(slog.NewTextHandler(io.Discard, nil))), imp.p)
	_, err = Join(context.Background(), impURL, tok.String(), "host2", nil, pki.Paths{Dir: t.TempDir()})
	if !errors.Is(err, ErrCAMismatch) {
		t.Fatalf("impostor: want ErrCAMismatch, got %v", err)
	}
	for _, srv := range []*firstHost{f, imp} {
		for _, req := range srv.requests() {
			if !strings.HasPrefix(req, "GET /v1/ca") || strings.Contains(req, tok.Secret) {
				t.Fatalf("request beyond the CA fetch reached the server: %q", req)
			}
		}
	}
	t.Logf("refused: %v", err)
}

func TestJoinRevokedOrWrongTokenRefused(t *testing.T) {
	f := newFirstHost(t)
	tok, err := pki.CreateToken(f.p, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := tok
	bad.Secret = strings.Repeat("1", 32)
	joiner := pki.Paths{Dir: t.TempDir()}
	if _, err := Join(context.Background(), f.url, bad.String(), "host2", nil, joiner); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := pki.RevokeToken(f.p, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = Join(context.Background(), f.url, tok.String(), "host2", nil, joiner)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("revoked token: %v", err)
	}
	if joiner.HasNodeCert() {
		t.Fatal("credentials written after a refused join")
	}
	t.Logf("refused: %v", err)
	if _, err := Join(context.Background(), "http://"+strings.TrimPrefix(f.url, "https://"), tok.String(), "h", nil, joiner); err == nil || !strings.Contains(err.Error(), "--join-url") {
		t.Fatalf("plain http join URL: %v", err)
	}
}

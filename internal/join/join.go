package join

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/pki"
)

// DefaultPort is the join service's port on the first host.
const DefaultPort = 2378

// maxBody bounds request and response bodies.
const maxBody = 64 << 10

type joinRequest struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	Node   string `json:"node"`
	CSR    string `json:"csr"`
}

// Response is what a successful join returns.
type Response struct {
	Cert string `json:"cert"`
	CA   string `json:"ca"`
	// Endpoints are the datastore's client URLs (voting members).
	Endpoints []string `json:"endpoints"`
}

var nodeRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// Handler serves the join service from the credentials in p. endpoints
// gives the datastore's current client URLs for the answer.
func Handler(p pki.Paths, endpoints func() []string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ca", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, p.CACert())
	})
	mux.HandleFunc("POST /v1/join", func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req); err != nil {
			http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := pki.CheckToken(p, req.ID, req.Secret, time.Now()); err != nil {
			log.Warn("join refused", "from", r.RemoteAddr, "token", req.ID, "node", req.Node, "err", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if !nodeRE.MatchString(req.Node) {
			http.Error(w, fmt.Sprintf("invalid node name %q: lowercase letters, digits, '-' and '.'", req.Node), http.StatusBadRequest)
			return
		}
		ca, err := pki.LoadCA(p)
		if err != nil {
			log.Error("join: load CA", "err", err)
			http.Error(w, "the CA cannot sign", http.StatusInternalServerError)
			return
		}
		cert, err := ca.SignCSR([]byte(req.CSR), req.Node)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Info("host joined", "node", req.Node, "from", r.RemoteAddr, "token", req.ID)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Response{Cert: string(cert), CA: string(ca.CertPEM), Endpoints: endpoints()})
	})
	return mux
}

// ServerTLS is the join server's TLS config: the host's node certificate.
func ServerTLS(p pki.Paths) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.Cert(), p.Key())
	if err != nil {
		return nil, fmt.Errorf("join server certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Serve serves the join service on addr until ctx ends.
func Serve(ctx context.Context, addr string, p pki.Paths, endpoints func() []string, log *slog.Logger) (net.Addr, error) {
	tcfg, err := ServerTLS(p)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("join service: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: Handler(p, endpoints, log), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
	go func() { _ = srv.Serve(tls.NewListener(l, tcfg)) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return l.Addr(), nil
}

// ErrCAMismatch means the server's CA is not the one the token names: the
// secret was not sent.
var ErrCAMismatch = errors.New("the join server's CA does not match the token's CA hash; the token's secret was NOT sent (wrong --join-url, or a server impersonating the first host)")

// Join asks the join service at joinURL for this host's certificate, with
// the token, and writes the credentials into p. ips are the addresses the
// certificate is valid for (besides loopback).
func Join(ctx context.Context, joinURL, token, node string, ips []net.IP, p pki.Paths) (*Response, error) {
	tok, err := pki.ParseToken(token)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(joinURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("invalid --join-url %q: want https://<first host>:%d", joinURL, DefaultPort)
	}
	base := strings.TrimRight(joinURL, "/")
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()

	// 1. Fetch the CA without trusting anything, and pin it by the hash.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // verified by hash below
	caPEM, err := get(ctx, insecure, base+"/v1/ca")
	if err != nil {
		return nil, fmt.Errorf("join %s: fetch the cluster CA: %w", joinURL, err)
	}
	if pki.Hash(caPEM) != tok.CAHash {
		return nil, fmt.Errorf("join %s: %w", joinURL, ErrCAMismatch)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("join %s: the CA bundle has no certificate", joinURL)
	}
	// 2. Everything else goes over TLS verified against the pinned CA.
	pinned := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	all, dns := pki.NodeNames(ips)
	csr, key, err := pki.NewCSR(node, all, dns)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(joinRequest{ID: tok.ID, Secret: tok.Secret, Node: node, CSR: string(csr)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/join", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := pinned.Do(req)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", joinURL, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("join %s: %s: %s", joinURL, resp.Status, strings.TrimSpace(string(rb)))
	}
	var out Response
	if err := json.Unmarshal(rb, &out); err != nil {
		return nil, fmt.Errorf("join %s: bad answer: %w", joinURL, err)
	}
	cert, err := pki.ParseCert([]byte(out.Cert))
	if err != nil {
		return nil, fmt.Errorf("join %s: bad certificate in the answer: %w", joinURL, err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("join %s: the issued certificate does not verify against the pinned CA: %w", joinURL, err)
	}
	if err := pki.SaveEndpoints(p, out.Endpoints); err != nil {
		return nil, err
	}
	if err := pki.WriteNode(p, caPEM, []byte(out.Cert), key); err != nil {
		return nil, err
	}
	return &out, nil
}

func get(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return b, nil
}

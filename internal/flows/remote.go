package flows

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/calico-docker/calico/internal/pki"
)

// DefaultPort is where a node serves its flows to the other hosts, over
// TLS that requires a client certificate of the cluster CA (package pki).
const DefaultPort = 9096

// ServerTLS is the node's flows API TLS configuration: its node
// certificate, and only clients with a certificate the cluster CA signed.
// A workload holds no such certificate, so it cannot read flows even where
// policy lets it reach the port.
func ServerTLS(p pki.Paths) (*tls.Config, error) {
	cert, pool, err := nodeCreds(p, "flows API certificate")
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}

// ClientTLS is how `calico flows` proves itself to other nodes: this host's
// node certificate, and the cluster CA to verify theirs.
func ClientTLS(p pki.Paths) (*tls.Config, error) {
	cert, pool, err := nodeCreds(p, "this host's node certificate (needed to ask other nodes; run as root on a node host, or give --pki-dir)")
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// nodeCreds loads the host's node certificate and the cluster CA from p;
// what names the certificate in errors.
func nodeCreds(p pki.Paths, what string) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(p.Cert(), p.Key())
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	b, err := os.ReadFile(p.CACert())
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return tls.Certificate{}, nil, fmt.Errorf("cluster CA %s: no PEM certificate", p.CACert())
	}
	return cert, pool, nil
}

// ServeTLS serves h on addr with cfg until ctx is done and returns the
// address it listens on.
func ServeTLS(ctx context.Context, addr string, cfg *tls.Config, h http.Handler) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("flows API: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10,
		// Refused handshakes (no or a foreign certificate) are routine for
		// a port on the fabric: debug, not stderr.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)}
	go func() { _ = srv.Serve(tls.NewListener(l, cfg)) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return l.Addr(), nil
}

// Remote asks other nodes' flows APIs with a client certificate.
type Remote struct{ c *http.Client }

// NewRemote makes a client with cfg (ClientTLS).
func NewRemote(cfg *tls.Config) *Remote {
	return &Remote{c: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}}
}

// Fetch asks the node at addr (host:port) for the records after since.
func (r *Remote) Fetch(ctx context.Context, addr string, since uint64) (Reply, error) {
	return fetch(ctx, r.c, "https://"+addr, addr, since)
}

// Fetch asks the node at socket path for the records after since.
func Fetch(ctx context.Context, path string, since uint64) (Reply, error) {
	cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}, Timeout: 10 * time.Second}
	rep, err := fetch(ctx, cl, "http://node", path, since)
	if err != nil && !errors.Is(err, errStatus) {
		return Reply{}, fmt.Errorf("%w (is the node running with flowLogsFileEnabled, and may you use its socket?)", err)
	}
	return rep, err
}

var errStatus = errors.New("node answered")

func fetch(ctx context.Context, cl *http.Client, base, where string, since uint64) (Reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/flows?since="+strconv.FormatUint(since, 10), nil)
	if err != nil {
		return Reply{}, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("ask the node at %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Reply{}, fmt.Errorf("node at %s: %w %s", where, errStatus, resp.Status)
	}
	var rep Reply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return Reply{}, fmt.Errorf("node at %s: %w", where, err)
	}
	return rep, nil
}

package datastore

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// NotEtcdError reports an endpoint that answers but is not an etcd server
// (e.g. another HTTP service on that port).
type NotEtcdError struct {
	Endpoint string
	Reason   string
}

func (e *NotEtcdError) Error() string {
	return fmt.Sprintf("%s is not an etcd server (%s); check --etcd-endpoints / ETCD_ENDPOINTS", e.Endpoint, e.Reason)
}

// TLSError reports a TLS failure with an etcd endpoint: a server
// certificate that does not verify, or a client certificate the server
// refuses. It is a configuration error, not an outage.
type TLSError struct {
	Endpoint string
	Err      error
}

func (e *TLSError) Error() string {
	hint := "check ETCD_CA_CERT_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE"
	msg := e.Err.Error()
	switch {
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority") && !strings.Contains(msg, "x509"):
		hint = "the server refused our client certificate: set ETCD_CERT_FILE and ETCD_KEY_FILE to a certificate its CA signed"
	case strings.Contains(msg, "x509"):
		hint = "the server's certificate does not verify: set ETCD_CA_CERT_FILE to the CA that signed it"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		hint = "the server speaks plaintext: use an http:// endpoint only for a plaintext server on loopback, or give it TLS"
	}
	return fmt.Sprintf("TLS with etcd at %s failed: %v (%s)", e.Endpoint, e.Err, hint)
}

func (e *TLSError) Unwrap() error { return e.Err }

// diagnose is called when the first request failed: for each endpoint
// that accepts a connection it checks TLS and asks GET /version (which
// every etcd serves on its client port) to tell "not etcd" and "TLS
// refused" apart from an outage. nil: nothing better to say.
func diagnose(ctx context.Context, cfg Config, tlsCfg *tls.Config) error {
	for _, ep := range cfg.Endpoints {
		if err := diagnoseOne(ctx, ep, tlsCfg); err != nil {
			return err
		}
	}
	return nil
}

func diagnoseOne(ctx context.Context, ep string, tlsCfg *tls.Config) error {
	u, err := url.Parse(ep)
	if err != nil {
		return nil
	}
	network, addr, serverName := "tcp", u.Host, u.Hostname()
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		network, addr = "unix", u.Path
		serverName = addr[strings.LastIndex(addr, "/")+1:]
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil // nothing answers: an outage, reported as such
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if tlsCfg != nil {
		c := tlsCfg.Clone()
		if c.ServerName == "" {
			c.ServerName = serverName
		}
		c.NextProtos = []string{"http/1.1"}
		tc := tls.Client(conn, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			return &TLSError{Endpoint: ep, Err: err}
		}
		conn = tc
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://etcd/version", nil)
	if err := req.Write(conn); err != nil {
		return tlsOr(ep, tlsCfg, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		if tlsCfg != nil {
			return tlsOr(ep, tlsCfg, err)
		}
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return &NotEtcdError{Endpoint: ep, Reason: "it closed the connection on a plaintext request: if it is an etcd with TLS, use https://"}
		}
		return &NotEtcdError{Endpoint: ep, Reason: fmt.Sprintf("no HTTP answer to GET /version: %v", err)}
	}
	defer resp.Body.Close()
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(buf[:n]), `"etcdserver"`) {
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(buf[:n]), "HTTPS") {
			return &NotEtcdError{Endpoint: ep, Reason: "it wants HTTPS: use an https:// endpoint"}
		}
		return &NotEtcdError{Endpoint: ep, Reason: "GET /version answered " + resp.Status}
	}
	return nil
}

// tlsOr turns a read error after the handshake (TLS 1.3 reports a refused
// client certificate there) into a TLSError.
func tlsOr(ep string, tlsCfg *tls.Config, err error) error {
	if tlsCfg != nil && (strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "remote error")) {
		return &TLSError{Endpoint: ep, Err: err}
	}
	return nil
}

package datastore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultEndpoint is where clients look when nothing else is configured:
// the embedded etcd of `calico datastore run` with its default flags.
const DefaultEndpoint = "http://127.0.0.1:2379"

// DefaultDialTimeout bounds how long NewEtcd waits for the first answer, so
// that a datastore that is down is reported within a few seconds.
const DefaultDialTimeout = 3 * time.Second

// Config says how to reach an etcd cluster. Field names follow Calico's
// settings: ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE.
type Config struct {
	// Endpoints are client URLs: http:// or https://, or a local socket
	// unix:///path or unixs:///path (TLS). Empty: DefaultEndpoint.
	Endpoints []string
	// CACertFile verifies the servers; CertFile and KeyFile authenticate us.
	// They need TLS endpoints (https://, unixs://): with a plaintext
	// endpoint they are an error, never silently ignored.
	CACertFile, CertFile, KeyFile string
	// DialTimeout bounds the reachability check of NewEtcd. 0: DefaultDialTimeout.
	DialTimeout time.Duration
}

// withDefaults fills empty fields and validates the endpoints.
func (c Config) withDefaults() (Config, error) {
	var eps []string
	for _, e := range c.Endpoints {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		eps = []string{DefaultEndpoint}
	}
	for _, e := range eps {
		u, err := url.Parse(e)
		if err != nil {
			return c, fmt.Errorf("invalid etcd endpoint %q: want a URL like %s", e, DefaultEndpoint)
		}
		switch u.Scheme {
		case "http", "https":
			if u.Host == "" {
				return c, fmt.Errorf("invalid etcd endpoint %q: want a URL like %s", e, DefaultEndpoint)
			}
		case "unix", "unixs":
			if !strings.HasPrefix(e, u.Scheme+":///") {
				return c, fmt.Errorf("invalid etcd endpoint %q: want an absolute socket path, e.g. %s:///var/run/calico/etcd.sock", e, u.Scheme)
			}
		default:
			return c, fmt.Errorf("invalid etcd endpoint %q: want http://, https://, unix:// or unixs://, e.g. %s", e, DefaultEndpoint)
		}
	}
	c.Endpoints = eps
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, errors.New("etcd client certificate: cert file and key file must be given together (ETCD_CERT_FILE, ETCD_KEY_FILE)")
	}
	files := c.CACertFile != "" || c.CertFile != "" || c.KeyFile != ""
	secure := 0
	for _, e := range eps {
		if isTLSEndpoint(e) {
			secure++
		}
	}
	switch {
	case secure > 0 && secure < len(eps):
		return c, fmt.Errorf("etcd endpoints %s mix TLS and plaintext URLs: use https:// (or unixs://) for all of them", strings.Join(eps, ","))
	case files && secure == 0:
		return c, fmt.Errorf("etcd TLS files are set (ETCD_CA_CERT_FILE/ETCD_CERT_FILE/ETCD_KEY_FILE) but endpoint %s is plaintext: use https:// endpoints (refusing to send the datastore's traffic unencrypted)", eps[0])
	}
	for _, f := range []struct{ name, path string }{
		{"ETCD_CA_CERT_FILE", c.CACertFile}, {"ETCD_CERT_FILE", c.CertFile}, {"ETCD_KEY_FILE", c.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			return c, fmt.Errorf("%s %s: %w", f.name, f.path, err)
		}
	}
	return c, nil
}

func isTLSEndpoint(e string) bool {
	return strings.HasPrefix(e, "https://") || strings.HasPrefix(e, "unixs://")
}

// tlsWanted reports whether the connection must use TLS.
func (c Config) tlsWanted() bool {
	return len(c.Endpoints) > 0 && isTLSEndpoint(c.Endpoints[0])
}

// UnavailableError reports that the datastore could not be reached. It
// matches ErrUnavailable with errors.Is and unwraps to the cause.
type UnavailableError struct {
	Endpoints []string
	Err       error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("datastore unreachable at %s: %v", strings.Join(e.Endpoints, ","), e.Err)
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap gives the cause (e.g. context.DeadlineExceeded).
func (e *UnavailableError) Unwrap() error { return e.Err }

// Compactor is implemented by both backends. Compact discards the history
// older than revision; a watcher that still needed it re-lists (EventReset).
// etcd servers usually compact on their own (auto-compaction); this is for
// maintenance and tests.
type Compactor interface {
	Compact(ctx context.Context, revision int64) error
}

// errCompacted is returned by a backend's follow when the requested start
// revision is no longer in the history.
var errCompacted = errors.New("required revision has been compacted")

// errClosed is returned by operations on a closed store.
var errClosed = errors.New("datastore client closed")

package datastore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
	// Endpoints are client URLs (http:// or https://). Empty: DefaultEndpoint.
	Endpoints []string
	// CACertFile verifies the servers; CertFile and KeyFile authenticate us.
	// Any of them (or an https:// endpoint) turns TLS on.
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
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("invalid etcd endpoint %q: want a URL like %s", e, DefaultEndpoint)
		}
	}
	c.Endpoints = eps
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, errors.New("etcd client certificate: cert file and key file must be given together (ETCD_CERT_FILE, ETCD_KEY_FILE)")
	}
	return c, nil
}

// tlsWanted reports whether the connection must use TLS.
func (c Config) tlsWanted() bool {
	if c.CACertFile != "" || c.CertFile != "" || c.KeyFile != "" {
		return true
	}
	for _, e := range c.Endpoints {
		if strings.HasPrefix(e, "https://") {
			return true
		}
	}
	return false
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

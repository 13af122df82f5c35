package datastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Defaults of the embedded server, matching `calico datastore run`.
const (
	DefaultDataDir         = "/var/lib/calico/etcd"
	DefaultListenPeerURL   = "http://127.0.0.1:2380"
	defaultMemberName      = "default"
	defaultClusterToken    = "calico-etcd"
	defaultLogLevel        = "warn"
	defaultTickMs          = 50
	defaultElectionMs      = 500
	defaultCompaction      = "1h"
	defaultMaxTxnOps       = 10_000
	defaultMaxRequestBytes = 8 << 20
)

// EmbeddedConfig configures an etcd server run inside this process. Field
// names follow etcd's flags (in brackets). Zero values take the defaults.
type EmbeddedConfig struct {
	// Name of this member [--name]; default "default".
	Name string
	// DataDir [--data-dir] holds the WAL and database; created if missing.
	// Required: an embedded server always persists.
	DataDir string
	// ListenClientURLs [--listen-client-urls]; default DefaultEndpoint.
	// Port 0 picks a free port; Endpoints() reports the real one.
	ListenClientURLs []string
	// ListenPeerURLs [--listen-peer-urls]; default DefaultListenPeerURL.
	ListenPeerURLs []string
	// AdvertiseClientURLs [--advertise-client-urls]; default ListenClientURLs.
	AdvertiseClientURLs []string
	// AdvertisePeerURLs [--initial-advertise-peer-urls]; default ListenPeerURLs.
	AdvertisePeerURLs []string
	// InitialCluster [--initial-cluster]; default Name=AdvertisePeerURLs
	// (a single-member cluster).
	InitialCluster string
	// InitialClusterState [--initial-cluster-state]: "new" (default) or "existing".
	InitialClusterState string
	// InitialClusterToken [--initial-cluster-token]; default "calico-etcd".
	InitialClusterToken string
	// TickMs [--heartbeat-interval] and ElectionMs [--election-timeout];
	// defaults 50 and 500 (etcd's are 100 and 1000). A fresh single member
	// still waits about one election timeout before it serves, so shorter
	// means a faster start (0.1 s instead of up to 1 s) while staying well
	// above loopback and LAN round trips.
	TickMs, ElectionMs uint
	// CertFile, KeyFile [--cert-file, --key-file] turn on TLS for clients;
	// TrustedCAFile [--trusted-ca-file] with ClientCertAuth
	// [--client-cert-auth] requires client certificates signed by it.
	CertFile, KeyFile, TrustedCAFile string
	ClientCertAuth                   bool
	// PeerCertFile, PeerKeyFile, PeerTrustedCAFile [--peer-cert-file,
	// --peer-key-file, --peer-trusted-ca-file] with PeerClientCertAuth
	// [--peer-client-cert-auth]: TLS between members.
	PeerCertFile, PeerKeyFile, PeerTrustedCAFile string
	PeerClientCertAuth                           bool
	// InsecurePlaintext allows http:// client or peer URLs on addresses
	// other than loopback. Without it such a listener is refused; with it a
	// warning is logged at every start.
	InsecurePlaintext bool
	// MaxLearners [--max-learners]: how many learners may wait at once
	// (default 1, etcd's).
	MaxLearners int
	// AutoCompactionRetention [--auto-compaction-retention], periodic mode:
	// history kept, e.g. "1h" (default) ; "0" keeps everything.
	AutoCompactionRetention string
	// MaxTxnOps [--max-txn-ops] (default 10000, etcd's is 128) and
	// MaxRequestBytes [--max-request-bytes] (default 8 MiB) let one
	// transaction carry a large multi-document apply.
	MaxTxnOps, MaxRequestBytes uint
	// LogLevel [--log-level] of etcd's own logs to stderr: debug, info, warn
	// (default), error.
	LogLevel string
	// Logger receives etcd's own records (at LogLevel and above, sampled);
	// default slog.Default() with component=etcd.
	Logger *slog.Logger
	// UnsafeNoFsync [--unsafe-no-fsync] skips fsync; for throwaway test
	// servers only (a crash can lose acknowledged writes).
	UnsafeNoFsync bool
}

// Embedded is a running embedded etcd server.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
	ready     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	closing   atomic.Bool // Close was called: stopping is not an error
	err       error
}

func parseURLs(flag string, in []string, def []string) ([]url.URL, error) {
	if len(in) == 0 {
		in = def
	}
	var out []url.URL
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			u, err := url.Parse(part)
			if err != nil || ((u.Scheme != "http" && u.Scheme != "https" || u.Host == "") &&
				(u.Scheme != "unix" && u.Scheme != "unixs" || u.Path == "")) {
				return nil, fmt.Errorf("--%s: invalid URL %q: want e.g. http://127.0.0.1:2379", flag, part)
			}
			out = append(out, *u)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s: no URL given", flag)
	}
	return out, nil
}

func (c EmbeddedConfig) logLevel() string {
	if c.LogLevel == "" {
		return defaultLogLevel
	}
	return c.LogLevel
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

// embedConfig turns our config into etcd's; etcd logs through lg.
func (c EmbeddedConfig) embedConfig(lg *zap.Logger) (*embed.Config, error) {
	if c.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	e := embed.NewConfig()
	e.Name = c.Name
	if e.Name == "" {
		e.Name = defaultMemberName
	}
	e.Dir = c.DataDir
	var err error
	if e.ListenClientUrls, err = parseURLs("listen-client-urls", c.ListenClientURLs, []string{DefaultEndpoint}); err != nil {
		return nil, err
	}
	if e.ListenPeerUrls, err = parseURLs("listen-peer-urls", c.ListenPeerURLs, []string{DefaultListenPeerURL}); err != nil {
		return nil, err
	}
	if e.AdvertiseClientUrls, err = parseURLs("advertise-client-urls", c.AdvertiseClientURLs, urlStrings(e.ListenClientUrls)); err != nil {
		return nil, err
	}
	if e.AdvertisePeerUrls, err = parseURLs("initial-advertise-peer-urls", c.AdvertisePeerURLs, urlStrings(e.ListenPeerUrls)); err != nil {
		return nil, err
	}
	e.InitialCluster = c.InitialCluster
	if e.InitialCluster == "" {
		e.InitialCluster = e.InitialClusterFromName(e.Name)
	}
	switch c.InitialClusterState {
	case "", embed.ClusterStateFlagNew:
		e.ClusterState = embed.ClusterStateFlagNew
	case embed.ClusterStateFlagExisting:
		e.ClusterState = embed.ClusterStateFlagExisting
	default:
		return nil, fmt.Errorf("--initial-cluster-state %q: want new or existing", c.InitialClusterState)
	}
	e.InitialClusterToken = c.InitialClusterToken
	if e.InitialClusterToken == "" {
		e.InitialClusterToken = defaultClusterToken
	}
	e.TickMs, e.ElectionMs = defaultTickMs, defaultElectionMs
	if c.TickMs != 0 {
		e.TickMs = c.TickMs
	}
	if c.ElectionMs != 0 {
		e.ElectionMs = c.ElectionMs
	}
	e.ClientTLSInfo.CertFile = c.CertFile
	e.ClientTLSInfo.KeyFile = c.KeyFile
	e.ClientTLSInfo.TrustedCAFile = c.TrustedCAFile
	e.ClientTLSInfo.ClientCertAuth = c.ClientCertAuth
	if c.ClientCertAuth && c.TrustedCAFile == "" {
		return nil, errors.New("--client-cert-auth needs --trusted-ca-file")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("--cert-file and --key-file must be given together")
	}
	e.PeerTLSInfo.CertFile = c.PeerCertFile
	e.PeerTLSInfo.KeyFile = c.PeerKeyFile
	e.PeerTLSInfo.TrustedCAFile = c.PeerTrustedCAFile
	e.PeerTLSInfo.ClientCertAuth = c.PeerClientCertAuth
	if c.PeerClientCertAuth && c.PeerTrustedCAFile == "" {
		return nil, errors.New("--peer-client-cert-auth needs --peer-trusted-ca-file")
	}
	if (c.PeerCertFile == "") != (c.PeerKeyFile == "") {
		return nil, errors.New("--peer-cert-file and --peer-key-file must be given together")
	}
	if err := checkPlaintext(c.InsecurePlaintext, e.ListenClientUrls, e.ListenPeerUrls); err != nil {
		return nil, err
	}
	if c.MaxLearners > 0 {
		e.MaxLearners = c.MaxLearners
	}
	e.AutoCompactionMode = embed.CompactorModePeriodic
	e.AutoCompactionRetention = c.AutoCompactionRetention
	if e.AutoCompactionRetention == "" {
		e.AutoCompactionRetention = defaultCompaction
	}
	e.MaxTxnOps = c.MaxTxnOps
	if e.MaxTxnOps == 0 {
		e.MaxTxnOps = defaultMaxTxnOps
	}
	e.MaxRequestBytes = c.MaxRequestBytes
	if e.MaxRequestBytes == 0 {
		e.MaxRequestBytes = defaultMaxRequestBytes
	}
	e.LogLevel = c.logLevel()
	e.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	e.UnsafeNoFsync = c.UnsafeNoFsync
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("embedded etcd settings: %w", err)
	}
	return e, nil
}

// checkPlaintext refuses an http:// listener on an address other than
// loopback unless insecure is set.
func checkPlaintext(insecure bool, lists ...[]url.URL) error {
	for i, us := range lists {
		flag := [...]string{"--listen-client-urls", "--listen-peer-urls"}[i]
		for _, u := range us {
			if u.Scheme != "http" || insecure {
				continue
			}
			if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || u.Hostname() == "localhost" {
				continue
			}
			return fmt.Errorf("%s %s: plaintext etcd on a non-loopback address lets anyone who can reach it read and rewrite the cluster's policy; "+
				"use https:// with --cert-file/--key-file/--trusted-ca-file/--client-cert-auth (and --peer-* for peers), or pass --insecure-plaintext to accept the risk", flag, u.String())
		}
	}
	return nil
}

// plaintextURLs lists the non-loopback http:// listeners (for the warning).
func plaintextURLs(lists ...[]url.URL) []string {
	var out []string
	for _, us := range lists {
		for _, u := range us {
			ip := net.ParseIP(u.Hostname())
			if u.Scheme == "http" && (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
				out = append(out, u.String())
			}
		}
	}
	return out
}

// RunEmbedded starts an etcd server in this process and returns once its
// listeners are bound; Ready() closes when it serves clients. The server
// stops when ctx is done or Close is called.
func RunEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	srv := &Embedded{ready: make(chan struct{}), done: make(chan struct{})}
	log := cfg.Logger
	if log == nil {
		log = slog.Default().With("component", "etcd")
	}
	lg, err := etcdLogger(log, cfg.logLevel(), &srv.closing)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", cfg.logLevel(), err)
	}
	ecfg, err := cfg.embedConfig(lg)
	if err != nil {
		return nil, err
	}
	if pt := plaintextURLs(ecfg.ListenClientUrls, ecfg.ListenPeerUrls); len(pt) > 0 {
		log.Warn("INSECURE: etcd serves plaintext without authentication on a non-loopback address (--insecure-plaintext); anyone who reaches it can read and rewrite the cluster's policy", "urls", pt)
	}
	if err := os.MkdirAll(ecfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd data dir: %w", err)
	}
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd (data dir %s, clients %v, peers %v): %w",
			ecfg.Dir, urlStrings(ecfg.ListenClientUrls), urlStrings(ecfg.ListenPeerUrls), err)
	}
	srv.etcd = e
	for i, l := range e.Clients {
		scheme := ecfg.ListenClientUrls[min(i, len(ecfg.ListenClientUrls)-1)].Scheme
		srv.endpoints = append(srv.endpoints, scheme+"://"+l.Addr().String())
	}
	go func() {
		select {
		case <-e.Server.ReadyNotify():
			close(srv.ready)
		case <-e.Server.StopNotify():
		}
	}()
	go func() {
		var err error
		select {
		case <-ctx.Done():
		case <-e.Server.StopNotify():
			err = errors.New("embedded etcd stopped")
		case err = <-e.Err():
			err = fmt.Errorf("embedded etcd failed: %w", err)
		case <-srv.done:
			return
		}
		srv.setErr(err)
		if err != nil && !srv.closing.Load() {
			log.Error("embedded etcd stopped on its own", "err", err)
		}
		_ = srv.Close()
	}()
	return srv, nil
}

func (s *Embedded) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && !s.closing.Load() {
		s.err = err
	}
}

// Ready is closed once the server serves clients.
func (s *Embedded) Ready() <-chan struct{} { return s.ready }

// Done is closed once the server has stopped.
func (s *Embedded) Done() <-chan struct{} { return s.done }

// Err is why the server stopped on its own (nil after Close or ctx end).
func (s *Embedded) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Endpoints are the client URLs actually listened on (port 0 resolved).
func (s *Embedded) Endpoints() []string { return append([]string(nil), s.endpoints...) }

// WaitReady waits until the server serves clients, it stops, or ctx ends.
func (s *Embedded) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-s.done:
		if err := s.Err(); err != nil {
			return err
		}
		return errors.New("embedded etcd stopped before it was ready")
	case <-ctx.Done():
		return fmt.Errorf("embedded etcd not ready: %w", ctx.Err())
	}
}

// Close stops the server cleanly (in-flight requests finish, data is
// synced) and waits for it. Safe to call more than once.
func (s *Embedded) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.etcd.Close()
		close(s.done)
	})
	return nil
}

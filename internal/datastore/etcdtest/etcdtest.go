package etcdtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
)

// startTimeout bounds how long a test waits for a server to serve.
const startTimeout = 30 * time.Second

// Server is an embedded etcd that a test can stop and restart.
type Server struct {
	t         testing.TB
	dir       string
	clientURL string // fixed after the first start, so clients keep working
	peerURL   string

	mu  sync.Mutex
	emb *datastore.Embedded
}

// Start starts a fresh embedded etcd on 127.0.0.1 with random free ports and
// returns its client endpoints. It is closed at test cleanup.
func Start(t testing.TB) []string {
	t.Helper()
	return StartServer(t).Endpoints()
}

// StartServer is Start with control over the server's life.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:         t,
		dir:       t.TempDir(),
		clientURL: "http://127.0.0.1:0",
		peerURL:   "http://127.0.0.1:0",
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// config is tuned for tests: fast election, quiet logs, no fsync (a test
// server never outlives a crash).
func (s *Server) config() datastore.EmbeddedConfig {
	return datastore.EmbeddedConfig{
		Name:                    "test",
		DataDir:                 s.dir,
		ListenClientURLs:        []string{s.clientURL},
		ListenPeerURLs:          []string{s.peerURL},
		TickMs:                  20,
		ElectionMs:              200,
		LogLevel:                "error",
		AutoCompactionRetention: "0",
		UnsafeNoFsync:           true,
	}
}

func (s *Server) start() {
	s.t.Helper()
	emb, err := datastore.RunEmbedded(context.Background(), s.config())
	if err != nil {
		s.t.Fatalf("etcdtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := emb.WaitReady(ctx); err != nil {
		_ = emb.Close()
		s.t.Fatalf("etcdtest: %v", err)
	}
	s.clientURL = emb.Endpoints()[0]
	s.emb = emb
}

// Endpoints are the client URLs; they stay the same across Stop/Restart.
func (s *Server) Endpoints() []string { return []string{s.clientURL} }

// Stop shuts the server down cleanly; clients now find it unreachable.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.emb != nil {
		_ = s.emb.Close()
		s.emb = nil
	}
}

// Restart starts a stopped server again on the same client port with the
// same data: clients reconnect on their own.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.emb != nil {
		s.t.Fatal("etcdtest: Restart of a running server")
	}
	s.start()
}

// Store opens a datastore client on endpoints, closed at test cleanup.
func Store(t testing.TB, endpoints []string) datastore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	st, err := datastore.NewEtcd(ctx, datastore.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

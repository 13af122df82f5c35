package datastore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/pki"
	"github.com/calico-docker/calico/internal/testutil"
)

// tlsMember is an embedded etcd member secured as the node secures it:
// TLS with client-certificate authentication for clients and peers, a
// local unixs:// socket, certificates from a cluster CA (package pki).
type tlsMember struct {
	emb               *datastore.Embedded
	client, peer      string
	socket            string
	creds             datastore.Config
	name, dir, pkiDir string
}

func newCA(t *testing.T) (*pki.CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.CreateCA(pki.Paths{Dir: dir}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return ca, dir
}

func loopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startTLSMember starts a member; initial/state as etcd's flags ("" = a new
// single-member cluster).
func startTLSMember(t *testing.T, ca *pki.CA, caDir, name, initial, state string, ports []int) *tlsMember {
	t.Helper()
	m := &tlsMember{name: name, dir: t.TempDir(), pkiDir: t.TempDir(),
		client: fmt.Sprintf("https://127.0.0.1:%d", ports[0]), peer: fmt.Sprintf("https://127.0.0.1:%d", ports[1])}
	p := pki.Paths{Dir: m.pkiDir}
	if err := ca.IssueLocal(p, name, nil); err != nil {
		t.Fatal(err)
	}
	m.socket = "unixs://" + filepath.Join(m.dir, "etcd.sock")
	m.creds = datastore.Config{CACertFile: filepath.Join(caDir, pki.CACertFile), CertFile: p.Cert(), KeyFile: p.Key()}
	emb, err := datastore.RunEmbedded(context.Background(), datastore.EmbeddedConfig{
		Name: name, DataDir: filepath.Join(m.dir, "data"),
		ListenClientURLs: []string{m.client, m.socket}, AdvertiseClientURLs: []string{m.client},
		ListenPeerURLs: []string{m.peer}, InitialCluster: initial, InitialClusterState: state,
		CertFile: p.Cert(), KeyFile: p.Key(), TrustedCAFile: m.creds.CACertFile, ClientCertAuth: true,
		PeerCertFile: p.Cert(), PeerKeyFile: p.Key(), PeerTrustedCAFile: m.creds.CACertFile, PeerClientCertAuth: true,
		TickMs: 50, ElectionMs: 500, LogLevel: "error", UnsafeNoFsync: true, AutoCompactionRetention: "0", MaxLearners: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.emb = emb
	t.Cleanup(func() { _ = emb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := emb.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *tlsMember) cfg(endpoints ...string) datastore.Config {
	c := m.creds
	c.Endpoints = endpoints
	return c
}

// The conformance suite over TLS with a client certificate, through the
// TCP listener and through the local unixs:// socket.
func TestConformanceEmbeddedEtcdTLS(t *testing.T) {
	ca, caDir := newCA(t)
	m := startTLSMember(t, ca, caDir, "tls", "", "", loopbackPorts(t, 2))
	for name, ep := range map[string]string{"tcp": m.client, "socket": m.socket} {
		t.Run(name, func(t *testing.T) {
			RunConformance(t, func(t *testing.T) datastore.Store {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				st, err := datastore.NewEtcd(ctx, m.cfg(ep))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.Close() })
				return st
			})
		})
	}
}

// Misconfigured TLS is a clear error, never a silent downgrade.
func TestTLSMisconfigurationErrors(t *testing.T) {
	ca, caDir := newCA(t)
	m := startTLSMember(t, ca, caDir, "tls", "", "", loopbackPorts(t, 2))
	other, otherDir := newCA(t)
	stranger := pki.Paths{Dir: t.TempDir()}
	if err := other.IssueLocal(stranger, "stranger", nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plain := "http://" + strings.TrimPrefix(m.client, "https://")
	for _, tc := range []struct {
		name string
		cfg  datastore.Config
		want string
		tls  bool
	}{
		{"plaintext to the TLS port", datastore.Config{Endpoints: []string{plain}}, "is not an etcd server (it closed the connection on a plaintext request: if it is an etcd with TLS, use https://)", false},
		{"TLS without a client certificate", datastore.Config{Endpoints: []string{m.client}, CACertFile: m.creds.CACertFile}, "the server refused our client certificate", true},
		{"client certificate of another CA", datastore.Config{Endpoints: []string{m.client}, CACertFile: m.creds.CACertFile, CertFile: stranger.Cert(), KeyFile: stranger.Key()}, "tls:", true},
		{"server certificate does not verify", datastore.Config{Endpoints: []string{m.client}, CACertFile: filepath.Join(otherDir, pki.CACertFile), CertFile: m.creds.CertFile, KeyFile: m.creds.KeyFile}, "the server's certificate does not verify", true},
		{"TLS files with an http:// endpoint", datastore.Config{Endpoints: []string{plain}, CACertFile: m.creds.CACertFile, CertFile: m.creds.CertFile, KeyFile: m.creds.KeyFile}, "is plaintext: use https:// endpoints", false},
		{"missing CA file", datastore.Config{Endpoints: []string{m.client}, CACertFile: filepath.Join(caDir, "missing.pem")}, "ETCD_CA_CERT_FILE " + filepath.Join(caDir, "missing.pem") + ": open", false},
		{"unreadable key file", datastore.Config{Endpoints: []string{m.client}, CACertFile: m.creds.CACertFile, CertFile: m.creds.CertFile, KeyFile: t.TempDir()}, "ETCD_KEY_FILE", false},
		{"mixed endpoints", datastore.Config{Endpoints: []string{m.client, plain}}, "mix TLS and plaintext", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DialTimeout = time.Second
			st, err := datastore.NewEtcd(ctx, tc.cfg)
			if err == nil {
				st.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			var te *datastore.TLSError
			if tc.tls != errors.As(err, &te) {
				t.Fatalf("TLSError %v, want %v: %v", !tc.tls, tc.tls, err)
			}
			if errors.Is(err, datastore.ErrUnavailable) {
				t.Fatalf("a configuration error reported as an outage: %v", err)
			}
			t.Logf("%v", err)
		})
	}
}

// An endpoint that answers but is not etcd is named as such.
func TestNotAnEtcdServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := datastore.NewEtcd(context.Background(), datastore.Config{Endpoints: []string{srv.URL}, DialTimeout: time.Second})
	var ne *datastore.NotEtcdError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), srv.URL+" is not an etcd server (GET /version answered 404 Not Found)") {
		t.Fatalf("want a not-etcd error, got %v", err)
	}
	t.Log(err)
	// HTTP/2 cleartext that answers gRPC with 404 (what the lab's fabric
	// address used to answer) is the same.
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	_, err = datastore.NewEtcd(context.Background(), datastore.Config{Endpoints: []string{"http://" + strings.TrimPrefix(tlsSrv.URL, "https://")}, DialTimeout: time.Second})
	if !errors.As(err, &ne) {
		t.Fatalf("plaintext to a TLS web server: %v", err)
	}
	t.Log(err)
}

// The embedded server refuses plaintext on a non-loopback address unless
// told it is insecure.
func TestEmbeddedRefusesPlaintextOffLoopback(t *testing.T) {
	for _, tc := range []datastore.EmbeddedConfig{
		{ListenClientURLs: []string{"http://10.255.255.1:2379"}},
		{ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{"http://0.0.0.0:2380"}},
	} {
		tc.DataDir = t.TempDir()
		_, err := datastore.RunEmbedded(context.Background(), tc)
		if err == nil || !strings.Contains(err.Error(), "--insecure-plaintext") {
			t.Fatalf("%v: want a refusal naming --insecure-plaintext, got %v", tc.ListenClientURLs, err)
		}
	}
	if !datastore.PlaintextRefused(false, "http://10.0.0.1:2379") || datastore.PlaintextRefused(true, "http://10.0.0.1:2379") ||
		datastore.PlaintextRefused(false, "http://127.0.0.1:2379") || datastore.PlaintextRefused(false, "https://10.0.0.1:2379") {
		t.Fatal("plaintext rule wrong")
	}
}

// A second member joins as a learner, is promoted once caught up, serves,
// and can be removed again; the last voter cannot.
func TestMembersLearnerPromoteRemove(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two etcd members")
	}
	ca, caDir := newCA(t)
	ports := loopbackPorts(t, 4)
	m1 := startTLSMember(t, ca, caDir, "m1", "", "", ports[:2])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ms, err := datastore.NewMembers(m1.cfg(m1.client))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	peer2 := fmt.Sprintf("https://127.0.0.1:%d", ports[3])
	_, all, err := ms.AddLearner(ctx, peer2)
	if err != nil {
		t.Fatal(err)
	}
	var initial []string
	for _, x := range all {
		name := x.Name
		if name == "" {
			name = "m2"
		}
		initial = append(initial, name+"="+x.PeerURLs[0])
	}
	m2 := startTLSMember(t, ca, caDir, "m2", strings.Join(initial, ","), "existing", ports[2:])
	testutil.Eventually(t, 30*time.Second, func() error {
		l, err := ms.List(ctx)
		if err != nil {
			return err
		}
		for _, x := range l {
			if x.Learner {
				return ms.Promote(ctx, x.ID)
			}
		}
		return nil
	})
	l, err := ms.List(ctx)
	if err != nil || len(l) != 2 || l[0].Learner || l[1].Learner || l[1].Name != "m2" {
		t.Fatalf("members %+v %v", l, err)
	}
	if got := datastore.Voters(l, "m2"); len(got) != 2 || got[0] != m2.client {
		t.Fatalf("voters %v", got)
	}
	st, err := datastore.NewEtcd(ctx, m2.cfg(m2.client))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, "/calico/test/x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// etcd refuses a removal until the remaining members have been
	// connected for a few seconds.
	testutil.Eventually(t, 30*time.Second, func() error {
		_, err := ms.Remove(ctx, "m2")
		return err
	})
	if _, err := ms.Remove(ctx, "m1"); err == nil || !strings.Contains(err.Error(), "only voting member") {
		t.Fatalf("removing the last voter: %v", err)
	}
	if _, err := ms.Remove(ctx, "nope"); err == nil {
		t.Fatal("removing an unknown member succeeded")
	}
}

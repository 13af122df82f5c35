package flows

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/pki"
	"github.com/calico-docker/calico/internal/testutil"
)

// newPKI makes a cluster CA and a node certificate for 127.0.0.1 in a
// temporary directory.
func newPKI(t *testing.T, node string) pki.Paths {
	t.Helper()
	p := pki.Paths{Dir: t.TempDir()}
	ca, err := pki.CreateCA(p, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueLocal(p, node, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveRing serves a ring holding one record on loopback with the node
// credentials of p and returns its address.
func serveRing(t *testing.T, p pki.Paths, host string, at time.Time) string {
	t.Helper()
	g := NewRing(16, 10*time.Second)
	g.Add(Record{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: "icmp", Action: "deny", Direction: "ingress", Rule: -1, Host: host}, at)
	cfg, err := ServerTLS(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, err := ServeTLS(ctx, "127.0.0.1:0", cfg, Handler(func() string { return host }, g))
	if err != nil {
		t.Fatal(err)
	}
	return addr.String()
}

func TestRemoteRequiresClusterClientCert(t *testing.T) {
	p := newPKI(t, "h1")
	addr := serveRing(t, p, "h1", time.Now())
	ctx := context.Background()

	// A client of the same cluster (the host's own node certificate).
	cfg, err := ClientTLS(p)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := NewRemote(cfg).Fetch(ctx, addr, 0)
	if err != nil || rep.Host != "h1" || len(rep.Records) != 1 {
		t.Fatalf("cluster client: %+v %v", rep, err)
	}

	// No client certificate: refused in the handshake.
	noCert := cfg.Clone()
	noCert.Certificates = nil
	if rep, err := NewRemote(noCert).Fetch(ctx, addr, 0); err == nil {
		t.Fatalf("client without a certificate got %+v", rep)
	}

	// A certificate of another cluster's CA: refused too.
	foreign := newPKI(t, "h1")
	fcfg, err := ClientTLS(foreign)
	if err != nil {
		t.Fatal(err)
	}
	fcfg.RootCAs = cfg.RootCAs // it trusts our server, but we do not trust it
	if rep, err := NewRemote(fcfg).Fetch(ctx, addr, 0); err == nil {
		t.Fatalf("client with a foreign certificate got %+v", rep)
	}

	// Plain HTTP on the port gets nothing either.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET /flows HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	if strings.Contains(string(buf[:n]), "records") {
		t.Fatalf("plain HTTP got flows: %q", buf[:n])
	}
	// And the server refuses TLS clients that present nothing at the
	// handshake (not only at the first request).
	tc, err := tls.Dial("tcp", addr, noCert)
	if err == nil {
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = tc.Read(make([]byte, 1))
		tc.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("handshake without a certificate: %v, want a certificate error", err)
	}
}

func TestAskerMergesNodesAndReportsSilentOnes(t *testing.T) {
	p := newPKI(t, "h1")
	t0 := time.Now()
	// h1 is this host: its node answers on the socket (and would on TLS,
	// but must not be asked twice).
	g := NewRing(16, 10*time.Second)
	g.Add(Record{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: "icmp", Action: "deny", Direction: "ingress", Rule: -1, Host: "h1"}, t0.Add(2*time.Second))
	sock := filepath.Join(t.TempDir(), "flows.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, Handler(func() string { return "h1" }, g)) }()
	t.Cleanup(func() { cancel(); <-done })
	a1 := serveRing(t, p, "h1", t0.Add(2*time.Second))
	a2 := serveRing(t, p, "h2", t0)
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	cfg, err := ClientTLS(p)
	if err != nil {
		t.Fatal(err)
	}
	ask := &Asker{Socket: sock, Remote: NewRemote(cfg)}
	targets := []Target{{Node: "h1", Addr: a1}, {Node: "h2", Addr: a2}, {Node: "h3", Addr: dead}}
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := Fetch(context.Background(), sock, 0)
		return err
	})
	recs, failed, lerr := ask.Poll(context.Background(), targets)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(recs) != 2 || recs[0].Host != "h2" || recs[1].Host != "h1" {
		t.Fatalf("records not merged oldest first with their hosts, once each: %+v", recs)
	}
	if ask.LocalNode() != "h1" {
		t.Errorf("local node %q, want h1", ask.LocalNode())
	}
	if len(failed) != 1 || failed["h3"] == nil {
		t.Fatalf("failed: %v", failed)
	}
	// The next poll brings only what is new.
	if recs, _, _ := ask.Poll(context.Background(), targets); len(recs) != 0 {
		t.Fatalf("second poll repeated records: %+v", recs)
	}
	// Only h2.
	only := &Asker{Socket: sock, Only: "h2", Remote: NewRemote(cfg)}
	if recs, _, _ := only.Poll(context.Background(), targets[1:2]); len(recs) != 1 || recs[0].Host != "h2" {
		t.Fatalf("--node h2: %+v", recs)
	}
}

func TestTargets(t *testing.T) {
	nodes := []api.Node{
		{ObjectMeta: api.ObjectMeta{Name: "h1"}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: "10.0.0.1/24"}}},
		{ObjectMeta: api.ObjectMeta{Name: "h2"}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: "10.0.0.2/24"}}},
		{ObjectMeta: api.ObjectMeta{Name: "h3"}},
	}
	ts, err := Targets(nodes, "", 9096)
	if err != nil || len(ts) != 3 || ts[1].Addr != "10.0.0.2:9096" || ts[2].Err == nil {
		t.Fatalf("all: %+v %v", ts, err)
	}
	if ts, err := Targets(nodes, "h2", 9096); err != nil || len(ts) != 1 || ts[0].Node != "h2" {
		t.Fatalf("--node h2: %+v %v", ts, err)
	}
	if _, err := Targets(nodes, "nope", 9096); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("--node nope: %v", err)
	}
}

func TestResolverNamesRemoteEndpoints(t *testing.T) {
	d := NewDirectory()
	w := api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Name: "x", Namespace: "docker", Labels: map[string]string{"docker.container": "db2", "docker.network": "backend", "role": "db"}},
		Spec: api.WorkloadEndpointSpec{Node: "h2", IPNetworks: []string{"10.67.1.5/32"}}}
	d.Upsert(&w)
	r := NewResolver(nil, "h1", d)
	pkt := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 67, 1, 5, 10, 67, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0}
	rec, ok := r.Record(LogPacket{Prefix: "cflow E tw end", Payload: pkt})
	if !ok || rec.SrcName != "db2" || rec.SrcNetwork != "backend" || rec.SrcLabels["role"] != "db" || rec.Host != "h1" {
		t.Fatalf("record: %+v %v", rec, ok)
	}
	d.Delete("docker", "x")
	if rec, _ := r.Record(LogPacket{Prefix: "cflow E tw end", Payload: pkt}); rec.SrcName != "" {
		t.Fatalf("deleted endpoint still named: %+v", rec)
	}
}

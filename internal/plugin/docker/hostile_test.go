package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/testutil"
)

// Hostile requests on the real sockets, served by Run as the daemon serves
// them: each gets a 4xx answer with a one-line reason, the server keeps
// serving, and nothing is allocated or recorded.
func TestHostileRequestsOverSocket(t *testing.T) {
	st := datastore.NewMemory()
	defer st.Close()
	putPoolTB(t, st, "pool4", "10.65.0.0/16")
	alloc := ipam.New(st, ipam.WithLogger(quietLogger()))
	s, err := NewServer(Config{Store: st, IPAM: alloc, Node: testNode, PluginDir: t.TempDir(), MTU: 1440, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	netSock, ipamSock := s.SocketPaths()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testutil.Eventually(t, 5*time.Second, func() error { _, err := activateOver(ipamSock); return err })
	before, _, err := st.List(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}

	big := bytes.Repeat([]byte("x"), maxBody+1)
	bigJSON := append(append([]byte(`{"PoolID":"`), bytes.Repeat([]byte("a"), maxBody)...), `"}`...)
	cases := []struct {
		name, sock, path string
		body             []byte
		status           int
		want             string
	}{
		{"oversized body", ipamSock, "/IpamDriver.RequestAddress", big, 400, "request body too large"},
		{"oversized JSON", ipamSock, "/IpamDriver.RequestAddress", bigJSON, 400, "request body too large"},
		{"malformed JSON", ipamSock, "/IpamDriver.RequestPool", []byte(`{"Pool":`), 400, "not valid JSON"},
		{"deeply nested JSON", netSock, "/NetworkDriver.CreateNetwork", bytes.Repeat([]byte("["), 100000), 400, "not valid JSON"},
		{"wrong type", ipamSock, "/IpamDriver.RequestAddress", []byte(`{"PoolID":["CalicoPoolIPv4"]}`), 400, "not valid JSON"},
		{"wrong type bool", ipamSock, "/IpamDriver.RequestPool", []byte(`{"V6":"yes"}`), 400, "not valid JSON"},
		{"array body", netSock, "/NetworkDriver.Join", []byte(`[1,2,3]`), 400, "not valid JSON"},
		{"binary garbage", netSock, "/NetworkDriver.CreateEndpoint", []byte{0xff, 0xfe, 0, 1, 2}, 400, "not valid JSON"},
		{"endpoint ID with path", netSock, "/NetworkDriver.Join", []byte(`{"NetworkID":"` + testNetID + `","EndpointID":"../../../etc/passwd","SandboxKey":"/proc/1/ns/net"}`), 400, "is not a Docker ID"},
		{"endpoint ID with control chars", netSock, "/NetworkDriver.CreateEndpoint", []byte(`{"NetworkID":"` + testNetID + `","EndpointID":"abc\u0000\n\u001b[31m","Interface":{"Address":"10.65.0.1/32"}}`), 400, "is not a Docker ID"},
		{"network ID huge", netSock, "/NetworkDriver.CreateNetwork", []byte(`{"NetworkID":"` + strings.Repeat("a", 100000) + `"}`), 400, "is not a Docker ID"},
		{"unknown endpoint", netSock, "/NetworkDriver.Join", []byte(`{"NetworkID":"` + testNetID + `","EndpointID":"` + epA + `","SandboxKey":"/x"}`), 400, "is unknown"},
		{"unknown pool", ipamSock, "/IpamDriver.RequestAddress", []byte(`{"PoolID":"../../x"}`), 400, "unknown pool ID"},
		{"address out of range", ipamSock, "/IpamDriver.RequestAddress", []byte(`{"PoolID":"CalicoPoolIPv4","Address":"10.65.0.300"}`), 400, "is not an IP address"},
		{"subnet out of range", ipamSock, "/IpamDriver.RequestPool", []byte(`{"AddressSpace":"CalicoLocalAddressSpace","Pool":"10.65.0.0/33"}`), 400, "is not a CIDR"},
		{"mtu out of range", netSock, "/NetworkDriver.CreateNetwork", []byte(`{"NetworkID":"` + testNetID + `","Options":{"com.docker.network.generic":{"mtu":"99999999"}},"IPv4Data":[{"AddressSpace":"CalicoLocalAddressSpace","Pool":"0.0.0.0/0"}]}`), 400, "mtu"},
		{"unknown method", netSock, "/NetworkDriver.Format", []byte(`{}`), 404, "is not a method"},
		{"IPAM method on network socket", netSock, "/IpamDriver.RequestAddress", []byte(`{}`), 404, "is not a method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, msg := postRaw(t, c.sock, http.MethodPost, c.path, c.body)
			if code != c.status || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || len(msg) > 1024 {
				t.Fatalf("status %d, error %.300q; want %d and a one-line reason with %q", code, msg, c.status, c.want)
			}
		})
	}
	if code, msg := postRaw(t, ipamSock, http.MethodGet, "/IpamDriver.RequestPool", nil); code != http.StatusMethodNotAllowed || msg == "" {
		t.Fatalf("GET: %d %q", code, msg)
	}
	// A malformed HTTP request and a client that hangs up half way.
	for _, raw := range []string{"GARBAGE\r\n\r\n", "POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Po"} {
		c, err := net.Dial("unix", ipamSock)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, raw)
		c.Close()
	}
	// Many hostile clients at once.
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := postRaw(t, ipamSock, http.MethodPost, "/IpamDriver.RequestAddress", big); code != 400 {
				t.Errorf("concurrent oversized: %d", code)
			}
		}()
	}
	wg.Wait()
	// Still serving, and nothing was written.
	if _, err := activateOver(netSock); err != nil {
		t.Fatalf("network socket after hostile requests: %v", err)
	}
	if _, err := activateOver(ipamSock); err != nil {
		t.Fatalf("IPAM socket after hostile requests: %v", err)
	}
	after, _, err := st.List(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("hostile requests changed the datastore: %d keys before, %d after", len(before), len(after))
	}
}

// postRaw sends body to path over the unix socket and returns the status
// and the reply's Err.
func postRaw(t *testing.T, sock, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://plugin"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := unixClient(sock).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	var out struct{ Err string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: reply is not JSON: %v", path, err)
	}
	return resp.StatusCode, out.Err
}

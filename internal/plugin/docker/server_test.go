package docker

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/testutil"
)

// unixClient talks HTTP over a unix socket, as dockerd does.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
}

func activateOver(path string) (string, error) {
	resp, err := unixClient(path).Post("http://plugin/Plugin.Activate", "application/json", strings.NewReader("{}"))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestRunServesSockets(t *testing.T) {
	dir := t.TempDir()
	st := datastore.NewMemory()
	defer st.Close()
	newSrv := func() *Server {
		s, err := NewServer(Config{Store: st, IPAM: ipam.New(st), Node: testNode, PluginDir: dir, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newSrv()
	netSock, ipamSock := s.SocketPaths()
	if netSock != filepath.Join(dir, "calico.sock") || ipamSock != filepath.Join(dir, "calico-ipam.sock") {
		t.Fatalf("sockets %s %s", netSock, ipamSock)
	}
	// A stale socket file (nobody listens) is replaced.
	ln, err := net.Listen("unix", netSock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, c := range []struct{ path, want string }{{netSock, `"NetworkDriver"`}, {ipamSock, `"IpamDriver"`}} {
			body, err := activateOver(c.path)
			if err != nil {
				return err
			}
			if !strings.Contains(body, c.want) {
				return errors.New("activate said " + body)
			}
		}
		return nil
	})
	// A second server refuses to take over live sockets.
	err = newSrv().Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "served by another process") {
		t.Fatalf("second server: %v", err)
	}
	// Malformed input does not stop the server.
	resp, err := unixClient(ipamSock).Post("http://plugin/IpamDriver.RequestPool", "application/json", strings.NewReader("{{{"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed: %d", resp.StatusCode)
	}
	if _, err := activateOver(ipamSock); err != nil {
		t.Fatalf("after malformed input: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	for _, p := range []string{netSock, ipamSock} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s left behind: %v", p, err)
		}
	}
}

func TestNewServerChecks(t *testing.T) {
	st := datastore.NewMemory()
	defer st.Close()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{IPAM: ipam.New(st), Node: "n"}, "datastore"},
		{Config{Store: st, Node: "n"}, "IPAM"},
		{Config{Store: st, IPAM: ipam.New(st)}, "node name"},
		{Config{Store: st, IPAM: ipam.New(st), Node: "n", MTU: 20}, "MTU"},
	} {
		if _, err := NewServer(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewServer(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

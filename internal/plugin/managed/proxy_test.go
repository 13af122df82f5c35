package managed

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/plugin/docker"
)

// fakeNode serves a socket in dir that answers every call with its path.
func fakeNode(t *testing.T, dir, sock string, h http.HandlerFunc) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(dir, sock))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func post(t *testing.T, p *Proxy, path, body string) (int, string) {
	t.Helper()
	srv := &http.Server{Handler: p}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	resp, err := http.Post("http://"+ln.Addr().String()+path, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestProxy(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "px")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := NewProxy(ProxyConfig{NodeDir: dir})

	// The node is down: capabilities still answer, other calls say why.
	if code, body := post(t, p, "/NetworkDriver.GetCapabilities", "{}"); code != 200 || !strings.Contains(body, `"Scope":"global"`) {
		t.Fatalf("capabilities without node: %d %s", code, body)
	}
	if code, body := post(t, p, "/IpamDriver.RequestPool", "{}"); code != 500 || !strings.Contains(body, "calico node") {
		t.Fatalf("request without node: %d %s", code, body)
	}

	fakeNode(t, dir, "calico.sock", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/NetworkDriver.GetCapabilities" {
			_, _ = io.WriteString(w, `{"Scope":"local","ConnectivityScope":"global"}`)
			return
		}
		w.WriteHeader(400)
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, `{"Err":"net `+r.URL.Path+" "+string(b)+`"}`)
	})
	fakeNode(t, dir, "calico-ipam.sock", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"PoolID":"ipam `+r.URL.Path+`"}`)
	})
	if code, body := post(t, p, "/Plugin.Activate", ""); code != 200 || body != `{"Implements":["NetworkDriver","IpamDriver"]}` {
		t.Fatalf("activate: %d %s", code, body)
	}
	code, body := post(t, p, "/NetworkDriver.GetCapabilities", "{}")
	var caps map[string]string
	if err := json.Unmarshal([]byte(body), &caps); code != 200 || err != nil || caps["Scope"] != "global" || caps["ConnectivityScope"] != "global" {
		t.Fatalf("capabilities: %d %s", code, body)
	}
	if code, body := post(t, p, "/NetworkDriver.CreateEndpoint", `{"x":1}`); code != 400 || body != `{"Err":"net /NetworkDriver.CreateEndpoint {"x":1}"}` {
		t.Fatalf("network call: %d %s", code, body)
	}
	if code, body := post(t, p, "/IpamDriver.RequestAddress", "{}"); code != 200 || !strings.Contains(body, "ipam /IpamDriver.RequestAddress") {
		t.Fatalf("ipam call: %d %s", code, body)
	}
	// AllocateNetwork goes to the node (options, -o pool); FreeNetwork
	// needs nothing from it.
	if code, body := post(t, p, "/NetworkDriver.AllocateNetwork", `{"y":2}`); code != 400 || body != `{"Err":"net /NetworkDriver.AllocateNetwork {"y":2}"}` {
		t.Fatalf("allocate: %d %s", code, body)
	}
	if code, body := post(t, p, "/NetworkDriver.FreeNetwork", "{}"); code != 200 || body != `{}` {
		t.Fatalf("free: %d %s", code, body)
	}
	if code, _ := post(t, p, "/Other.Thing", "{}"); code != 404 {
		t.Fatalf("unknown method: %d", code)
	}
}

// The plugin's static replies agree with the node's constants.
func TestStaticReplies(t *testing.T) {
	b := staticReply["/IpamDriver.GetDefaultAddressSpaces"]
	if !strings.Contains(b, `"`+docker.LocalAddressSpace+`"`) || !strings.Contains(b, `"`+docker.GlobalAddressSpace+`"`) {
		t.Fatalf("address spaces %s differ from the node's", b)
	}
}

func TestBuild(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	bin := filepath.Join(t.TempDir(), "calico")
	if err := os.WriteFile(bin, []byte("#!bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Build(dir, bin); err != nil {
		t.Fatal(err)
	}
	var c Config
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Linux.Capabilities) != 0 || c.Network.Type != "" || len(c.Mounts) != 1 || c.Mounts[0].Options[1] != "ro" ||
		c.Interface.Socket != SocketName || len(c.Interface.Types) != 2 {
		t.Fatalf("config.json: %s", b)
	}
	if fi, err := os.Stat(filepath.Join(dir, "rootfs", "calico")); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("rootfs/calico: %v", err)
	}
	if err := Build(dir, bin); err == nil {
		t.Fatal("Build into a non-empty directory succeeded")
	}
	for _, bad := range []string{"", "Calico/x", "a b", "calico/calico:"} {
		if ValidateName(bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if err := ValidateName(DefaultName); err != nil {
		t.Error(err)
	}
}

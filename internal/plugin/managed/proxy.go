package managed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ProxyConfig configures the plugin's proxy.
type ProxyConfig struct {
	// Listen is the socket Docker calls (inside the plugin:
	// /run/docker/plugins/calico.sock).
	Listen string
	// NodeDir holds the node's calico.sock and calico-ipam.sock.
	NodeDir string
	Logger  *slog.Logger
}

// maxBody bounds a request body; Docker's are a few hundred bytes.
const maxBody = 1 << 20

// callTimeout bounds one forwarded call; Docker's own plugin timeout is
// longer, so a node that hangs fails the call with a reason.
const callTimeout = 60 * time.Second

// Proxy forwards Docker's plugin calls to the node's sockets.
type Proxy struct {
	cfg     ProxyConfig
	network *http.Client
	ipam    *http.Client
}

// NewProxy returns a proxy; it does no I/O.
func NewProxy(cfg ProxyConfig) *Proxy {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Proxy{cfg: cfg,
		network: unixClient(filepath.Join(cfg.NodeDir, "calico.sock")),
		ipam:    unixClient(filepath.Join(cfg.NodeDir, "calico-ipam.sock"))}
}

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: callTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second,
	}}
}

const contentType = "application/vnd.docker.plugins.v1+json"

// ServeHTTP answers Plugin.Activate and forwards the drivers' calls.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var c *http.Client
	var sock string
	switch {
	case r.URL.Path == "/Plugin.Activate":
		reply(w, http.StatusOK, `{"Implements":["NetworkDriver","IpamDriver"]}`)
		return
	case r.URL.Path == "/NetworkDriver.FreeNetwork":
		// The calico network keeps no swarm-level state (AllocateNetwork,
		// forwarded, checks the options and binds -o pool; the pool's
		// release frees the rest), so a node that is down does not hold up
		// a network's removal.
		reply(w, http.StatusOK, `{}`)
		return
	case strings.HasPrefix(r.URL.Path, "/NetworkDriver."):
		c, sock = p.network, "calico.sock"
	case strings.HasPrefix(r.URL.Path, "/IpamDriver."):
		c, sock = p.ipam, "calico-ipam.sock"
	default:
		reply(w, http.StatusNotFound, errJSON(r.URL.Path+" is not a method of the calico plugin"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		reply(w, http.StatusBadRequest, errJSON("cannot read the request: "+err.Error()))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "http://calico"+r.URL.Path, strings.NewReader(string(body)))
	if err != nil {
		reply(w, http.StatusInternalServerError, errJSON(err.Error()))
		return
	}
	req.Header.Set("Content-Type", contentType)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil && staticReply[r.URL.Path] != "" {
		// Docker asks for the capabilities when it loads the plugin, maybe
		// before the node runs; a failure there makes swarm's allocator
		// lose the driver ("could not resolve driver"). They never change.
		p.cfg.Logger.Info("node not reachable; answering from the plugin", "method", r.URL.Path, "error", err)
		reply(w, http.StatusOK, staticReply[r.URL.Path])
		return
	}
	if err != nil {
		msg := fmt.Sprintf("the calico node on this host does not answer on %s: %v (is `calico node` running? the plugin only forwards to it)",
			filepath.Join(p.cfg.NodeDir, sock), rootCause(err))
		p.cfg.Logger.Warn("forward failed", "method", r.URL.Path, "error", err)
		reply(w, http.StatusInternalServerError, errJSON(msg))
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		reply(w, http.StatusBadGateway, errJSON("read the node's reply: "+err.Error()))
		return
	}
	if r.URL.Path == "/NetworkDriver.GetCapabilities" && resp.StatusCode == http.StatusOK {
		out = globalScope(out)
	}
	p.cfg.Logger.Debug("call", "method", r.URL.Path, "request", string(body), "status", resp.StatusCode, "reply", strings.TrimSpace(string(out)), "took", time.Since(start))
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// staticReply holds the replies that do not depend on the node's state, as
// the plugin gives them (the node's capabilities with the global scope).
var staticReply = map[string]string{
	"/NetworkDriver.GetCapabilities":      `{"Scope":"global","ConnectivityScope":"global"}`,
	"/IpamDriver.GetCapabilities":         `{"RequiresMACAddress":true}`,
	"/IpamDriver.GetDefaultAddressSpaces": `{"LocalDefaultAddressSpace":"CalicoLocalAddressSpace","GlobalDefaultAddressSpace":"CalicoGlobalAddressSpace"}`,
}

// globalScope rewrites the node's capabilities to Scope "global". The node
// answers "local" for its legacy sockets, which serve hosts outside swarm
// (a global-scope driver fails there). In swarm, a local-scope driver's
// networks get no swarm-level IPAM: each node would allocate with Docker's
// default IPAM unless given a --config-from network. With "global" the
// swarm manager allocates every task's address through this plugin, from
// the calico pools. The managed plugin is for swarm hosts.
func globalScope(body []byte) []byte {
	var caps map[string]any
	if err := json.Unmarshal(body, &caps); err != nil {
		return body
	}
	caps["Scope"] = "global"
	b, err := json.Marshal(caps)
	if err != nil {
		return body
	}
	return b
}

func rootCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func errJSON(msg string) string {
	b := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ").Replace(msg)
	return `{"Err":"` + b + `"}`
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// Run serves the proxy on cfg.Listen until ctx is done.
func (p *Proxy) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(p.cfg.Listen), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p.cfg.Listen), err)
	}
	_ = os.Remove(p.cfg.Listen)
	ln, err := net.Listen("unix", p.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", p.cfg.Listen, err)
	}
	if err := os.Chmod(p.cfg.Listen, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("chmod %s: %w", p.cfg.Listen, err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(p.cfg.Logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	p.cfg.Logger.Info("calico plugin proxy serving", "socket", p.cfg.Listen, "node", p.cfg.NodeDir)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s: %w", p.cfg.Listen, err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

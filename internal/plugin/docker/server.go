package docker

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
	"sync"
	"syscall"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/hostports"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/moby/moby/client"
)

// DefaultGracePeriod is how long an address or endpoint may look orphaned
// before the reconcile frees it: long enough for any Docker operation in
// flight (a plugin call times out well before) to finish.
const DefaultGracePeriod = 2 * time.Minute

// Config configures the plugin server.
type Config struct {
	// Store is the datastore.
	Store datastore.Store
	// IPAM assigns addresses; it must work on Store.
	IPAM *ipam.Allocator
	// Node is this node's name (endpoints and IPAM blocks are this node's).
	Node string
	// PluginDir is where the sockets go ("/run/docker/plugins").
	PluginDir string
	// SocketGroup is the gid the sockets belong to, with mode 0660; nil
	// means the host's "docker" group (DockerSocketGroup). NoSocketGroup,
	// or no docker group: mode 0600. Either way the umask plays no part.
	SocketGroup *int
	// Docker reaches this host's dockerd; nil disables what needs it (network
	// names are then unknown, so CreateEndpoint fails; no labels; no reconcile
	// of endpoints against containers).
	Docker *client.Client
	// NetNS is the path of the network namespace where veths are created
	// ("" = the current one); it must be dockerd's, which moves the
	// container side into the sandbox.
	NetNS string
	// MTU of the veths; 0 detects it (see mtu.go). `-o mtu=N` on a network wins.
	MTU int
	// HostPorts reserves published host ports and serves them on loopback;
	// nil reserves nothing (ports are then checked against other endpoints
	// only).
	HostPorts *hostports.Holder
	// GracePeriod overrides DefaultGracePeriod when positive.
	GracePeriod time.Duration
	// ReconcileInterval is how often the reconcile runs after the first one
	// at start; 0 means GracePeriod.
	ReconcileInterval time.Duration
	Logger            *slog.Logger
}

// Server serves Docker's NetworkDriver and IpamDriver plugin protocols.
type Server struct {
	cfg   Config
	store datastore.Store
	ipam  *ipam.Allocator
	node  string
	log   *slog.Logger
	grace time.Duration

	mu       sync.Mutex
	networks map[string]*netInfo // Docker network ID -> what we know of it
	eps      map[string]*epInfo  // endpoint ID -> what Join needs
	// pending: whole-space pool tokens (per family) waiting for their
	// network's options; poolChoice: pool token -> IPPool name ("" none).
	// See poolopt.go.
	pending    map[int][]pendingPool
	poolChoice map[string]string
	// swarmNets: swarm networks this node allocated (it is a manager's);
	// vipWarned: service ID -> the version whose VIP mode was logged.
	swarmNets map[string]bool
	vipWarned map[string]string

	// portMu serialises the choice and reservation of host ports.
	portMu sync.Mutex

	mtuMu   sync.Mutex
	mtuAt   time.Time
	mtuVal  int
	mtuErr  error
	nowFunc func() time.Time
}

// netInfo is what the driver knows of one Docker network.
type netInfo struct {
	name string // "" until known
	mtu  int    // -o mtu=N; 0: detect
}

// epInfo is what Join needs of an endpoint created earlier.
type epInfo struct {
	ipv6    bool
	network string
}

// NewServer checks cfg and returns a server. It does no I/O.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("docker plugin: a datastore is required")
	}
	if cfg.IPAM == nil {
		return nil, errors.New("docker plugin: an IPAM allocator is required")
	}
	if cfg.Node == "" {
		return nil, errors.New("docker plugin: the node name is required")
	}
	if cfg.PluginDir == "" {
		cfg.PluginDir = "/run/docker/plugins"
	}
	if cfg.MTU < 0 || (cfg.MTU > 0 && cfg.MTU < minMTU) || cfg.MTU > maxMTU {
		return nil, fmt.Errorf("docker plugin: MTU %d out of range %d-%d", cfg.MTU, minMTU, maxMTU)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		store:    cfg.Store,
		ipam:     cfg.IPAM,
		node:     cfg.Node,
		log:      cfg.Logger, // the caller names the component
		grace:    cfg.GracePeriod,
		networks: map[string]*netInfo{},
		eps:      map[string]*epInfo{},
		nowFunc:  time.Now,

		pending:    map[int][]pendingPool{},
		poolChoice: map[string]string{},
		swarmNets:  map[string]bool{},
		vipWarned:  map[string]string{},
	}
	if s.grace <= 0 {
		s.grace = DefaultGracePeriod
	}
	return s, nil
}

func (s *Server) now() time.Time { return s.nowFunc() }

// SocketPaths are the two sockets Run serves.
func (s *Server) SocketPaths() (network, ipamSock string) {
	return filepath.Join(s.cfg.PluginDir, NetworkDriverName+".sock"),
		filepath.Join(s.cfg.PluginDir, IPAMDriverName+".sock")
}

// Run serves calico.sock (NetworkDriver) and calico-ipam.sock (IpamDriver)
// until ctx is done, with the Docker event watcher (labels) and the
// reconcile (at start, then every ReconcileInterval). A stale socket file
// (nobody answers on it) is replaced; a live one is an error, since another
// plugin server owns it. The sockets are removed on return.
func (s *Server) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.PluginDir, 0o755); err != nil {
		return fmt.Errorf("docker plugin: create %s: %w", s.cfg.PluginDir, err)
	}
	netPath, ipamPath := s.SocketPaths()
	var socks []*socket
	defer func() {
		for _, so := range socks {
			so.close()
		}
	}()
	for _, p := range []struct {
		path string
		h    http.Handler
	}{{netPath, s.NetworkHandler()}, {ipamPath, s.IPAMHandler()}} {
		so, err := listenSocket(p.path, s.socketGroup())
		if err != nil {
			return fmt.Errorf("docker plugin: %w", err)
		}
		so.srv = &http.Server{Handler: p.h, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
		socks = append(socks, so)
	}
	errc := make(chan error, len(socks))
	for _, so := range socks {
		go func(so *socket) {
			if err := so.srv.Serve(so.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("docker plugin: serve %s: %w", so.path, err)
			}
		}(so)
	}
	s.log.Info("serving Docker plugins", "network", netPath, "ipam", ipamPath, "node", s.node)
	s.restorePorts(ctx)

	var wg sync.WaitGroup
	bg, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); s.watchEvents(bg) }()
	go func() { defer wg.Done(); s.reconcileLoop(bg) }()

	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, so := range socks {
		_ = so.srv.Shutdown(shutCtx)
	}
	s.log.Info("stopped serving Docker plugins")
	return nil
}

// socket is one listening unix socket and the identity of its file, so that
// closing removes our file and never one a newer server put in its place.
type socket struct {
	path string
	ln   *net.UnixListener
	ino  uint64
	srv  *http.Server
}

func (s *Server) socketGroup() int {
	if s.cfg.SocketGroup != nil {
		return *s.cfg.SocketGroup
	}
	return DockerSocketGroup()
}

func listenSocket(path string, gid int) (*socket, error) {
	if _, err := os.Lstat(path); err == nil {
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			c.Close()
			return nil, fmt.Errorf("%s is served by another process (is another calico node running?)", path)
		}
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	ln, err := listenPrivate(path, gid)
	if err != nil {
		return nil, err
	}
	so := &socket{path: path, ln: ln}
	if fi, err := os.Lstat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			so.ino = st.Ino
		}
	}
	return so, nil
}

func (so *socket) close() {
	_ = so.ln.Close()
	fi, err := os.Lstat(so.path)
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Ino == so.ino {
		_ = os.Remove(so.path)
	}
}

// ---- HTTP plumbing ----

// maxBody bounds a request body; Docker's are a few hundred bytes.
const maxBody = 1 << 20

// badRequest marks an error caused by the request itself (HTTP 400).
type badRequest struct{ err error }

func (e badRequest) Error() string { return e.err.Error() }
func (e badRequest) Unwrap() error { return e.err }

func badf(format string, args ...any) error { return badRequest{fmt.Errorf(format, args...)} }

// method adapts a typed handler: it decodes the JSON body into Req (an
// empty body is an empty request), calls f and writes the reply. Errors
// become {"Err": "..."} with status 400 (bad request) or 500.
func method[Req any, Resp any](s *Server, name string, f func(context.Context, *Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, errResponse{Err: name + " must be called with POST"})
			return
		}
		var req Req
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			s.log.Warn("plugin request unreadable", "method", name, "error", err)
			writeJSON(w, http.StatusBadRequest, errResponse{Err: fmt.Sprintf("%s: cannot read the request: %v", name, err)})
			return
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				s.log.Warn("plugin request is malformed", "method", name, "error", err)
				writeJSON(w, http.StatusBadRequest, errResponse{Err: fmt.Sprintf("%s: the request is not valid JSON: %v", name, err)})
				return
			}
		}
		start := time.Now()
		resp, err := f(r.Context(), &req)
		if err != nil {
			status := http.StatusInternalServerError
			var br badRequest
			if errors.As(err, &br) {
				status = http.StatusBadRequest
			}
			s.log.Warn("plugin request failed", "method", name, "error", err, "request", logBody(body))
			writeJSON(w, status, errResponse{Err: err.Error()})
			return
		}
		s.log.Debug("plugin request", "method", name, "request", logBody(body), "took", time.Since(start))
		writeJSON(w, http.StatusOK, resp)
	}
}

// logBody is a request body as logged: cut short, so a hostile client
// cannot fill the log with megabytes per request.
func logBody(b []byte) string {
	const maxLogged = 2 << 10
	if len(b) > maxLogged {
		return fmt.Sprintf("%s... (%d bytes)", b[:maxLogged], len(b))
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"Err":"internal error: cannot encode the reply"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

type empty struct{}

func activate(implements ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, activateResponse{Implements: implements})
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errResponse{Err: fmt.Sprintf("%s is not a method of the calico plugin", r.URL.Path)})
}

// NetworkHandler serves calico.sock: Plugin.Activate and NetworkDriver.*.
func (s *Server) NetworkHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", notFound)
	mux.HandleFunc("/Plugin.Activate", activate("NetworkDriver"))
	s.networkRoutes(mux)
	return mux
}

// IPAMHandler serves calico-ipam.sock: Plugin.Activate and IpamDriver.*.
func (s *Server) IPAMHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", notFound)
	mux.HandleFunc("/Plugin.Activate", activate("IpamDriver"))
	s.ipamRoutes(mux)
	return mux
}

// Handler serves both drivers on one mux (Plugin.Activate names both), for
// tests with httptest; Run serves each driver on its own socket.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", notFound)
	mux.HandleFunc("/Plugin.Activate", activate("NetworkDriver", "IpamDriver"))
	s.networkRoutes(mux)
	s.ipamRoutes(mux)
	return mux
}

func (s *Server) networkRoutes(mux *http.ServeMux) {
	mux.Handle("/NetworkDriver.GetCapabilities", method(s, "NetworkDriver.GetCapabilities", s.netCapabilities))
	mux.Handle("/NetworkDriver.CreateNetwork", method(s, "NetworkDriver.CreateNetwork", s.createNetwork))
	mux.Handle("/NetworkDriver.DeleteNetwork", method(s, "NetworkDriver.DeleteNetwork", s.deleteNetwork))
	mux.Handle("/NetworkDriver.CreateEndpoint", method(s, "NetworkDriver.CreateEndpoint", s.createEndpoint))
	mux.Handle("/NetworkDriver.EndpointOperInfo", method(s, "NetworkDriver.EndpointOperInfo", s.endpointInfo))
	mux.Handle("/NetworkDriver.DeleteEndpoint", method(s, "NetworkDriver.DeleteEndpoint", s.deleteEndpoint))
	mux.Handle("/NetworkDriver.Join", method(s, "NetworkDriver.Join", s.join))
	mux.Handle("/NetworkDriver.Leave", method(s, "NetworkDriver.Leave", s.leave))
	mux.Handle("/NetworkDriver.ProgramExternalConnectivity", method(s, "NetworkDriver.ProgramExternalConnectivity", s.programExternalConnectivity))
	mux.Handle("/NetworkDriver.RevokeExternalConnectivity", method(s, "NetworkDriver.RevokeExternalConnectivity", s.revokeExternalConnectivity))
	// Swarm managers ask a global-scope driver (the managed plugin) for a
	// network's swarm-level state.
	mux.Handle("/NetworkDriver.AllocateNetwork", method(s, "NetworkDriver.AllocateNetwork", s.allocateNetwork))
	mux.Handle("/NetworkDriver.FreeNetwork", method(s, "NetworkDriver.FreeNetwork", s.freeNetwork))
	for _, m := range []string{"DiscoverNew", "DiscoverDelete"} {
		mux.Handle("/NetworkDriver."+m, method(s, "NetworkDriver."+m, noop))
	}
}

func (s *Server) ipamRoutes(mux *http.ServeMux) {
	mux.Handle("/IpamDriver.GetCapabilities", method(s, "IpamDriver.GetCapabilities", s.ipamCapabilities))
	mux.Handle("/IpamDriver.GetDefaultAddressSpaces", method(s, "IpamDriver.GetDefaultAddressSpaces", s.addressSpaces))
	mux.Handle("/IpamDriver.RequestPool", method(s, "IpamDriver.RequestPool", s.requestPool))
	mux.Handle("/IpamDriver.ReleasePool", method(s, "IpamDriver.ReleasePool", s.releasePool))
	mux.Handle("/IpamDriver.RequestAddress", method(s, "IpamDriver.RequestAddress", s.requestAddress))
	mux.Handle("/IpamDriver.ReleaseAddress", method(s, "IpamDriver.ReleaseAddress", s.releaseAddress))
}

// noop answers calls that need nothing from this driver (discovery).
func noop(context.Context, *json.RawMessage) (empty, error) { return empty{}, nil }

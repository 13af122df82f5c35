package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/nft"
)

// Defaults for the node.
const (
	DefaultCapacity = 4096
	DefaultInterval = 10 * time.Second
	// DefaultSocket is where the node serves flows (a host mount of the
	// node container).
	DefaultSocket = "/var/run/calico/flows.sock"
)

// Collector reads flow log packets into a Ring.
type Collector struct {
	Ring *Ring
	// Endpoints names the endpoints of every host in records (nil: only
	// this host's, by ID). Set before the first SetDesired.
	Endpoints *Directory
	mu        sync.Mutex
	res       *Resolver
	now       func() time.Time
}

// NewCollector makes a collector with a ring of the default size.
func NewCollector() *Collector {
	return &Collector{Ring: NewRing(DefaultCapacity, DefaultInterval), res: NewResolver(nil, "", nil), now: time.Now}
}

// SetDesired tells the collector what the node programmed.
func (c *Collector) SetDesired(d *dataplane.Desired, host string) {
	r := NewResolver(d, host, c.Endpoints)
	c.mu.Lock()
	c.res = r
	c.mu.Unlock()
}

// Add attributes one log packet and counts it.
func (c *Collector) Add(p LogPacket) {
	c.mu.Lock()
	r := c.res
	c.mu.Unlock()
	if rec, ok := r.Record(p); ok {
		c.Ring.Add(rec, c.now())
	}
}

// Run reads NFLOG group nft.FlowLogGroup in the namespace at nsPath until
// ctx is done.
func (c *Collector) Run(ctx context.Context, nsPath string) error {
	n, err := OpenNFLOG(nsPath, nft.FlowLogGroup)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Read(ctx, c.Add)
}

// Reply is what the flows API answers.
type Reply struct {
	Host    string   `json:"host"`
	Seq     uint64   `json:"seq"`
	Records []Record `json:"records"`
}

// Handler serves GET /flows?since=N.
func Handler(host func() string, ring *Ring) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /flows", func(w http.ResponseWriter, r *http.Request) {
		var since uint64
		if s := r.URL.Query().Get("since"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				http.Error(w, "since: want a number", http.StatusBadRequest)
				return
			}
			since = v
		}
		recs := ring.Since(since)
		rep := Reply{Host: host(), Seq: since, Records: recs}
		for _, x := range recs {
			rep.Seq = max(rep.Seq, x.Seq)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
	return mux
}

// Serve listens on the unix socket path (mode 0660, group docker when it
// exists, so members of docker may ask as they may run containers) until
// ctx is done.
func Serve(ctx context.Context, path string, h http.Handler) error {
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return fmt.Errorf("flows socket directory: %w", err)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if g, err := user.LookupGroup("docker"); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			_ = os.Chown(path, 0, gid)
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
		_ = os.Remove(path)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if i == 0 {
				return "/"
			}
			return p[:i]
		}
	}
	return "."
}

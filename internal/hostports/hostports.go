// Package hostports holds the host's side of published ports (`docker run
// -p`): one listening socket per published host port, owned by the
// workload endpoint that published it.
//
// The socket does two jobs, the ones docker-proxy does for Docker's bridge:
//
//   - It reserves the port. A port another process already holds cannot be
//     published (the bind fails, and the plugin refuses the container with
//     the port named), and no process can take a published port later.
//   - It serves loopback. Traffic to 127.0.0.1:PORT or [::1]:PORT cannot be
//     forwarded to a workload by DNAT (it would need route_localnet, which
//     exposes every loopback service to the network), so TCP connections
//     that arrive on a loopback address are proxied to the workload. Any
//     other connection that reaches the socket arrived before the DNAT
//     rules were in place; it is closed, never proxied, because a proxied
//     connection carries the host's address and would escape the
//     workload's ingress policy.
//
// Traffic from other hosts, from workloads and from the host to its own
// non-loopback addresses never reaches these sockets: the nft DNAT rules
// (dataplane/nft) take it to the workload first, with the client's address.
// UDP ports are reserved but not proxied on loopback.
package hostports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Binding is one published port as the host sees it.
type Binding struct {
	// Proto is "tcp" or "udp".
	Proto string
	// HostIP is the address to bind; the zero Addr binds every address of
	// Family.
	HostIP netip.Addr
	// Family is 4 or 6 (the family of HostIP when it is set).
	Family   int
	HostPort uint16
	// Target is where loopback TCP connections are proxied to.
	Target netip.AddrPort
}

func (b Binding) network() string {
	return b.Proto + strconv.Itoa(b.Family)
}

func (b Binding) addr() string {
	ip := "0.0.0.0"
	if b.Family == 6 {
		ip = "::"
	}
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(b.HostPort)))
}

// String names the binding the way Docker does ("0.0.0.0:8080/tcp").
func (b Binding) String() string { return b.addr() + "/" + b.Proto }

// ErrInUse is returned (wrapped) when the port is held by someone else.
var ErrInUse = errors.New("port is already allocated")

// Holder holds the sockets. Its methods are safe for concurrent use.
type Holder struct {
	log *slog.Logger
	mu  sync.Mutex
	// by owner (endpoint name), then by binding address.
	owners map[string]map[string]*held
}

type held struct {
	b     Binding
	ln    net.Listener
	pc    net.PacketConn
	owner string
}

// New returns an empty Holder.
func New(log *slog.Logger) *Holder {
	if log == nil {
		log = slog.Default()
	}
	return &Holder{log: log, owners: map[string]map[string]*held{}}
}

// Reserve binds b for owner. Reserving what owner already holds is
// success; a port held by another owner or another process is an error
// wrapping ErrInUse.
func (h *Holder) Reserve(owner string, b Binding) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := b.String()
	if x := h.owners[owner][key]; x != nil {
		x.b.Target = b.Target
		return nil
	}
	for o, m := range h.owners {
		if o == owner {
			continue
		}
		for _, x := range m {
			if Overlaps(x.b, b) {
				return fmt.Errorf("bind for %s failed: %w (published by %s)", b, ErrInUse, o)
			}
		}
	}
	x := &held{b: b, owner: owner}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// Like docker-proxy: reuse a port in TIME_WAIT, and never share it.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var err error
	switch b.Proto {
	case "tcp":
		x.ln, err = lc.Listen(context.Background(), b.network(), b.addr())
	case "udp":
		x.pc, err = lc.ListenPacket(context.Background(), b.network(), b.addr())
	default:
		return fmt.Errorf("published port %s: protocol must be tcp or udp", b)
	}
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("bind for %s failed: %w (another process on the host listens on it)", b, ErrInUse)
		}
		return fmt.Errorf("bind for %s failed: %w", b, err)
	}
	if h.owners[owner] == nil {
		h.owners[owner] = map[string]*held{}
	}
	h.owners[owner][key] = x
	if x.ln != nil {
		go h.serve(x)
	}
	return nil
}

// Overlaps reports whether two bindings claim the same port: same protocol
// and port, and host addresses that are equal or a wildcard of the family.
func Overlaps(a, b Binding) bool {
	if a.Proto != b.Proto || a.HostPort != b.HostPort || a.Family != b.Family {
		return false
	}
	return !a.HostIP.IsValid() || !b.HostIP.IsValid() || a.HostIP == b.HostIP
}

// Release closes every socket of owner; releasing nothing is success.
func (h *Holder) Release(owner string) {
	h.mu.Lock()
	m := h.owners[owner]
	delete(h.owners, owner)
	h.mu.Unlock()
	for _, x := range m {
		x.close()
	}
}

// Set makes owner hold exactly bs: new ones are bound, missing ones closed.
// On an error the bindings bound by this call are closed again.
func (h *Holder) Set(owner string, bs []Binding) error {
	want := map[string]bool{}
	var added []string
	h.mu.Lock()
	have := map[string]bool{}
	for k := range h.owners[owner] {
		have[k] = true
	}
	h.mu.Unlock()
	for _, b := range bs {
		want[b.String()] = true
		if err := h.Reserve(owner, b); err != nil {
			h.drop(owner, added)
			return err
		}
		if !have[b.String()] {
			added = append(added, b.String())
		}
	}
	var gone []string
	for k := range have {
		if !want[k] {
			gone = append(gone, k)
		}
	}
	h.drop(owner, gone)
	return nil
}

func (h *Holder) drop(owner string, keys []string) {
	h.mu.Lock()
	var xs []*held
	for _, k := range keys {
		if x := h.owners[owner][k]; x != nil {
			xs = append(xs, x)
			delete(h.owners[owner], k)
		}
	}
	if len(h.owners[owner]) == 0 {
		delete(h.owners, owner)
	}
	h.mu.Unlock()
	for _, x := range xs {
		x.close()
	}
}

// Held lists the bindings of owner (for tests and status).
func (h *Holder) Held(owner string) []Binding {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Binding
	for _, x := range h.owners[owner] {
		out = append(out, x.b)
	}
	return out
}

// Close releases everything.
func (h *Holder) Close() {
	h.mu.Lock()
	owners := h.owners
	h.owners = map[string]map[string]*held{}
	h.mu.Unlock()
	for _, m := range owners {
		for _, x := range m {
			x.close()
		}
	}
}

func (x *held) close() {
	if x.ln != nil {
		_ = x.ln.Close()
	}
	if x.pc != nil {
		_ = x.pc.Close()
	}
}

// serve proxies loopback TCP connections to the target and closes others.
func (h *Holder) serve(x *held) {
	for {
		c, err := x.ln.Accept()
		if err != nil {
			return
		}
		local, _ := netip.ParseAddrPort(c.LocalAddr().String())
		if !local.Addr().Unmap().IsLoopback() {
			h.log.Debug("closing a non-loopback connection to a published port (its DNAT is not in place yet)",
				"port", x.b.String(), "from", c.RemoteAddr().String())
			_ = c.Close()
			continue
		}
		h.mu.Lock()
		target := x.b.Target
		h.mu.Unlock()
		go proxy(c, target)
	}
}

func proxy(c net.Conn, target netip.AddrPort) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", target.String(), 10*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
}

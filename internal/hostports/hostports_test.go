package hostports

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"testing"
)

// TestReserveAndProxy uses loopback only: a reserved port is refused to
// another owner and to another process, loopback TCP connections are
// proxied to the target, and Release frees the port.
func TestReserveAndProxy(t *testing.T) {
	target, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello from the workload\n"))
			c.Close()
		}
	}()
	h := New(nil)
	defer h.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	b := Binding{Proto: "tcp", HostIP: lo, Family: 4, Target: netip.MustParseAddrPort(target.Addr().String())}
	// Find a free port by letting the kernel choose, then reserve it.
	probe, _ := net.Listen("tcp4", "127.0.0.1:0")
	b.HostPort = uint16(probe.Addr().(*net.TCPAddr).Port)
	probe.Close()
	if err := h.Reserve("a", b); err != nil {
		t.Fatal(err)
	}
	if err := h.Reserve("a", b); err != nil {
		t.Fatalf("reserving again for the same owner: %v", err)
	}
	if err := h.Reserve("b", b); !errors.Is(err, ErrInUse) {
		t.Fatalf("another owner: %v", err)
	}
	if _, err := net.Listen("tcp4", b.addr()); err == nil {
		t.Fatal("another process could bind a reserved port")
	}
	c, err := net.Dial("tcp4", b.addr())
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || line != "hello from the workload\n" {
		t.Fatalf("proxied reply %q %v", line, err)
	}
	u := Binding{Proto: "udp", HostIP: lo, Family: 4, HostPort: b.HostPort}
	if err := h.Set("a", []Binding{u}); err != nil {
		t.Fatal(err)
	}
	if len(h.Held("a")) != 1 {
		t.Fatalf("held %v", h.Held("a"))
	}
	if l, err := net.Listen("tcp4", b.addr()); err != nil {
		t.Fatalf("the TCP port was not released by Set: %v", err)
	} else {
		l.Close()
	}
	h.Release("a")
	if pc, err := net.ListenPacket("udp4", u.addr()); err != nil {
		t.Fatalf("released UDP port still held: %v", err)
	} else {
		pc.Close()
	}
}

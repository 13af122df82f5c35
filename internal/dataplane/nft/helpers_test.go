package nft

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// The test binary doubles as a tiny traffic tool run inside namespaces
// (`ip netns exec NS <test binary>` with helperEnv set), so tests need no
// nc/socat and can bind source addresses and report what a server saw.
const helperEnv = "NFT_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func runHelper(mode string, args []string) int {
	var err error
	switch mode {
	case "serve":
		err = helperServe(args)
	case "dial":
		err = helperDial(args)
	case "session":
		err = helperSession(args)
	case "blast":
		err = helperBlast(args)
	case "sink":
		err = helperSink(args)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperServe listens on "tcp:PORT" / "udp:PORT" (all addresses, both
// families). A TCP client first gets "peer <its address>", then its lines
// echoed; a UDP datagram gets "peer <address> <payload>" back.
func helperServe(specs []string) error {
	for _, s := range specs {
		proto, port, _ := strings.Cut(s, ":")
		switch proto {
		case "tcp":
			l, err := net.Listen("tcp", ":"+port)
			if err != nil {
				return err
			}
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						ap := netip.MustParseAddrPort(c.RemoteAddr().String())
						fmt.Fprintf(c, "peer %s\n", ap.Addr().Unmap())
						sc := bufio.NewScanner(c)
						for sc.Scan() {
							fmt.Fprintf(c, "%s\n", sc.Text())
						}
					}()
				}
			}()
		case "udp":
			pc, err := net.ListenPacket("udp", ":"+port)
			if err != nil {
				return err
			}
			go func() {
				buf := make([]byte, 2048)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					ap := netip.MustParseAddrPort(from.String())
					_, _ = pc.WriteTo([]byte(fmt.Sprintf("peer %s %s", ap.Addr().Unmap(), buf[:n])), from)
				}
			}()
		default:
			return fmt.Errorf("bad serve spec %q", s)
		}
	}
	fmt.Println("ready")
	select {}
}

// helperDial: PROTO ADDR:PORT TIMEOUT_MS [SRC]. Prints "peer <address the
// server saw>" and exits 0 once a round trip worked.
func helperDial(args []string) error {
	if len(args) < 3 {
		return errors.New("dial PROTO ADDR:PORT TIMEOUT_MS [SRC]")
	}
	ms, _ := strconv.Atoi(args[2])
	timeout := time.Duration(ms) * time.Millisecond
	d := net.Dialer{Timeout: timeout}
	if len(args) > 3 {
		src := netip.MustParseAddr(args[3])
		if args[0] == "tcp" {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		} else {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
	}
	c, err := d.Dial(args[0], args[1])
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	if args[0] == "udp" {
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		peer, _, _ := strings.Cut(strings.TrimPrefix(string(buf[:n]), "peer "), " ")
		fmt.Println("peer " + peer)
		return nil
	}
	first, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	echo, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if echo != "ping\n" {
		return fmt.Errorf("bad echo %q", echo)
	}
	fmt.Print(first)
	return nil
}

// helperSession: ADDR:PORT. Connects once, then relays stdin lines to the
// server and prints each echo, so a test can use one TCP connection over
// time (e.g. across a driver restart).
func helperSession(args []string) error {
	c, err := net.DialTimeout("tcp", args[0], 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	first, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Print(first)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if _, err := fmt.Fprintf(c, "%s\n", in.Text()); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			fmt.Println("error " + err.Error())
			continue
		}
		fmt.Print(line)
	}
	return nil
}

// helperBlast: ADDR:PORT DURATION_MS SIZE. Sends UDP datagrams as fast as
// it can; nothing answers, so conntrack keeps the flow "new" and every
// packet is judged by the whole ruleset.
func helperBlast(args []string) error {
	ms, _ := strconv.Atoi(args[1])
	size, _ := strconv.Atoi(args[2])
	c, err := net.Dial("udp", args[0])
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, size)
	end := time.Now().Add(time.Duration(ms) * time.Millisecond)
	n := 0
	for time.Now().Before(end) {
		for i := 0; i < 64; i++ {
			if _, err := c.Write(buf); err == nil {
				n++
			}
		}
	}
	fmt.Println(n)
	return nil
}

// helperSink: PORT DURATION_MS. Counts the UDP datagrams received from its
// first one for DURATION_MS and prints "packets seconds".
func helperSink(args []string) error {
	ms, _ := strconv.Atoi(args[1])
	pc, err := net.ListenPacket("udp", ":"+args[0])
	if err != nil {
		return err
	}
	defer pc.Close()
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(8 << 20)
	}
	fmt.Println("ready")
	buf := make([]byte, 65536)
	if _, _, err := pc.ReadFrom(buf); err != nil {
		return err
	}
	start := time.Now()
	end := start.Add(time.Duration(ms) * time.Millisecond)
	_ = pc.SetReadDeadline(end)
	n := 0
	for {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			break
		}
		n++
	}
	fmt.Println(n, time.Since(start).Seconds())
	return nil
}

func helperCmd(t testing.TB, ns testutil.NetNS, mode string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, exe}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

// serve starts a server in ns and waits until it listens; it is killed at
// cleanup.
func serve(t testing.TB, ns testutil.NetNS, specs ...string) {
	t.Helper()
	cmd := helperCmd(t, ns, "serve", specs...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("server in %s did not start: %q %v", ns.Name, line, err)
	}
}

const (
	allowTimeout = 3 * time.Second
	// A denied attempt is a dropped packet: the client waits this long.
	denyTimeout = 500 * time.Millisecond
)

// dial tries one round trip from ns; it returns the source address the
// server saw.
func dial(t testing.TB, ns testutil.NetNS, proto string, dst netip.AddrPort, timeout time.Duration, src ...netip.Addr) (string, error) {
	t.Helper()
	args := []string{proto, dst.String(), strconv.Itoa(int(timeout / time.Millisecond))}
	if len(src) > 0 {
		args = append(args, src[0].String())
	}
	out, err := helperCmd(t, ns, "dial", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s from %s: %w: %s", proto, dst, ns.Name, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "peer "), nil
}

func mustReach(t testing.TB, ns testutil.NetNS, proto string, dst netip.AddrPort, src ...netip.Addr) string {
	t.Helper()
	peer, err := dial(t, ns, proto, dst, allowTimeout, src...)
	if err != nil {
		t.Fatalf("expected %s to %s to be allowed: %v", proto, dst, err)
	}
	return peer
}

func mustNotReach(t testing.TB, ns testutil.NetNS, proto string, dst netip.AddrPort, src ...netip.Addr) {
	t.Helper()
	if _, err := dial(t, ns, proto, dst, denyTimeout, src...); err == nil {
		t.Fatalf("expected %s from %s to %s to be dropped, but it got through", proto, ns.Name, dst)
	}
}

func pingOK(ns testutil.NetNS, dst netip.Addr) bool {
	_, err := ns.Exec("busybox", "ping", "-c", "1", "-W", "1", dst.String())
	return err == nil
}

// topo is a host namespace wired the way Calico wires a host: forwarding
// on, an uplink to an "outside" namespace (default route), and workload
// namespaces on veths whose host ends are cali* with MAC ee:ee:ee:ee:ee:ee,
// proxy ARP and /32 (/128) routes.
type topo struct {
	host, outside testutil.NetNS
	hostAddr      netip.Addr // host's address on the uplink
	hostAddr6     netip.Addr
	outsideAddr   netip.Addr
	outsideAddr6  netip.Addr
	drv           *Driver
}

type workload struct {
	name   string
	ns     testutil.NetNS
	iface  string
	v4, v6 netip.Addr
}

func newTopo(t testing.TB) *topo {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "ip", "nft", "busybox", "sysctl")
	tp := &topo{
		host:         testutil.NewNetNS(t, "nft-h"),
		outside:      testutil.NewNetNS(t, "nft-o"),
		hostAddr:     netip.MustParseAddr("192.0.2.1"),
		outsideAddr:  netip.MustParseAddr("192.0.2.2"),
		hostAddr6:    netip.MustParseAddr("2001:db8:ff::1"),
		outsideAddr6: netip.MustParseAddr("2001:db8:ff::2"),
	}
	h, o := tp.host, tp.outside
	h.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	h.MustExec(t, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", o.Name)
	h.MustExec(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
	h.MustExec(t, "ip", "addr", "add", "2001:db8:ff::1/64", "dev", "up0", "nodad")
	h.MustExec(t, "ip", "link", "set", "up0", "up")
	o.MustExec(t, "ip", "addr", "add", "192.0.2.2/24", "dev", "eth0")
	o.MustExec(t, "ip", "addr", "add", "2001:db8:ff::2/64", "dev", "eth0", "nodad")
	o.MustExec(t, "ip", "link", "set", "eth0", "up")
	h.MustExec(t, "ip", "route", "add", "default", "via", "192.0.2.2")
	h.MustExec(t, "ip", "-6", "route", "add", "default", "via", "2001:db8:ff::2")
	drv, err := New(Options{NetNS: h.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	tp.drv = drv
	return tp
}

// addWorkload creates a workload namespace behind host interface iface
// with addresses 10.65.0.<n>/32 and fd00:65::<n>/128.
func (tp *topo) addWorkload(t testing.TB, iface string, n int) *workload {
	t.Helper()
	w := &workload{
		name:  iface,
		ns:    testutil.NewNetNS(t, "nft-w"),
		iface: iface,
		v4:    netip.MustParseAddr(fmt.Sprintf("10.65.0.%d", n)),
		v6:    netip.MustParseAddr(fmt.Sprintf("fd00:65::%x", n)),
	}
	testutil.PlumbWorkload(t, tp.host, w.ns, iface, w.v4, w.v6)
	return w
}

func (w *workload) ep(profiles ...string) dataplane.Endpoint {
	return dataplane.Endpoint{
		ID: "test/" + w.name, Iface: w.iface,
		Addrs:    []netip.Prefix{netip.PrefixFrom(w.v4, 32), netip.PrefixFrom(w.v6, 128)},
		Profiles: profiles,
	}
}

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func (tp *topo) apply(t testing.TB, d *dataplane.Desired) ApplyStats {
	t.Helper()
	slices.SortFunc(d.Endpoints, func(a, b dataplane.Endpoint) int { return strings.Compare(a.Iface, b.Iface) })
	slices.SortFunc(d.Chains, func(a, b dataplane.PolicyChain) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(d.Sets, func(a, b dataplane.IPSet) int { return strings.Compare(a.ID, b.ID) })
	tp.drv.SetDesired(d)
	st, err := tp.drv.Apply(context.Background())
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return st
}

// session is one long-lived TCP connection driven line by line.
type session struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	peer  string
}

func openSession(t *testing.T, ns testutil.NetNS, dst netip.AddrPort) *session {
	t.Helper()
	cmd := helperCmd(t, ns, "session", dst.String())
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &session{cmd: cmd, in: in, lines: make(chan string, 16)}
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	s.peer = s.read(t)
	if !strings.HasPrefix(s.peer, "peer ") {
		t.Fatalf("session to %s: %q", dst, s.peer)
	}
	return s
}

func (s *session) read(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatal("session ended")
		}
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("session: no answer")
	}
	return ""
}

// roundTrip sends msg over the session and reports whether it came back.
func (s *session) roundTrip(t *testing.T, msg string) bool {
	t.Helper()
	if _, err := fmt.Fprintln(s.in, msg); err != nil {
		t.Fatal(err)
	}
	return s.read(t) == msg
}

// nftList lists our table with rule counters' values left out (they
// count traffic, which is not what the listings compare).
func nftList(t testing.TB, ns testutil.NetNS) string {
	t.Helper()
	return counterValues.ReplaceAllString(ns.MustExec(t, "nft", "list", "table", "inet", tableName), "counter")
}

var counterValues = regexp.MustCompile(`counter packets \d+ bytes \d+`)

package labtest

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/nsexec"
)

// Outside is a machine on the lab's fabric that is not a lab host (an
// office network, an attacker): a network namespace attached to the first
// subnet's bridge, with addresses of its own, for tests of what the hosts
// let in from outside the cluster. Its namespace is named after the lab
// ("calab-<lab>-out"), so `lab down` removes it too; the test's cleanup
// removes it first.
type Outside struct {
	l     *Lab
	NetNS string
	// Addrs are its addresses on the fabric, in the order asked for.
	Addrs []string
}

// AddOutside attaches an outside namespace with n addresses (10.99.1.201,
// 10.99.1.202, ...; lab hosts use the low addresses and the gateway .254)
// to the fabric's first subnet, its default route via the fabric gateway.
func (l *Lab) AddOutside(n int) *Outside {
	l.T.Helper()
	if n < 1 || n > 50 {
		l.T.Fatalf("AddOutside(%d): want 1 to 50 addresses", n)
	}
	o := &Outside{l: l, NetNS: "calab-" + l.St.Name + "-out"}
	fab := l.St.Fabric.NetNS
	if len(l.St.Fabric.Bridges) == 0 {
		l.T.Fatal("AddOutside: the lab has no fabric bridge")
	}
	br := l.St.Fabric.Bridges[0].Name
	run := func(args ...string) {
		l.T.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			l.T.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", o.NetNS)
	l.T.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", o.NetNS).CombinedOutput(); err != nil {
			l.T.Errorf("remove the outside namespace: %v: %s", err, out)
		}
	})
	run("-n", fab, "link", "add", "out0", "type", "veth", "peer", "name", "eth0", "netns", o.NetNS)
	run("-n", fab, "link", "set", "out0", "master", br, "up")
	run("-n", o.NetNS, "link", "set", "lo", "up")
	run("-n", o.NetNS, "link", "set", "eth0", "up")
	for i := range n {
		a := fmt.Sprintf("10.99.1.%d", 201+i)
		run("-n", o.NetNS, "addr", "add", a+"/24", "dev", "eth0")
		o.Addrs = append(o.Addrs, a)
	}
	run("-n", o.NetNS, "route", "add", "default", "via", "10.99.1.254")
	return o
}

// Route sends traffic for dst (an address or prefix) to a lab host, as an
// outside router that knows the cluster's addresses would.
func (o *Outside) Route(dst, via string) {
	o.l.T.Helper()
	if out, err := exec.Command("ip", "-n", o.NetNS, "route", "replace", dst, "via", via).CombinedOutput(); err != nil {
		o.l.T.Fatalf("route %s via %s in the outside namespace: %v: %s", dst, via, err, out)
	}
}

// Connects reports whether a TCP connection from the outside address src
// to ip:port is accepted within two seconds.
func (o *Outside) Connects(src, ip string, port int) bool {
	o.l.T.Helper()
	var c net.Conn
	err := nsexec.Do("/run/netns/"+o.NetNS, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		var err error
		c, err = d.Dial("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
		return err
	})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

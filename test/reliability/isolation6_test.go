package reliability

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/nsexec"
)

// IPv6: a container with NET_ADMIN cannot send from another container's
// IPv6 address or a made-up one, cannot take over another container's
// address by answering neighbour discovery for it, cannot reach another
// network's containers, and cannot reach its host's own services. Every
// "refused" is measured where it would land (the victim's ICMPv6 echo
// counter, the host's listener), not by the attacker's ping failing, which
// it would anyway when the replies go to the real owner.
func testIsolation6(t *testing.T, l *Lab) {
	for _, n := range []string{"net6", "other6"} {
		l.Docker("host1", "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "--ipv6", n)
	}
	l.RunWith("host1", "v6a", "net6")
	l.RunWith("host1", "v6b", "net6")
	l.RunWith("host1", "v6o", "other6")
	l.RunWith("host1", "evil6", "net6", "--cap-add", "NET_ADMIN")
	defer l.Docker("host1", "rm", "-f", "v6a", "v6b", "v6o", "evil6")
	va, vb, vo, ve := l.IP6("host1", "v6a"), l.IP6("host1", "v6b"), l.IP6("host1", "v6o"), l.IP6("host1", "evil6")

	// The measure works: evil's own pings reach v6b and are counted there.
	l.EventuallyReach("host1", "evil6", vb, 30*time.Second)
	if n := l.echoesFrom("host1", "evil6", ve, vb, "host1", "v6b"); n == 0 {
		t.Fatalf("v6b counted none of evil's pings from its own address %s: the measure is broken", ve)
	}
	tried := 0
	// Spoofed source: another container's address, then a made-up one.
	for _, src := range []string{va, nextAddr(t, vb, 37)} {
		addAddrNoDAD(t, l.containerNetNS("host1", "evil6"), src)
		tried++
		if n := l.echoesFrom("host1", "evil6", src, vb, "host1", "v6b"); n > 0 {
			t.Fatalf("%d pings from evil with source %s reached v6b", n, src)
		}
	}
	// Neighbour discovery: evil now holds v6a's address (its kernel
	// answers solicitations for it) and announces it with unsolicited,
	// overriding neighbour advertisements. The host still routes v6a's
	// address to v6a: pings to it are answered by v6a, none reach evil.
	evilMAC := strings.TrimSpace(l.Docker("host1", "exec", "evil6", "cat", "/sys/class/net/eth0/address"))
	tried++
	sendNA(t, l.containerNetNS("host1", "evil6"), va, evilMAC)
	if out := l.MustExec("host1", "ip", "-6", "route", "get", va); !strings.Contains(out, calicoIface(l, "host1", "v6a")) {
		t.Fatalf("host1 routes v6a's address %s elsewhere after evil's advertisements: %s", va, out)
	}
	evilBefore := l.icmpEchoes("host1", "evil6", true)
	if n := l.echoesFrom("host1", "v6b", vb, va, "host1", "v6a"); n == 0 {
		t.Fatalf("v6a no longer gets pings to its address %s after evil's advertisements", va)
	}
	if n := l.icmpEchoes("host1", "evil6", true) - evilBefore; n > 0 {
		t.Fatalf("evil received %d pings meant for v6a (%s)", n, va)
	}
	// Another network's container.
	tried++
	if l.CanPing("host1", "v6a", vo) || l.CanPing("host1", "v6o", va) {
		t.Fatalf("containers on different networks reach each other over IPv6 (v6a %s, v6o %s)", va, vo)
	}
	// The host's own services on IPv6: its fabric address, and the
	// link-local gateway address of the container's veth (which the host
	// owns).
	h6 := l.host("host1").Addr6()
	ln := listenIn(t, l.host("host1").NetNS, "[::]:7777")
	defer ln.Close()
	if c, err := dialIn(l.host("host1").NetNS, net.JoinHostPort(h6, "7777")); err != nil {
		t.Fatalf("the host's own IPv6 service is not up: %v", err)
	} else {
		c.Close()
	}
	for _, dst := range []string{h6, "fe80::ecee:eeff:feee:eeee%eth0"} {
		tried++
		if l.TCPConnects("host1", "v6a", dst, 7777) {
			t.Fatalf("v6a reached its host's service at [%s]:7777 with no policy allowing it", dst)
		}
	}
	report(t, record{"isolation (IPv6)", "a container with NET_ADMIN: another container's IPv6 source, a made-up source, unsolicited neighbour advertisements (override) for another container's address it also configured, a container on another network, TCP services on its host's IPv6 and link-local gateway addresses",
		"all refused, measured at the receiver; the victim kept its address, route and traffic", "nothing", fmt.Sprintf("%d attacks, 0 got through", tried),
		"go test -run 'TestReliability/isolation6' ./test/reliability/"})
}

// IP6 is a container's global IPv6 address.
func (l *Lab) IP6(host, name string) string {
	l.T.Helper()
	ip := strings.TrimSpace(l.Docker(host, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", name))
	if ip == "" {
		l.T.Fatalf("%s on %s has no IPv6 address", name, host)
	}
	return ip
}

// echoesFrom pings dst from container (on host) with source src and
// returns how many of the pings dst's container (victim on vhost) counted
// as received.
func (l *Lab) echoesFrom(host, container, src, dst, vhost, victim string) int {
	l.T.Helper()
	v6 := strings.Contains(dst, ":")
	before := l.icmpEchoes(vhost, victim, v6)
	_, _ = l.Exec(host, "docker", "exec", container, "ping", "-c3", "-W1", "-I", src, dst)
	return l.icmpEchoes(vhost, victim, v6) - before
}

// icmpEchoes is the number of ICMP (v6: ICMPv6) echo requests container's
// kernel has received.
func (l *Lab) icmpEchoes(host, container string, v6 bool) int {
	l.T.Helper()
	if v6 {
		out := l.Docker(host, "exec", container, "cat", "/proc/net/snmp6")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "Icmp6InEchos" {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
		l.T.Fatalf("no Icmp6InEchos in %s's /proc/net/snmp6", container)
	}
	// /proc/net/snmp: an "Icmp:" line of names, then one of values.
	var names []string
	for _, line := range strings.Split(l.Docker(host, "exec", container, "cat", "/proc/net/snmp"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Icmp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "InEchos" && i < len(f) {
				n, _ := strconv.Atoi(f[i])
				return n
			}
		}
	}
	l.T.Fatalf("no Icmp InEchos in %s's /proc/net/snmp", container)
	return 0
}

// containerNetNS is the path of a container's network namespace (its
// dockerd runs in this machine's PID namespace).
func (l *Lab) containerNetNS(host, container string) string {
	l.T.Helper()
	pid := strings.TrimSpace(l.Docker(host, "inspect", "-f", "{{.State.Pid}}", container))
	return "/proc/" + pid + "/ns/net"
}

// sendNA sends, from eth0 in the namespace at nsPath, three unsolicited
// neighbour advertisements (RFC 4861 4.4, override flag set) to all nodes,
// claiming target is at mac.
func sendNA(t *testing.T, nsPath, target, mac string) {
	t.Helper()
	tgt, err := netip.ParseAddr(target)
	if err != nil {
		t.Fatal(err)
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	// type 136, code 0, checksum (the kernel fills it in), flags O, the
	// target, option 2 (target link-layer address, 8 bytes).
	msg := []byte{136, 0, 0, 0, 0x20, 0, 0, 0}
	msg = append(msg, tgt.AsSlice()...)
	msg = append(msg, 2, 1)
	msg = append(msg, hw...)
	err = nsexec.Do(nsPath, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6)
		if err != nil {
			return fmt.Errorf("raw icmpv6 socket: %w", err)
		}
		defer unix.Close(fd)
		// Neighbour discovery is accepted only with hop limit 255.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index); err != nil {
			return err
		}
		to := &unix.SockaddrInet6{Addr: netip.MustParseAddr("ff02::1").As16(), ZoneId: uint32(ifi.Index)}
		for i := 0; i < 3; i++ {
			if err := unix.Sendto(fd, msg, 0, to); err != nil {
				return fmt.Errorf("send neighbour advertisement: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("neighbour advertisements from %s: %v", nsPath, err)
	}
}

// addAddrNoDAD adds ip/128 to eth0 in the namespace at nsPath without
// duplicate address detection (busybox ip has no "nodad"), as an attacker
// with NET_ADMIN in that namespace can: the address is usable at once.
func addAddrNoDAD(t *testing.T, nsPath, ip string) {
	t.Helper()
	err := nsexec.Do(nsPath, func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		a, err := netlink.ParseAddr(ip + "/128")
		if err != nil {
			return err
		}
		a.Flags = unix.IFA_F_NODAD
		return netlink.AddrAdd(link, a)
	})
	if err != nil {
		t.Fatalf("add %s in %s: %v", ip, nsPath, err)
	}
}

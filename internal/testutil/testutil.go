package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// UnitOnly reports whether only unprivileged tests are wanted
// (CALICO_UNIT=1, as `make test-unit` sets): then root-only tests skip even
// when run as root, so the unit tier behaves the same for every user.
func UnitOnly() bool { return os.Getenv("CALICO_UNIT") == "1" }

// RequireRoot skips the test unless it runs as root, and skips it in the
// unit tier (UnitOnly) too.
func RequireRoot(t testing.TB) {
	t.Helper()
	if UnitOnly() {
		t.Skip("skipped: needs root (netns/nftables/routes) and CALICO_UNIT=1 asks for unprivileged tests only")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (netns/nftables/routes); `make test` runs it as root")
	}
}

// RequireCmd skips the test if a command is missing.
func RequireCmd(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("skipped: %s not installed (hack/deps.sh installs it)", n)
		}
	}
}

// RandSuffix returns n random hex characters.
func RandSuffix(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// NetNS is a named network namespace created with `ip netns add`.
type NetNS struct {
	Name string
}

// Path is the bind-mounted namespace file.
func (n NetNS) Path() string { return "/run/netns/" + n.Name }

// Exec runs a command inside the namespace and returns combined output.
func (n NetNS) Exec(args ...string) (string, error) {
	full := append([]string{"netns", "exec", n.Name}, args...)
	out, err := exec.Command("ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", n.Name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// MustExec runs a command inside the namespace and fails the test on error.
func (n NetNS) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// NewNetNS creates a network namespace named prefix-<random> (at most 15+ chars
// are fine for netns names) with loopback up, deleted at test cleanup.
func NewNetNS(t testing.TB, prefix string) NetNS {
	t.Helper()
	RequireRoot(t)
	name := prefix + "-" + RandSuffix(6)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ns := NetNS{Name: name}
	ns.MustExec(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command on the host and fails the test on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Eventually polls cond every interval until it returns nil or the deadline
// passes, then fails the test with the last error.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 10 * time.Millisecond
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(interval)
		if interval < 200*time.Millisecond {
			interval *= 2
		}
	}
}

// WorkloadLinkLocal is the IPv6 link-local address of a host-side workload
// interface with Calico's MAC ee:ee:ee:ee:ee:ee: the workload's IPv6 gateway.
const WorkloadLinkLocal = "fe80::ecee:eeff:feee:eeee"

// PlumbWorkload wires namespace w behind host interface iface in namespace
// host the way the node wires a container (a veth with Calico's MAC, proxy
// ARP, a /32 and a /128 route to it, 169.254.1.1 and the link-local address
// as the workload's gateways), so that tests of one dataplane part do not
// need the others. It returns once the host side's link-local address is
// usable.
func PlumbWorkload(t testing.TB, host, w NetNS, iface string, v4, v6 netip.Addr) {
	t.Helper()
	host.MustExec(t, "ip", "link", "add", iface, "type", "veth", "peer", "name", "eth0", "netns", w.Name)
	host.MustExec(t, "ip", "link", "set", iface, "address", "ee:ee:ee:ee:ee:ee")
	host.MustExec(t, "sysctl", "-qw", "net.ipv4.conf."+iface+".proxy_arp=1", "net.ipv4.neigh."+iface+".proxy_delay=0",
		"net.ipv6.conf."+iface+".accept_dad=0")
	host.MustExec(t, "ip", "link", "set", iface, "up")
	host.MustExec(t, "ip", "route", "add", v4.String()+"/32", "dev", iface, "scope", "link")
	host.MustExec(t, "ip", "-6", "route", "add", v6.String()+"/128", "dev", iface)
	w.MustExec(t, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
	w.MustExec(t, "ip", "addr", "add", v4.String()+"/32", "dev", "eth0")
	w.MustExec(t, "ip", "addr", "add", v6.String()+"/128", "dev", "eth0", "nodad")
	w.MustExec(t, "ip", "link", "set", "eth0", "up")
	w.MustExec(t, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
	w.MustExec(t, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
	w.MustExec(t, "ip", "-6", "route", "add", "default", "via", WorkloadLinkLocal, "dev", "eth0")
	// The host side's link-local address must exist before the workload
	// can use it as its IPv6 gateway.
	Eventually(t, 5*time.Second, func() error {
		out, err := host.Exec("ip", "-6", "addr", "show", "dev", iface, "scope", "link")
		if err != nil {
			return err
		}
		if !strings.Contains(out, WorkloadLinkLocal) || strings.Contains(out, "tentative") {
			return fmt.Errorf("no usable link-local address on %s yet: %s", iface, out)
		}
		return nil
	})
}

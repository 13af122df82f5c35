package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/routes"
	"github.com/calico-docker/calico/internal/testutil"
)

func TestHostIfaceName(t *testing.T) {
	cases := map[string]string{
		"0123456789abcdef0123": "cali0123456789a",
		"abc":                  "caliabc",
		"0123456789a":          "cali0123456789a",
	}
	for id, want := range cases {
		got := HostIfaceName(id)
		if got != want || len(got) > 15 {
			t.Errorf("HostIfaceName(%q) = %q, want %q", id, got, want)
		}
	}
	if HostIPv6Gateway.String() != "fe80::ecee:eeff:feee:eeee" {
		t.Errorf("the EUI-64 link-local of %s is fe80::ecee:eeff:feee:eeee, got %s", HostMAC, HostIPv6Gateway)
	}
}

type ipLink struct {
	Ifname   string   `json:"ifname"`
	Address  string   `json:"address"`
	Flags    []string `json:"flags"`
	MTU      int      `json:"mtu"`
	LinkInfo struct {
		InfoKind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func showLink(t *testing.T, ns testutil.NetNS, name string) (ipLink, bool) {
	t.Helper()
	out, err := ns.Exec("ip", "-d", "-j", "link", "show", name)
	if err != nil {
		return ipLink{}, false
	}
	var ls []ipLink
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("parse %q: %v", out, err)
	}
	return ls[0], true
}

func has(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

func TestCreateAndDeleteVeth(t *testing.T) {
	testutil.RequireRoot(t)
	host := testutil.NewNetNS(t, "wl")
	if err := CreateVeth("caliwl0", "tmpwl0", 1400, host.Path()); err != nil {
		t.Fatal(err)
	}
	h, ok := showLink(t, host, "caliwl0")
	if !ok || h.Address != HostMAC || !has(h.Flags, "UP") || h.MTU != 1400 || h.LinkInfo.InfoKind != "veth" {
		t.Fatalf("host side: %+v", h)
	}
	p, ok := showLink(t, host, "tmpwl0")
	if !ok || has(p.Flags, "UP") || p.MTU != 1400 {
		t.Fatalf("peer (left down in the host netns for Docker): %+v", p)
	}
	// The IPv6 gateway Docker is told about exists before the peer is attached.
	if out := host.MustExec(t, "ip", "-6", "addr", "show", "dev", "caliwl0"); !strings.Contains(out, "fe80::ecee:eeff:feee:eeee/64") {
		t.Fatalf("no link-local gateway: %s", out)
	}
	// Idempotent.
	if err := CreateVeth("caliwl0", "tmpwl0", 1400, host.Path()); err != nil {
		t.Fatalf("second create: %v", err)
	}
	// Another kind under the name is refused, and not deleted.
	host.MustExec(t, "ip", "link", "add", "caliwlbr", "type", "bridge")
	if err := CreateVeth("caliwlbr", "tmpwl1", 0, host.Path()); err == nil || !strings.Contains(err.Error(), "not a veth") {
		t.Fatalf("bridge accepted as veth: %v", err)
	}
	if err := DeleteVeth("caliwlbr", host.Path()); err == nil {
		t.Fatal("DeleteVeth removed a bridge")
	}
	if err := CreateVeth("this-name-is-far-too-long", "x", 0, host.Path()); err == nil {
		t.Fatal("long name accepted")
	}
	if err := DeleteVeth("caliwl0", host.Path()); err != nil {
		t.Fatal(err)
	}
	if _, ok := showLink(t, host, "tmpwl0"); ok {
		t.Fatal("peer survived")
	}
	if err := DeleteVeth("caliwl0", host.Path()); err != nil {
		t.Fatalf("delete of a missing veth: %v", err)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ping(ns testutil.NetNS, dst string) error {
	args := []string{"busybox", "ping", "-c", "1", "-W", "1"}
	if strings.Contains(dst, ":") {
		args = append(args, "-6")
	}
	_, err := ns.Exec(append(args, dst)...)
	return err
}

func TestPlumbTwoContainersAndPing(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "busybox")
	host := testutil.NewNetNS(t, "wl")
	// The host's uplink: proxy ARP answers for 169.254.1.1 only if a route covers it.
	host.MustExec(t, "ip", "link", "add", "wlup0", "type", "veth", "peer", "name", "wlup1")
	host.MustExec(t, "ip", "link", "set", "wlup0", "up")
	host.MustExec(t, "ip", "link", "set", "wlup1", "up")
	host.MustExec(t, "ip", "route", "add", "default", "dev", "wlup0")

	c1 := testutil.NewNetNS(t, "wlc")
	// The second container is addressed by PID, as `calico container add` does.
	c2 := testutil.NewNetNS(t, "wlc")
	sleeper := exec.Command("ip", "netns", "exec", c2.Name, "sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	pid := sleeper.Process.Pid
	// `ip netns exec` joins the namespace before it execs sleep: wait for that.
	testutil.Eventually(t, 5*time.Second, func() error {
		out, err := exec.Command("ip", "netns", "identify", strconv.Itoa(pid)).Output()
		if err != nil || strings.TrimSpace(string(out)) != c2.Name {
			return fmt.Errorf("pid %d not yet in %s (%q)", pid, c2.Name, out)
		}
		return nil
	})

	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	cfg1 := PlumbConfig{HostIface: HostIfaceName("aaaaaaaaaaaa1"), NetNS: c1.Path(), HostNS: host.Path(), MTU: 1480,
		Addrs: []netip.Prefix{p("10.66.0.2/32"), p("fd00:66::2/128")}}
	cfg2 := PlumbConfig{HostIface: HostIfaceName("bbbbbbbbbbbb2"), PID: pid, HostNS: host.Path(), MTU: 1480,
		Addrs: []netip.Prefix{p("10.66.0.3/26"), p("fd00:66::3/64")}} // installed as /32 and /128
	start := time.Now()
	mac1, err := Plumb(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Plumb took %v", time.Since(start))
	mac2, err := Plumb(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if mac1 == "" || mac1 == mac2 || mac1 == HostMAC {
		t.Fatalf("macs %q %q", mac1, mac2)
	}
	// Container side as Calico lays it out.
	addrs := c2.MustExec(t, "ip", "addr", "show", "dev", "eth0")
	for _, want := range []string{"10.66.0.3/32", "fd00:66::3/128", "mtu 1480", mac2} {
		if !strings.Contains(addrs, want) {
			t.Errorf("container eth0 lacks %q: %s", want, addrs)
		}
	}
	r4 := c1.MustExec(t, "ip", "-4", "route", "show")
	if !strings.Contains(r4, "default via 169.254.1.1 dev eth0") || !strings.Contains(r4, "169.254.1.1 dev eth0 scope link") {
		t.Errorf("IPv4 routes: %s", r4)
	}
	if r6 := c1.MustExec(t, "ip", "-6", "route", "show", "default"); !strings.Contains(r6, "via fe80::ecee:eeff:feee:eeee dev eth0") {
		t.Errorf("IPv6 route: %s", r6)
	}

	// Plumb again: same result, no error.
	if again, err := Plumb(cfg1); err != nil || again != mac1 {
		t.Fatalf("re-plumb: %q %v", again, err)
	}

	// The host side is programmed by the routes driver, as the agent would.
	d, err := routes.New(routes.Options{NetNS: host.Path(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ep := func(id, iface string, addrs ...string) dataplane.Endpoint {
		e := dataplane.Endpoint{ID: id, Iface: iface}
		for _, a := range addrs {
			e.Addrs = append(e.Addrs, p(a))
		}
		return e
	}
	local := func(iface string, addrs ...string) []dataplane.Route {
		var rs []dataplane.Route
		for _, a := range addrs {
			rs = append(rs, dataplane.Route{Dst: p(a), Type: dataplane.RouteLocal, Iface: iface})
		}
		return rs
	}
	d.SetDesired(&dataplane.Desired{
		Endpoints: []dataplane.Endpoint{
			ep("ns/c1", cfg1.HostIface, "10.66.0.2/32", "fd00:66::2/128"),
			ep("ns/c2", cfg2.HostIface, "10.66.0.3/32", "fd00:66::3/128"),
		},
		Routes: append(local(cfg1.HostIface, "10.66.0.2/32", "fd00:66::2/128"), local(cfg2.HostIface, "10.66.0.3/32", "fd00:66::3/128")...),
	})
	if _, err := d.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from testutil.NetNS
		to   string
	}{{c1, "10.66.0.3"}, {c2, "10.66.0.2"}, {c1, "fd00:66::3"}, {c2, "fd00:66::2"}} {
		testutil.Eventually(t, 10*time.Second, func() error { return ping(c.from, c.to) })
	}

	// Unplumb removes both sides; again is fine.
	if err := Unplumb(cfg1.HostIface, host.Path()); err != nil {
		t.Fatal(err)
	}
	if _, ok := showLink(t, c1, "eth0"); ok {
		t.Fatal("container side survived Unplumb")
	}
	if err := Unplumb(cfg1.HostIface, host.Path()); err != nil {
		t.Fatalf("second unplumb: %v", err)
	}
	// A container that already has an eth0 of its own is refused.
	c1.MustExec(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other")
	if _, err := Plumb(cfg1); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Fatalf("plumb over a foreign eth0: %v", err)
	}
}

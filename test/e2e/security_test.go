package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/nodectl"
	"github.com/calico-docker/calico/internal/nsexec"
	"github.com/calico-docker/calico/internal/testutil"
)

// listenIn opens a TCP listener on addr inside the network namespace of a
// lab host that accepts and closes every connection; it is closed at
// cleanup. It returns false when the port is already served there (the
// real etcd or BGP listener answers instead).
func (l *Lab) listenIn(host, addr string) bool {
	l.T.Helper()
	var ln net.Listener
	err := nsexec.Do("/run/netns/"+l.host(host).NetNS, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if errors.Is(err, syscall.EADDRINUSE) {
		return false
	}
	if err != nil {
		l.T.Fatalf("listen on %s in %s: %v", addr, host, err)
	}
	l.T.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return true
}

type probe struct {
	host, container, ip string
	port                int
}

// connectAll runs the probes in parallel and returns those whose outcome
// (connected or not) differs from want.
func (l *Lab) connectAll(ps []probe, want bool) []probe {
	var mu sync.Mutex
	var wrong []probe
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.TCPConnects(p.host, p.container, p.ip, p.port) != want {
				mu.Lock()
				wrong = append(wrong, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return wrong
}

// From containers on every host, the etcd client and peer, BGP, health
// and metrics ports of every host are shut, while another port of the same
// hosts is open; an explicit egress policy opens one of them.
func TestWorkloadsCannotReachControlPlane(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2, 1)
	hosts := []string{"host1", "host2"}
	// Workload to own host allowed, so that only the control-plane rule
	// stands between a container and its own host's ports.
	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  defaultEndpointToHostAction: Accept
`)
	l.Network("net", hosts...)
	containers := map[string]string{"host1": "c1", "host2": "c2"}
	for _, h := range hosts {
		l.Run(h, containers[h], "net")
	}
	// Every port listens on every host's fabric address: ours where the
	// node has no listener there, so that a failed connection means dropped.
	cpPorts := []int{2379, 2380, 179, 9099, 9091, 9096}
	const open = 8080
	for _, h := range hosts {
		for _, p := range append([]int{open}, cpPorts...) {
			if !l.listenIn(h, net.JoinHostPort(l.host(h).Addr(), strconv.Itoa(p))) {
				t.Logf("%s:%d is served by the node itself", h, p)
			}
		}
	}
	var openProbes, cpProbes, etcdProbes []probe
	for _, from := range hosts {
		for _, to := range hosts {
			ip := l.host(to).Addr()
			openProbes = append(openProbes, probe{from, containers[from], ip, open})
			for _, p := range cpPorts {
				cpProbes = append(cpProbes, probe{from, containers[from], ip, p})
			}
			etcdProbes = append(etcdProbes, probe{from, containers[from], ip, 2379})
		}
	}
	// The open port proves the path works (and that the FelixConfiguration
	// arrived) before the control-plane ports are judged.
	testutil.Eventually(t, 30*time.Second, func() error {
		if wrong := l.connectAll(openProbes, true); len(wrong) > 0 {
			return fmt.Errorf("cannot connect: %+v", wrong)
		}
		return nil
	})
	if wrong := l.connectAll(cpProbes, false); len(wrong) > 0 {
		t.Fatalf("control-plane ports reachable from workloads: %+v", wrong)
	}
	t.Logf("%d control-plane probes dropped, %d open-port probes connected", len(cpProbes), len(openProbes))

	// An operator opens the etcd client port by policy; Pass keeps the
	// profile (and the control-plane rule) for everything else.
	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: allow-etcd
spec:
  selector: all()
  types: [Egress]
  egress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [2379]
  - action: Pass
`)
	testutil.Eventually(t, 30*time.Second, func() error {
		if wrong := l.connectAll(etcdProbes, true); len(wrong) > 0 {
			return fmt.Errorf("policy did not open etcd: %+v", wrong)
		}
		return nil
	})
	var stillShut []probe
	for _, p := range cpProbes {
		if p.port != 2379 {
			stillShut = append(stillShut, p)
		}
	}
	if wrong := l.connectAll(stillShut, false); len(wrong) > 0 {
		t.Fatalf("ports the policy does not name became reachable: %+v", wrong)
	}
	if wrong := l.connectAll(openProbes, true); len(wrong) > 0 {
		t.Fatalf("the profile no longer applies after Pass: %+v", wrong)
	}
}

// The node container runs with least privilege, and everything it must
// write still gets written: per-interface sysctls (IPv4 and IPv6) and the
// plugin sockets' mode.
func TestNodeLeastPrivilege(t *testing.T) {
	t.Parallel()
	l := newLab(t, 1, 1)
	var insp []struct {
		HostConfig struct {
			CapAdd, CapDrop, MaskedPaths, ReadonlyPaths, SecurityOpt []string
			PidMode                                                  string
			Privileged, ReadonlyRootfs                               bool
		}
	}
	if err := json.Unmarshal([]byte(l.Docker("host1", "inspect", nodectl.ContainerName)), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("docker inspect: %v", err)
	}
	hc := insp[0].HostConfig
	norm := func(cs []string) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = strings.TrimPrefix(strings.ToUpper(c), "CAP_")
		}
		slices.Sort(out)
		return out
	}
	if got, want := norm(hc.CapAdd), norm(nodectl.Capabilities); !slices.Equal(got, want) {
		t.Errorf("CapAdd %v, want exactly %v", got, want)
	}
	if !slices.Equal(norm(hc.CapDrop), []string{"ALL"}) {
		t.Errorf("CapDrop %v, want [ALL]", hc.CapDrop)
	}
	if hc.Privileged || hc.PidMode == "host" {
		t.Errorf("privileged %v, pid mode %q", hc.Privileged, hc.PidMode)
	}
	// nil means Docker's defaults; emptied lists would unmask /proc/kcore.
	if hc.MaskedPaths != nil && !slices.Contains(hc.MaskedPaths, "/proc/kcore") {
		t.Errorf("masked paths %v lack Docker's defaults", hc.MaskedPaths)
	}
	for _, p := range []string{"/proc/sys/kernel", "/proc/sys/vm", "/proc/sysrq-trigger"} {
		if !slices.Contains(hc.ReadonlyPaths, p) {
			t.Errorf("read-only paths %v lack %s", hc.ReadonlyPaths, p)
		}
	}
	if slices.Contains(hc.ReadonlyPaths, "/proc/sys/net") || slices.Contains(hc.ReadonlyPaths, "/proc/sys") {
		t.Errorf("read-only paths %v: the node must be able to write /proc/sys/net", hc.ReadonlyPaths)
	}
	if !hc.ReadonlyRootfs {
		t.Error("root filesystem is writable")
	}
	if !slices.ContainsFunc(hc.SecurityOpt, func(s string) bool { return strings.HasPrefix(s, "no-new-privileges") }) {
		t.Errorf("security options %v lack no-new-privileges", hc.SecurityOpt)
	}

	// Plugin sockets: 0660 root:docker (this machine has a docker group).
	for _, s := range []string{"calico.sock", "calico-ipam.sock"} {
		out := strings.TrimSpace(l.MustExec("host1", "stat", "-c", "%a %U %G", "/run/docker/plugins/"+s))
		if out != "660 root docker" && out != "600 root root" {
			t.Errorf("%s: mode and owner %q, want 660 root docker (or 600 root root without a docker group)", s, out)
		}
	}

	// The sysctls the routes driver writes for a workload interface, from
	// kernel defaults (proxy_arp 0, proxy_delay 80, proxy_ndp 0) to ours.
	l.Docker("host1", "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "--ipv6", "net6")
	l.Run("host1", "w6", "net6")
	iface := ""
	testutil.Eventually(t, 20*time.Second, func() error {
		out := l.MustExec("host1", "ip", "-o", "link", "show")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "cali") {
				iface = strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
			}
		}
		if iface == "" {
			return errors.New("no cali interface yet")
		}
		want := map[string]string{
			"/proc/sys/net/ipv4/ip_forward":                      "1",
			"/proc/sys/net/ipv4/conf/" + iface + "/proxy_arp":    "1",
			"/proc/sys/net/ipv4/neigh/" + iface + "/proxy_delay": "0",
			"/proc/sys/net/ipv6/conf/" + iface + "/proxy_ndp":    "1",
			"/proc/sys/net/ipv6/conf/" + iface + "/forwarding":   "1",
		}
		for p, v := range want {
			out, err := l.Exec("host1", "cat", p)
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) != v {
				return fmt.Errorf("%s = %s, want %s", p, strings.TrimSpace(out), v)
			}
		}
		return nil
	})
}

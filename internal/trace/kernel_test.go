package trace

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
	"github.com/calico-docker/calico/internal/dataplane/nft"
	"github.com/calico-docker/calico/internal/testutil"
)

// The test binary doubles as a tiny TCP tool run inside namespaces.
const helperEnv = "TRACE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "serve":
		os.Exit(helperServe(os.Args[1:]))
	case "dial":
		os.Exit(helperDial(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helperServe accepts TCP connections on the given ports and closes them.
func helperServe(ports []string) int {
	for _, p := range ports {
		l, err := net.Listen("tcp", ":"+p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("hi\n"))
				_ = c.Close()
			}
		}()
	}
	fmt.Println("ready")
	select {}
}

// helperDial connects to args[0] within args[1] milliseconds and reads the greeting.
func helperDial(args []string) int {
	ms, _ := strconv.Atoi(args[1])
	c, err := net.DialTimeout("tcp", args[0], time.Duration(ms)*time.Millisecond)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Duration(ms) * time.Millisecond))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hi\n" {
		fmt.Fprintln(os.Stderr, "no greeting", err)
		return 1
	}
	return 0
}

func helper(t *testing.T, ns testutil.NetNS, mode string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, exe}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

type wl struct {
	name string
	ns   testutil.NetNS
	addr netip.Addr
}

// addWorkload wires a workload namespace to host the way Calico does:
// veth with host end iface (MAC ee:.., proxy ARP), a /32 route, and in the
// workload a default route via 169.254.1.1.
func addWorkload(t *testing.T, host testutil.NetNS, iface string, n int) *wl {
	w := &wl{name: iface, ns: testutil.NewNetNS(t, "trc-w"), addr: netip.MustParseAddr(fmt.Sprintf("10.66.0.%d", n))}
	host.MustExec(t, "ip", "link", "add", iface, "type", "veth", "peer", "name", "eth0", "netns", w.ns.Name)
	host.MustExec(t, "ip", "link", "set", iface, "address", "ee:ee:ee:ee:ee:ee")
	host.MustExec(t, "sysctl", "-qw", "net.ipv4.conf."+iface+".proxy_arp=1", "net.ipv4.neigh."+iface+".proxy_delay=0")
	host.MustExec(t, "ip", "link", "set", iface, "up")
	host.MustExec(t, "ip", "route", "add", w.addr.String()+"/32", "dev", iface, "scope", "link")
	w.ns.MustExec(t, "ip", "addr", "add", w.addr.String()+"/32", "dev", "eth0")
	w.ns.MustExec(t, "ip", "link", "set", "eth0", "up")
	w.ns.MustExec(t, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
	w.ns.MustExec(t, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
	return w
}

// snapshotYAML is the state the test programs: three workloads, two
// Docker-network-style profiles (ingress from the same network, egress
// anywhere), and policies added per case.
const snapshotYAML = `
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: front}
spec:
  labelsToApply: {net: front}
  ingress: [{action: Allow, source: {selector: "net == 'front'"}}]
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: back}
spec:
  labelsToApply: {net: back}
  ingress: [{action: Allow, source: {selector: "net == 'back'"}}]
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: web, namespace: docker, labels: {role: web}}
spec: {node: h1, interfaceName: caliweb0000001, ipNetworks: [10.66.0.1/32], profiles: [front]}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: api, namespace: docker, labels: {role: api}}
spec: {node: h1, interfaceName: caliapi0000001, ipNetworks: [10.66.0.2/32], profiles: [front]}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: db, namespace: docker, labels: {role: db}}
spec: {node: h1, interfaceName: calidb00000001, ipNetworks: [10.66.0.3/32], profiles: [back]}
`

const policyYAML = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db-from-web}
spec:
  order: 100
  selector: role == 'db'
  ingress:
  - {action: Allow, protocol: TCP, source: {selector: "role == 'web'"}, destination: {ports: [5432]}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: no-admin-port}
spec:
  order: 10
  selector: role == 'api'
  ingress:
  - {action: Log, protocol: TCP}
  - {action: Deny, protocol: TCP, destination: {ports: [9090]}}
  - {action: Pass}
`

const namedPortYAML = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: named-ports}
spec:
  order: 100
  selector: role == 'db' || role == 'api'
  ingress:
  - {action: Allow, protocol: TCP, destination: {ports: [pg, 8080]}}
`

func decodeSnapshot(t *testing.T, docs ...string) *calc.Snapshot {
	t.Helper()
	s, st := decodeWithStaged(t, docs...)
	if !st.Empty() {
		t.Fatal("staged policies in a kernel test: they are never programmed")
	}
	return s
}

// TestTraceAgreesWithKernel programs the calc's Desired into real
// nftables in a throwaway host namespace, sends real TCP connections and
// pings between workload namespaces, and checks that every trace verdict
// (and the deciding rule) matches what the kernel did.
func TestTraceAgreesWithKernel(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "ip", "sysctl", "busybox")
	host := testutil.NewNetNS(t, "trc-h")
	host.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// Proxy ARP answers only with a route covering 169.254.1.1.
	host.MustExec(t, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	host.MustExec(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
	host.MustExec(t, "ip", "link", "set", "up1", "up")
	host.MustExec(t, "ip", "link", "set", "up0", "up")
	host.MustExec(t, "ip", "route", "add", "default", "via", "192.0.2.2", "dev", "up0", "onlink")
	web := addWorkload(t, host, "caliweb0000001", 1)
	apiW := addWorkload(t, host, "caliapi0000001", 2)
	db := addWorkload(t, host, "calidb00000001", 3)
	for _, w := range []*wl{web, apiW, db} {
		cmd := helper(t, w.ns, "serve", "5432", "8080", "9090")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Fatalf("server in %s: %q", w.name, line)
		}
	}
	drv, err := nft.New(nft.Options{NetNS: host.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	program := func(s *calc.Snapshot) *Tracer {
		s.Node = "h1"
		drv.SetDesired(calc.Compute(s))
		if _, err := drv.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
		return New(s, nil)
	}
	// A denied attempt is a dropped SYN: waiting for it costs its timeout,
	// so attempts the trace expects to fail wait less (a local allowed
	// connection completes in milliseconds).
	real := func(from, to *wl, proto string, port uint16, expect bool) bool {
		if proto == "icmp" {
			_, err := from.ns.Exec("busybox", "ping", "-c", "1", "-W", "1", to.addr.String())
			return err == nil
		}
		timeout := "600"
		if expect {
			timeout = "3000"
		}
		err := helper(t, from.ns, "dial", netip.AddrPortFrom(to.addr, port).String(), timeout).Run()
		return err == nil
	}
	type tc struct {
		name     string
		from, to *wl
		proto    string
		port     uint16
		allowed  bool
		decider  string // substring of the deciding side's Decider
	}
	check := func(t *testing.T, tr *Tracer, c tc) {
		t.Helper()
		pr, _ := ParseProto(c.proto)
		p := Packet{Src: c.from.addr, Dst: c.to.addr, Protocol: pr, DstPort: c.port}
		if pr == 1 {
			p.ICMPType = 8
		}
		r := tr.Trace(p)
		var b strings.Builder
		r.WriteText(&b)
		if testing.Verbose() {
			t.Log(b.String())
		}
		if r.Allowed != c.allowed {
			t.Errorf("%s: trace says allowed=%v, want %v:\n%s", c.name, r.Allowed, c.allowed, b.String())
		}
		if !strings.Contains(r.Summary, c.decider) {
			t.Errorf("%s: summary %q does not name %q:\n%s", c.name, r.Summary, c.decider, b.String())
		}
		if got := real(c.from, c.to, c.proto, c.port, r.Allowed); got != r.Allowed {
			t.Errorf("%s: kernel allowed=%v but trace says %v:\n%s", c.name, got, r.Allowed, b.String())
		}
	}

	t.Run("profiles only", func(t *testing.T) {
		tr := program(decodeSnapshot(t, snapshotYAML))
		for _, c := range []tc{
			{"allowed by profile", web, apiW, "tcp", 8080, true, "profile:front rule 0"},
			{"ping allowed by profile", apiW, web, "icmp", 0, true, "profile:front rule 0"},
			{"other network denied", web, db, "tcp", 8080, false, "no policy or profile allowed it"},
			{"other network ping denied", db, web, "icmp", 0, false, "no policy or profile allowed it"},
		} {
			check(t, tr, c)
		}
	})
	t.Run("policies", func(t *testing.T) {
		tr := program(decodeSnapshot(t, snapshotYAML, policyYAML))
		for _, c := range []tc{
			{"allowed by label policy", web, db, "tcp", 5432, true, "gnp:db-from-web rule 0"},
			{"label policy port only", web, db, "tcp", 8080, false, "no policy allowed it"},
			{"label policy selects source", apiW, db, "tcp", 5432, false, "no policy allowed it"},
			{"denied by deny rule", web, apiW, "tcp", 9090, false, "gnp:no-admin-port rule 1"},
			{"pass to profile", web, apiW, "tcp", 8080, true, "profile:front rule 0"},
			{"pass then profile denies", db, apiW, "tcp", 8080, false, "passed to the profiles"},
		} {
			check(t, tr, c)
		}
	})
	t.Run("named ports", func(t *testing.T) {
		// db names 5432 "pg", api names 9090 "pg": the same rule opens a
		// different port on each.
		s := decodeSnapshot(t, snapshotYAML, namedPortYAML)
		s.WorkloadEndpoints[1].Spec.Ports = []api.WorkloadEndpointPort{{Name: "pg", Protocol: api.Protocol{Name: "TCP"}, Port: 9090}}
		s.WorkloadEndpoints[2].Spec.Ports = []api.WorkloadEndpointPort{{Name: "pg", Protocol: api.Protocol{Name: "TCP"}, Port: 5432},
			{Name: "metrics", Protocol: api.Protocol{Name: "UDP"}, Port: 8080}}
		tr := program(s)
		for _, c := range []tc{
			{"named port of db", web, db, "tcp", 5432, true, "gnp:named-ports rule 1"},
			{"number next to the name", web, db, "tcp", 8080, true, "gnp:named-ports rule 0"},
			{"api's port is not db's", web, db, "tcp", 9090, false, "no policy allowed it"},
			{"named port of api", web, apiW, "tcp", 9090, true, "gnp:named-ports rule 1"},
			{"db's port is not api's", web, apiW, "tcp", 5432, false, "no policy allowed it"},
		} {
			check(t, tr, c)
		}
		// db loses its named port.
		s = decodeSnapshot(t, snapshotYAML, namedPortYAML)
		s.WorkloadEndpoints[1].Spec.Ports = []api.WorkloadEndpointPort{{Name: "pg", Protocol: api.Protocol{Name: "TCP"}, Port: 9090}}
		tr = program(s)
		check(t, tr, tc{"named port gone", web, db, "tcp", 5432, false, "no policy allowed it"})
		check(t, tr, tc{"other endpoint keeps it", web, apiW, "tcp", 9090, true, "gnp:named-ports rule 1"})
	})
	t.Run("no profile at all", func(t *testing.T) {
		s := decodeSnapshot(t, snapshotYAML)
		s.WorkloadEndpoints[2].Spec.Profiles = nil // db
		tr := program(s)
		check(t, tr, tc{"denied by no policy", web, db, "tcp", 8080, false, "no policy or profile applies"})
	})
	t.Run("kubernetes-only selectors", func(t *testing.T) {
		tr := program(decodeSnapshot(t, snapshotYAML, kubeSelectorsYAML))
		for _, c := range []tc{
			{"namespaceSelector matches own namespace", apiW, db, "tcp", 5432, true, "gnp:k8s-db rule 1"},
			{"rule serviceAccounts selector all() matches all", web, db, "tcp", 8080, false, "gnp:k8s-db rule 0"},
			{"services and other namespace match nothing", web, db, "tcp", 5432, false, "no policy allowed it"},
			{"serviceAccountSelector all() selects no endpoint", web, apiW, "tcp", 8080, true, "profile:front rule 0"},
		} {
			check(t, tr, c)
		}
	})
}

// kubeSelectorsYAML uses the Kubernetes-only selectors, evaluated as
// Calico does: the workloads are in namespace docker and have no service
// account, and there are no Kubernetes Services.
const kubeSelectorsYAML = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: k8s-db}
spec:
  order: 1
  selector: role == 'db'
  namespaceSelector: projectcalico.org/name == 'docker'
  types: [Ingress]
  ingress:
  - {action: Deny, protocol: TCP, source: {serviceAccounts: {selector: all()}}, destination: {ports: [8080]}}
  - {action: Allow, protocol: TCP, source: {namespaceSelector: "projectcalico.org/name == 'docker'", selector: "role == 'api'"}}
  - {action: Allow, protocol: TCP, source: {namespaceSelector: "projectcalico.org/name == 'other'"}}
  - {action: Allow, protocol: TCP, source: {serviceAccounts: {names: [web]}}}
  - {action: Allow, protocol: TCP, source: {services: {name: web, namespace: docker}}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: k8s-sa-all}
spec:
  order: 2
  serviceAccountSelector: all()
  ingress: [{action: Deny}]
`

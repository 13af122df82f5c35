package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/testutil"
)

// testHostProtection runs in the Docker-defaults lab (each iptables back
// end), with an outside namespace on the fabric that has two addresses:
// "good" (the office) and "bad". On host1 it checks, in order:
//   - before any HostEndpoint, a host service, the published ports of a
//     container on a calico network (our DNAT) and of one on Docker's
//     bridge (Docker's DNAT), and the calico container itself (forwarded
//     traffic) are reachable from both;
//   - a HostEndpoint found by its expectedIPs only (host1's fabric
//     address, so eth0) and no profile closes the host service to both;
//     forwarded traffic is not judged (no applyOnForward policy);
//   - a policy reopens the host service to good only;
//   - a pre-DNAT policy closes both published ports to bad, not to good;
//   - the same host policy with applyOnForward judges forwarded traffic:
//     bad no longer reaches the container, good does;
//   - the same with a "*" HostEndpoint instead;
//   - throughout: the failsafe ports stay open from outside (etcd, BGP),
//     host1's BGP session stays up and host2 keeps using host1's
//     datastore; Docker's own tables are the same at the end as before.
func testHostProtection(t *testing.T, l *Lab, backend string) {
	h1 := l.host("host1")
	out := l.AddOutside(2)
	good, bad := out.Addrs[0], out.Addrs[1]
	l.Docker("host1", "run", "-d", "--name", "pub-cal", "--net", "frontend", "--label", "role=pub", "-p", "8080:80",
		cli.TestImage, "httpd", "-f", "-p", "80")
	l.Docker("host1", "run", "-d", "--name", "pub-br", "-p", "8081:80", cli.TestImage, "httpd", "-f", "-p", "80")
	t.Cleanup(func() {
		_, _ = l.Exec("host1", "docker", "rm", "-f", "pub-cal", "pub-br")
	})
	pubCal := l.IP("host1", "pub-cal")
	out.Route(pubCal+"/32", h1.Addr())
	// The calico container's profile admits its network only: open port 80.
	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pub-open}
spec:
  order: 50
  selector: role == 'pub'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [80]}
`)
	if !l.listenIn("host1", h1.Addr()+":7777") {
		t.Fatal("port 7777 is taken on host1")
	}
	type target struct {
		name string
		ip   string
		port int
	}
	service := target{"host service", h1.Addr(), 7777}
	pubPort := target{"published port (calico network)", h1.Addr(), 8080}
	brPort := target{"published port (Docker bridge)", h1.Addr(), 8081}
	direct := target{"calico container (forwarded)", pubCal, 80}
	// expect waits until good and bad reach each target as wanted. The
	// probes run at once: a dropped one takes its whole 2 s timeout.
	expect := func(what string, want map[target][2]bool) {
		t.Helper()
		testutil.Eventually(t, 45*time.Second, func() error {
			var (
				mu    sync.Mutex
				wg    sync.WaitGroup
				wrong []string
			)
			for tg, w := range want {
				for i, src := range []string{good, bad} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if got := out.Connects(src, tg.ip, tg.port); got != w[i] {
							mu.Lock()
							wrong = append(wrong, fmt.Sprintf("%s from %s: connected=%v", tg.name, src, got))
							mu.Unlock()
						}
					}()
				}
			}
			wg.Wait()
			slices.Sort(wrong)
			if len(wrong) > 0 {
				return fmt.Errorf("%s: %s", what, strings.Join(wrong, "; "))
			}
			return nil
		})
	}
	both, goodOnly, none := [2]bool{true, true}, [2]bool{true, false}, [2]bool{false, false}
	// failsafes: etcd and BGP stay reachable from outside (failsafe
	// ports), host1's BGP session is up, host2 uses host1's datastore.
	failsafes := func(when string) {
		t.Helper()
		for _, port := range []int{2379, 179} {
			for _, src := range []string{good, bad} {
				if !out.Connects(src, h1.Addr(), port) {
					t.Fatalf("%s: failsafe port %d closed to %s", when, port, src)
				}
			}
		}
		if st := l.Calico("host1", "node", "status"); !strings.Contains(st, "Established") {
			t.Fatalf("%s: BGP session down:\n%s", when, st)
		}
		l.Calico("host2", "get", "nodes")
	}

	expect("before any HostEndpoint", map[target][2]bool{service: both, pubPort: both, brPort: both, direct: both})
	failsafes("before any HostEndpoint")
	before := l.dockerTables("host1", backend)

	hep := func(iface string) string {
		spec := "  expectedIPs: [" + h1.Addr() + "]\n"
		if iface != "" {
			spec = "  interfaceName: \"" + iface + "\"\n"
		}
		return `apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: host1-fabric
  labels: {host-endpoint: fabric}
spec:
  node: ` + h1.Name + "\n" + spec
	}
	l.Apply("host1", hep(""))
	expect("HostEndpoint by expectedIPs, no policy", map[target][2]bool{service: none, pubPort: both, brPort: both, direct: both})
	failsafes("deny-all HostEndpoint")
	// Cluster traffic is untouched: across hosts and the datastore.
	l.EventuallyReach("host2", "web2", l.Run("host1", "web1c", "frontend", "role=web"), 30*time.Second)

	hostPolicy := func(onForward bool) string {
		return fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: office-in}
spec:
  order: 20
  selector: host-endpoint == 'fabric'
  applyOnForward: %t
  types: [Ingress]
  ingress:
  - action: Allow
    source: {nets: [%s/32]}
`, onForward, good)
	}
	l.Apply("host1", hostPolicy(false))
	expect("host policy admits good", map[target][2]bool{service: goodOnly, pubPort: both, brPort: both, direct: both})

	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: published-from-office}
spec:
  order: 10
  selector: host-endpoint == 'fabric'
  preDNAT: true
  applyOnForward: true
  ingress:
  - action: Deny
    protocol: TCP
    source: {notNets: [`+good+`/32]}
    destination: {ports: [8080, 8081]}
`)
	expect("pre-DNAT policy", map[target][2]bool{service: goodOnly, pubPort: goodOnly, brPort: goodOnly, direct: both})
	failsafes("pre-DNAT policy")

	l.Apply("host1", hostPolicy(true))
	expect("host policy with applyOnForward", map[target][2]bool{service: goodOnly, pubPort: goodOnly, brPort: goodOnly, direct: goodOnly})
	failsafes("applyOnForward policy")

	l.Apply("host1", hep("*"))
	expect(`"*" HostEndpoint`, map[target][2]bool{service: goodOnly, pubPort: goodOnly, brPort: goodOnly, direct: goodOnly})
	failsafes(`"*" HostEndpoint`)
	if after := l.dockerTables("host1", backend); after != before {
		t.Fatalf("Docker's tables changed under host protection:\n%s\nbefore:\n%s", after, before)
	}

	l.Calico("host1", "delete", "hostendpoint", "host1-fabric")
	for _, p := range []string{"published-from-office", "office-in", "pub-open"} {
		l.Calico("host1", "delete", "globalnetworkpolicy", p)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		if out := l.MustExec("host1", "nft", "list", "table", "inet", "calico"); strings.Contains(out, "host-prednat") {
			return fmt.Errorf("host endpoint chains still there")
		}
		return nil
	})
	expect("HostEndpoint removed", map[target][2]bool{service: both, brPort: both})
}

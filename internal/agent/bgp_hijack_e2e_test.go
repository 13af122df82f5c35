package agent_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/pki"
	"github.com/calico-docker/calico/internal/testutil"
)

// A BIRD 2 router (an external BGP peer, with a TCP MD5 password read by the
// node from its secret file) announces prefixes meant to hijack traffic to
// workloads and nodes. `calico node run` installs in the kernel only the
// legitimate ones: an outside prefix, and another node's block with that
// node as next hop (as a route reflector would pass it on).
func TestBGPHijackRoutesNotInstalled(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "bird", "birdc", "busybox")
	bin := calicoBin(t)
	const birdV4, otherV4 = "10.72.0.2", "10.72.0.3"

	host := testutil.NewNetNS(t, "agh")
	birdNS := testutil.NewNetNS(t, "agb")
	host.MustExec(t, "ip", "link", "add", "agup0", "type", "veth", "peer", "name", "eth0", "netns", birdNS.Name)
	host.MustExec(t, "ip", "addr", "add", hostV4+"/24", "dev", "agup0")
	host.MustExec(t, "ip", "link", "set", "agup0", "up")
	host.MustExec(t, "ip", "route", "add", "default", "via", birdV4)
	birdNS.MustExec(t, "ip", "addr", "add", birdV4+"/24", "dev", "eth0")
	birdNS.MustExec(t, "ip", "link", "set", "eth0", "up")
	birdNS.MustExec(t, "ip", "link", "set", "lo", "up")

	secrets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(secrets, "bird"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "bird", "password"), []byte("Hijack-Proof-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	dsDir := t.TempDir()
	node := exec.Command("ip", "netns", "exec", host.Name, bin, "node", "run", "--name", testNode,
		"--ip", hostV4+"/24", "--no-docker-plugin", "--embedded-etcd", "--etcd-data-dir", filepath.Join(dsDir, "etcd"),
		// Credentials, calicoctl.cfg and the etcd socket stay in the test's
		// directory: the machine's /var/lib/calico belongs to its own node.
		"--pki-dir", filepath.Join(dsDir, "pki"), "--etcd-socket", filepath.Join(dsDir, "etcd.sock"), "--join-port", "0")
	node.Env = []string{"PATH=" + os.Getenv("PATH"), "NO_DEFAULT_POOLS=true", "CALICO_BGP_SECRET_DIR=" + secrets,
		"CALICO_NODENAME_FILE=" + filepath.Join(dsDir, "nodename")}
	var logs logBuffer
	node.Stdout, node.Stderr = &logs, &logs
	node.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- node.Wait() }()
	t.Cleanup(func() {
		// Killed, not stopped: a graceful stop would leave its BGP restart
		// marker in this machine's /var/run/calico.
		_ = node.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("node output:\n%s", logs.String())
		}
	})
	calico := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("ip", append([]string{"netns", "exec", host.Name, bin}, args...)...)
		// The node's datastore, through its own credentials (not the
		// machine's calicoctl.cfg).
		p := pki.Paths{Dir: filepath.Join(dsDir, "pki")}
		cmd.Env = append(os.Environ(), "ETCD_ENDPOINTS=unixs://"+filepath.Join(dsDir, "etcd.sock"),
			"ETCD_CA_CERT_FILE="+p.CACert(), "ETCD_CERT_FILE="+p.Cert(), "ETCD_KEY_FILE="+p.Key())
		cmd.Stdin = strings.NewReader(stdin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("calico %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	testutil.Eventually(t, waitLong, func() error {
		_, err := host.Exec("busybox", "wget", "-qO-", "http://127.0.0.1:9099/status")
		return err
	})

	calico(fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: hj-pool}
spec: {cidr: 10.71.0.0/16, natOutgoing: false}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: other}
spec: {bgp: {ipv4Address: %s/24}}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: bird}
spec:
  peerIP: %s
  asNumber: 65100
  password: {secretKeyRef: {name: bird, key: password}}
`, otherV4, birdV4), "apply", "-f", "-")
	// A block of the other node's, and one of ours.
	otherIP := netip.MustParseAddr(strings.TrimSpace(calico("", "ipam", "assign", "--handle", "h-other", "--node", "other", "--pool", "10.71.0.0/16")))
	myIP := netip.MustParseAddr(strings.TrimSpace(calico("", "ipam", "assign", "--handle", "h-me", "--node", testNode, "--pool", "10.71.0.0/16")))
	otherBlock := netip.PrefixFrom(otherIP, 26).Masked()
	myBlock := netip.PrefixFrom(myIP, 26).Masked()
	if otherBlock == myBlock {
		t.Fatalf("both addresses in %s", otherBlock)
	}
	inOther27 := netip.PrefixFrom(otherBlock.Addr(), 27)

	hijacks := []string{
		"0.0.0.0/1",                         // covers the pool and, past the default route, the nodes
		inOther27.String(),                  // part of another node's block
		otherV4 + "/32",                     // another node's own address
		"10.72.0.0/25",                      // more specific than the fabric's /24
		netip.PrefixFrom(myIP, 32).String(), // an address in our own block
		myBlock.String(),                    // our own block
		"10.71.200.0/26",                    // pool space no block covers
	}
	legit := []string{"10.200.0.0/24"}
	var statics strings.Builder
	for _, p := range append(hijacks, legit...) {
		fmt.Fprintf(&statics, "  route %s blackhole;\n", p)
	}
	// The other node's block with the other node as next hop (third-party
	// next hop on the shared subnet), as a route reflector passes it on.
	fmt.Fprintf(&statics, "  route %s via %s;\n", otherBlock, otherV4)
	cfg := fmt.Sprintf(`router id %[1]s;
log stderr all;
protocol device { scan time 1; }
protocol static {
  ipv4;
%[2]s}
protocol bgp calico {
  local %[1]s as 65100;
  neighbor %[3]s as 64512;
  direct;
  password "Hijack-Proof-1";
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 5;
  ipv4 { import all; export where source = RTS_STATIC; };
}
`, birdV4, statics.String(), hostV4)
	testutil.StartBIRD(t, birdNS.Name, cfg)

	// The session comes up with the password from the secret file, and the
	// legitimate routes are installed.
	routes := func() string {
		return host.MustExec(t, "ip", "route", "show", "proto", "80")
	}
	// Our own block never even reaches the guard: the speaker does not
	// report a prefix it announces itself as learned. Every other hijack
	// has been received and refused once the log says so.
	testutil.Eventually(t, 60*time.Second, func() error {
		rs := routes()
		for _, want := range []string{"10.200.0.0/24 via " + birdV4, otherBlock.String() + " via " + otherV4} {
			if !strings.Contains(rs, want) {
				return fmt.Errorf("kernel lacks %q:\n%s", want, rs)
			}
		}
		for _, h := range hijacks {
			if h != myBlock.String() && !strings.Contains(logs.String(), "prefix="+h+" ") {
				return fmt.Errorf("the node log does not report refusing %s yet", h)
			}
		}
		return nil
	})
	rs := routes()
	t.Logf("routes of ours:\n%s", rs)
	for _, h := range hijacks {
		p := netip.MustParsePrefix(h)
		for _, l := range strings.Split(rs, "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			dst := f[0]
			if dst == "blackhole" {
				continue // our own block's blackhole route
			}
			if !strings.Contains(dst, "/") {
				dst += "/32"
			}
			if dst == p.String() {
				t.Errorf("hijack prefix %s installed: %s", h, l)
			}
		}
	}
	// The host still reaches the other node directly, not through BIRD.
	if got := host.MustExec(t, "ip", "route", "get", otherV4); strings.Contains(got, "via") {
		t.Errorf("route to node %s goes via a gateway: %s", otherV4, got)
	}
	status := calico("", "node", "status")
	if !strings.Contains(status, birdV4) || !strings.Contains(status, "Established") {
		t.Errorf("node status lacks an established session with BIRD:\n%s", status)
	}
	t.Logf("node status:\n%s", status)
}

package cli

import (
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/testutil"
)

// node start refuses on a host where forwarded traffic dies (FORWARD policy
// DROP set by someone other than Docker, so no DOCKER-USER to use), naming
// the check and its fix, before it touches Docker; checksystem exits 1 there.
func TestNodeStartRefusesOnFail(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "iptables-nft")
	bin := buildCalico(t)
	ns := testutil.NewNetNS(t, "h3ns")
	ns.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	ns.MustExec(t, "iptables-nft", "-P", "FORWARD", "DROP")

	out, err := ns.Exec("env", "DOCKER_HOST=unix:///nonexistent.sock", bin, "node", "start", "--timeout", "5s")
	if err == nil {
		t.Fatalf("node start succeeded:\n%s", out)
	}
	for _, want := range []string{"checking the host ... failed", "cannot run the calico node", "FAIL iptables FORWARD (nf_tables)",
		"fix: iptables -I FORWARD -m mark --mark 0x40000/0x40000 -j ACCEPT"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "checking docker") {
		t.Errorf("node start went on to Docker after a FAIL:\n%s", out)
	}

	out, err = ns.Exec(bin, "node", "checksystem")
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(out, "This host cannot run the calico node") {
		t.Fatalf("checksystem: %v\n%s", err, out)
	}
	ns.MustExec(t, "iptables-nft", "-P", "FORWARD", "ACCEPT")
	if out, err := ns.Exec(bin, "node", "checksystem"); err != nil {
		t.Fatalf("checksystem after the fix: %v\n%s", err, out)
	}
}

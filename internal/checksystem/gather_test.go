package checksystem

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/calico-docker/calico/internal/testutil"
)

// The real probes run in a throwaway namespace and find every feature this
// project needs (the machine the tests run on has them all); nothing they
// create is left in the caller's namespace.
func TestProbesFindFeaturesAndLeaveNothing(t *testing.T) {
	testutil.RequireRoot(t)
	feats, err := probeFeatures(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(feats) != len(featureProbes) {
		t.Fatalf("got %d features, want %d", len(feats), len(featureProbes))
	}
	for _, f := range feats {
		if f.Err != "" {
			t.Errorf("feature %s: %s", f.Name, f.Err)
		}
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == "calico-probe" {
			t.Errorf("probe table %s left in this namespace", tb.Name)
		}
	}
	for _, name := range []string{"probe0", "probe1", "probe-vx"} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("probe link %s left in this namespace", name)
		}
	}
}

// A probe that uses a feature wrongly fails: the probes report the kernel's
// answer, they do not assume success.
func TestProbeReportsKernelRefusal(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := newScratchNS()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	err = nftProbe(s, nftables.TableFamilyINet, func(c *nftables.Conn, tb *nftables.Table) error {
		// A rule in a chain that does not exist.
		c.AddRule(&nftables.Rule{Table: tb, Chain: &nftables.Chain{Name: "missing", Table: tb}})
		return nil
	})
	if err == nil {
		t.Fatal("a probe of an impossible ruleset succeeded")
	}
}

func evalChecks(t *testing.T, f Facts, p Policy) map[string]Result {
	t.Helper()
	out := map[string]Result{}
	for _, r := range Evaluate(f, p).Results {
		out[r.Check] = r
	}
	return out
}

// A namespace set up like a healthy host passes every namespace check.
func TestGatherHealthyNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "nsenter")
	ns := testutil.NewNetNS(t, "h3chk")
	ns.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=1")
	f := Gather(context.Background(), Options{NetNS: ns.Path(), Root: t.TempDir(), SkipProbes: true})
	got := evalChecks(t, f, Policy{})
	for _, r := range got {
		if r.Status != OK && r.Check != SysctlIPv6Forward && r.Check != "iptables" {
			t.Errorf("%s: %s %s", r.Check, r.Status, r.Detail)
		}
	}
	if f.Sysctls[SysctlIPForward].Value != "1" || f.Sysctls[SysctlRPFilterAll].Value != "1" {
		t.Errorf("sysctls read from the wrong namespace: %+v", f.Sysctls)
	}
}

// A namespace with bad conditions: each is found and reported with its fix.
func TestGatherReportsBadConditions(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "nsenter", "nft", "iptables-nft", "iptables-legacy", "iptables-legacy-save")
	ns := testutil.NewNetNS(t, "h3bad")
	ns.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv4.conf.all.rp_filter=2")
	// Docker's defaults on the nf_tables back end: FORWARD policy drop and its chains.
	ns.MustExec(t, "iptables-nft", "-P", "FORWARD", "DROP")
	ns.MustExec(t, "iptables-nft", "-N", "DOCKER")
	ns.MustExec(t, "iptables-nft", "-N", "DOCKER-USER")
	ns.MustExec(t, "iptables-nft", "-I", "FORWARD", "-j", "DOCKER-USER")
	// The same on the legacy back end.
	ns.MustExec(t, "iptables-legacy", "-P", "FORWARD", "DROP")
	// firewalld's table shape: a forward chain that ends in a reject.
	ns.MustExec(t, "nft", "add table inet firewalld")
	ns.MustExec(t, "nft", "add chain inet firewalld filter_FORWARD { type filter hook forward priority filter + 10; policy accept; }")
	ns.MustExec(t, "nft", "add rule inet firewalld filter_FORWARD ct state established,related accept")
	ns.MustExec(t, "nft", "add rule inet firewalld filter_FORWARD reject with icmpx admin-prohibited")
	// Another firewall's table with a drop policy on the forward hook.
	ns.MustExec(t, "nft", "add table inet other")
	ns.MustExec(t, "nft", "add chain inet other fwdchain { type filter hook forward priority 0; policy drop; }")
	// Another CNI's bridge.
	ns.MustExec(t, "ip", "link", "add", "cni0", "type", "bridge")
	root := t.TempDir()
	for p, content := range map[string]string{
		"etc/ufw/ufw.conf": "# ufw\nENABLED=yes\nLOGLEVEL=low\n",
		"etc/default/ufw":  "IPV6=yes\nDEFAULT_FORWARD_POLICY=\"DROP\"\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	f := Gather(context.Background(), Options{NetNS: ns.Path(), Root: root, SkipProbes: true})
	got := evalChecks(t, f, Policy{})
	want := map[string]Status{
		SysctlIPForward:                Warn,
		SysctlRPFilterAll:              Warn,
		"iptables FORWARD (nf_tables)": Fail,
		"iptables FORWARD (legacy)":    Fail,
		"iptables":                     Warn, // rules in both back ends
		"nft inet firewalld":           Fail,
		"nft inet other":               Warn,
		"firewalld":                    OK,
		"ufw":                          Fail,
		"other container networks":     Warn,
	}
	for check, st := range want {
		r, ok := got[check]
		if !ok {
			t.Errorf("%s not reported", check)
			continue
		}
		if r.Status != st {
			t.Errorf("%s = %s (%s), want %s", check, r.Status, r.Detail, st)
		}
		if r.Status != OK && r.Fix == "" {
			t.Errorf("%s has no fix", check)
		}
	}
	if !strings.Contains(got["other container networks"].Detail, "cni0") {
		t.Errorf("cni0 not named: %s", got["other container networks"].Detail)
	}
	if !strings.Contains(got["firewalld"].Detail, "inet firewalld") {
		t.Errorf("firewalld not detected from its table: %s", got["firewalld"].Detail)
	}
	if !strings.Contains(got["docker firewall"].Detail, "iptables on") {
		t.Errorf("docker firewall: %s", got["docker firewall"].Detail)
	}
	// Once the node admits its traffic through DOCKER-USER, the nf_tables
	// FORWARD is fine (Docker's chains and DOCKER-USER exist there) but the
	// legacy one dropped by someone other than Docker still fails.
	got = evalChecks(t, f, Policy{DockerUser: true})
	if got["iptables FORWARD (nf_tables)"].Status != OK || got["iptables FORWARD (legacy)"].Status != Fail {
		t.Errorf("with DOCKER-USER support: nf_tables %s, legacy %s", got["iptables FORWARD (nf_tables)"].Status, got["iptables FORWARD (legacy)"].Status)
	}
	// Gathering changed nothing in the namespace.
	if out := ns.MustExec(t, "sysctl", "-n", "net.ipv4.ip_forward"); strings.TrimSpace(out) != "0" {
		t.Errorf("ip_forward changed to %s", out)
	}
	if out := ns.MustExec(t, "iptables-legacy-save", "-t", "filter"); !strings.Contains(out, ":FORWARD DROP") {
		t.Errorf("legacy FORWARD changed:\n%s", out)
	}
	var names []string
	for _, tb := range f.NFT {
		names = append(names, tb.Family+" "+tb.Name)
	}
	if !slices.Contains(names, "inet firewalld") || !slices.Contains(names, "ip filter") {
		t.Errorf("tables read: %v", names)
	}
}

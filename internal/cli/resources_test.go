package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/testutil"
	"sigs.k8s.io/yaml"
)

// The resource commands are tested through the built binary against a real
// embedded etcd, and checked from the outside with etcdctl.

// resCLI runs the calico binary against one etcd.
type resCLI struct {
	t         *testing.T
	bin       string
	endpoints string
}

type runResult struct {
	stdout, stderr string
	code           int
}

func (c resCLI) run(stdin string, args ...string) runResult {
	c.t.Helper()
	return runCalico(c.t, c.bin, c.endpoints, stdin, args...)
}

// ok runs a command that must succeed and returns its stdout.
func (c resCLI) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != 0 {
		c.t.Fatalf("calico %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fail runs a command that must exit 1 and returns its stderr.
func (c resCLI) fail(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != 1 {
		c.t.Fatalf("calico %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stderr
}

func runCalico(t *testing.T, bin, endpoints, stdin string, args ...string) runResult {
	t.Helper()
	if endpoints != "" && len(args) > 0 && args[0] != "validate" {
		args = append(args, "--etcd-endpoints", endpoints)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		code = xe.ExitCode()
	} else if err != nil {
		t.Fatalf("run calico %v: %v", args, err)
	}
	return runResult{out.String(), errOut.String(), code}
}

// initKeys is how many keys the first write adds besides the resources
// (cluster information, three tiers, kube-controllers configuration).
const initKeys = 5

// etcdKeys lists the keys under /calico with etcdctl (v3 API).
func etcdKeys(t *testing.T, endpoints string) []string {
	t.Helper()
	cmd := exec.Command("/usr/bin/etcdctl", "--endpoints", endpoints, "get", "--prefix", "--keys-only", "/calico")
	cmd.Env = []string{"ETCDCTL_API=3", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl: %v\n%s", err, out)
	}
	var keys []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keys = append(keys, l)
		}
	}
	return keys
}

func etcdValue(t *testing.T, endpoints, key string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/etcdctl", "--endpoints", endpoints, "get", "--print-value-only", key)
	cmd.Env = []string{"ETCDCTL_API=3", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func testdata(name string) string { return filepath.Join("testdata", "resources", name) }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const prefix = "/calico/resources/v3/projectcalico.org/"

// TestResourceCommands builds the binary once and runs every scenario as a
// subtest, each against a fresh etcd.
func TestResourceCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts etcd; skipped with -short")
	}
	testutil.RequireCmd(t, "/usr/bin/etcdctl")
	bin := testutil.CalicoBin(t)
	fresh := func(t *testing.T) resCLI {
		return resCLI{t: t, bin: bin, endpoints: strings.Join(etcdtest.Start(t), ",")}
	}

	t.Run("ApplyLayoutAndRoundTrip", func(t *testing.T) {
		c := fresh(t)
		out := c.ok("apply", "-f", testdata("cluster.yaml"))
		if out != "Successfully applied 12 resource(s)\n" {
			t.Fatalf("apply printed %q", out)
		}
		// Calico's keys: policies under their tiered name, and what
		// calicoctl creates on its first write (internal/compat).
		want := []string{
			prefix + "bgpconfigurations/default",
			prefix + "bgppeers/tor",
			prefix + "clusterinformations/default",
			prefix + "felixconfigurations/default",
			prefix + "globalnetworkpolicies/default.default-deny",
			prefix + "hostendpoints/host1-eth0",
			prefix + "ippools/default-ipv4-ippool",
			prefix + "ippools/default-ipv6-ippool",
			prefix + "kubecontrollersconfigurations/default",
			prefix + "networkpolicies/default/default.allow-db",
			prefix + "networkpolicies/shop/default.allow-web",
			prefix + "nodes/host1",
			prefix + "profiles/shop-net",
			prefix + "tiers/adminnetworkpolicy",
			prefix + "tiers/baselineadminnetworkpolicy",
			prefix + "tiers/default",
			prefix + "workloadendpoints/shop/host1-libnetwork-libnetwork-eth0",
		}
		if got := etcdKeys(t, c.endpoints); !slices.Equal(got, want) {
			t.Fatalf("etcd keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// The stored value is the defaulted resource, with identity, without
		// a resourceVersion.
		var stored map[string]any
		if err := json.Unmarshal([]byte(etcdValue(t, c.endpoints, prefix+"ippools/default-ipv4-ippool")), &stored); err != nil {
			t.Fatal(err)
		}
		md := stored["metadata"].(map[string]any)
		spec := stored["spec"].(map[string]any)
		if md["uid"] == nil || md["creationTimestamp"] == nil || md["resourceVersion"] != nil {
			t.Errorf("stored metadata %v", md)
		}
		if spec["blockSize"] != float64(26) || spec["ipipMode"] != "Never" || spec["vxlanMode"] != "Never" || spec["nodeSelector"] != "all()" {
			t.Errorf("stored spec not defaulted: %v", spec)
		}

		// Every kind's -o yaml listing applies back unchanged.
		kinds := []string{"ippools", "profiles", "gnp", "networkpolicies", "weps", "heps", "nodes", "bgppeers", "bgpconfigs", "felixconfigs"}
		for _, k := range kinds {
			before := c.ok("get", k, "-A", "-o", "yaml")
			f := writeFile(t, "rt.yaml", before)
			if out := c.ok("apply", "-f", f); !strings.HasPrefix(out, "Successfully applied") {
				t.Errorf("%s: re-apply printed %q", k, out)
			}
			if after := c.ok("get", k, "-A", "-o", "yaml"); after != before {
				t.Errorf("%s: get -o yaml changed after applying it back:\n%s\n---\n%s", k, before, after)
			}
		}
		// And so does a single resource, through stdin.
		one := c.ok("get", "policy", "allow-web", "-n", "shop", "-o", "yaml")
		if !strings.Contains(one, "kind: NetworkPolicy\n") || strings.Contains(one, "items:") {
			t.Errorf("single get is not a bare resource:\n%s", one)
		}
		if r := c.run(one, "apply", "-f", "-"); r.code != 0 || r.stdout != "Successfully applied 1 'NetworkPolicy' resource(s)\n" {
			t.Errorf("apply from stdin: %+v", r)
		}
		if again := c.ok("get", "policy", "allow-web", "-n", "shop", "-o", "yaml"); again != one {
			t.Errorf("unchanged apply changed the resource:\n%s\n%s", one, again)
		}
	})

	t.Run("MultiDocumentApplyIsAllOrNothing", func(t *testing.T) {
		c := fresh(t)
		stderr := c.fail("apply", "-f", testdata("bad-third.yaml"))
		want := `error: document 3 (NetworkPolicy default/third): spec.ingress[0].destination.ports[1]: invalid port range "90:80": min is greater than max`
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
		if keys := etcdKeys(t, c.endpoints); len(keys) != 0 {
			t.Fatalf("a refused manifest wrote %v", keys)
		}

		// A datastore-level refusal (one resource already exists) also
		// writes nothing of the rest.
		c.ok("apply", "-f", testdata("policy.yaml"))
		before := etcdKeys(t, c.endpoints)
		mixed := writeFile(t, "mixed.yaml", `apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: new-one}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: new-two}
---
`+readTestdata(t, "policy.yaml"))
		stderr = c.fail("create", "-f", mixed)
		if !strings.Contains(stderr, "document 3 (NetworkPolicy shop/allow-web): NetworkPolicy shop/allow-web already exists") ||
			!strings.Contains(stderr, "nothing was written") {
			t.Errorf("create over existing: %q", stderr)
		}
		if after := etcdKeys(t, c.endpoints); !slices.Equal(before, after) {
			t.Fatalf("failed create wrote: before %v after %v", before, after)
		}
		// --skip-exists creates the rest.
		if out := c.ok("create", "-f", mixed, "--skip-exists"); out != "Successfully created 2 resource(s) (1 skipped)\n" {
			t.Errorf("create --skip-exists printed %q", out)
		}
		if n := len(etcdKeys(t, c.endpoints)); n != 3+initKeys {
			t.Errorf("%d keys after create --skip-exists", n)
		}
	})

	t.Run("ErrorsNameDocumentAndField", func(t *testing.T) {
		c := fresh(t)
		bad := writeFile(t, "bad.yaml", `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: ok-pool}
spec: {cidr: 10.0.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: typo}
spec:
  selektor: all()
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: ipip}
spec: {cidr: 10.1.0.0/16, ipip: {enabled: true}}
---
apiVersion: projectcalico.org/v3
kind: Firewall
metadata: {name: x}
`)
		stderr := c.fail("apply", "-f", bad)
		for _, want := range []string{
			`document 2 (GlobalNetworkPolicy typo): spec.selektor: unknown field "selektor"`,
			`document 3 (IPPool ipip): spec.ipip: field must not be set: it is the deprecated v1 form, use ipipMode`,
			`document 4: unknown kind "Firewall"`,
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		if strings.Contains(stderr, "document 1") {
			t.Errorf("a good document was reported:\n%s", stderr)
		}
		if keys := etcdKeys(t, c.endpoints); len(keys) != 0 {
			t.Fatalf("wrote %v", keys)
		}
		// validate needs no datastore and reports the same.
		r := runCalico(t, bin, "", "", "validate", "-f", bad)
		if r.code != 1 || !strings.Contains(r.stderr, `spec.selektor: unknown field "selektor"`) {
			t.Errorf("validate: %+v", r)
		}
		r = runCalico(t, bin, "", "", "validate", "-f", testdata("cluster.yaml"))
		if r.code != 0 || r.stdout != "Successfully validated 12 resource(s)\n" {
			t.Errorf("validate good: %+v", r)
		}
		if stderr := c.fail("apply", "-f", filepath.Join(t.TempDir(), "missing.yaml")); !strings.Contains(stderr, "no such file") {
			t.Errorf("missing file: %q", stderr)
		}
		if stderr := c.fail("apply"); !strings.Contains(stderr, "-f FILE") {
			t.Errorf("no -f: %q", stderr)
		}
	})

	t.Run("ReplaceAndConflicts", func(t *testing.T) {
		c := fresh(t)
		stderr := c.fail("replace", "-f", testdata("policy.yaml"))
		if !strings.Contains(stderr, "NetworkPolicy shop/allow-web does not exist") {
			t.Errorf("replace of missing: %q", stderr)
		}
		c.ok("create", "-f", testdata("policy.yaml"))
		v1 := getJSON(t, c, "np", "allow-web", "-n", "shop")
		md1 := v1["metadata"].(map[string]any)

		// replace with the current resourceVersion succeeds and keeps the
		// identity of the resource.
		current := c.ok("get", "np", "allow-web", "-n", "shop", "-o", "yaml")
		edited := strings.Replace(current, "order: 100", "order: 110", 1)
		c.ok("replace", "-f", writeFile(t, "edit.yaml", edited))
		v2 := getJSON(t, c, "np", "allow-web", "-n", "shop")
		md2 := v2["metadata"].(map[string]any)
		if md2["uid"] != md1["uid"] || md2["creationTimestamp"] != md1["creationTimestamp"] || md2["resourceVersion"] == md1["resourceVersion"] {
			t.Errorf("replace: metadata before %v after %v", md1, md2)
		}
		if v2["spec"].(map[string]any)["order"] != float64(110) {
			t.Errorf("replace did not change order: %v", v2["spec"])
		}

		// The same edit again carries a stale resourceVersion now.
		stale := strings.Replace(current, "order: 100", "order: 120", 1)
		stderr = c.fail("replace", "-f", writeFile(t, "stale.yaml", stale))
		if !strings.Contains(stderr, "conflict") || !strings.Contains(stderr, "resourceVersion "+md1["resourceVersion"].(string)) {
			t.Errorf("stale replace: %q", stderr)
		}
		// apply honours a stale resourceVersion too.
		if stderr := c.fail("apply", "-f", writeFile(t, "stale.yaml", stale)); !strings.Contains(stderr, "conflict") {
			t.Errorf("stale apply: %q", stderr)
		}
		if got := getJSON(t, c, "np", "allow-web", "-n", "shop")["spec"].(map[string]any)["order"]; got != float64(110) {
			t.Errorf("a stale write went through: order %v", got)
		}
		// apply without a resourceVersion updates, keeping uid and creation time.
		c.ok("apply", "-f", testdata("policy-updated.yaml"))
		v3 := getJSON(t, c, "np", "allow-web", "-n", "shop")
		if md3 := v3["metadata"].(map[string]any); md3["uid"] != md1["uid"] || md3["creationTimestamp"] != md1["creationTimestamp"] {
			t.Errorf("apply changed identity: %v vs %v", md3, md1)
		}
		if ports := v3["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["destination"].(map[string]any)["ports"]; fmt.Sprint(ports) != "[80 8080]" {
			t.Errorf("apply did not update: ports %v", ports)
		}
	})

	t.Run("IPPoolRules", func(t *testing.T) {
		c := fresh(t)
		c.ok("apply", "-f", testdata("cluster.yaml"))
		overlap := writeFile(t, "overlap.yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: other}\nspec: {cidr: 10.48.128.0/17}\n")
		if stderr := c.fail("apply", "-f", overlap); !strings.Contains(stderr, "overlaps") || !strings.Contains(stderr, "default-ipv4-ippool") {
			t.Errorf("overlap: %q", stderr)
		}
		moved := writeFile(t, "moved.yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: default-ipv4-ippool}\nspec: {cidr: 10.49.0.0/16}\n")
		if stderr := c.fail("apply", "-f", moved); !strings.Contains(stderr, "spec.cidr: an IP pool's CIDR cannot be changed") {
			t.Errorf("cidr change: %q", stderr)
		}
		// Changing other fields is fine.
		edited := writeFile(t, "nat.yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: default-ipv4-ippool}\nspec: {cidr: 10.48.0.0/16, natOutgoing: false, disabled: true}\n")
		c.ok("apply", "-f", edited)
		if out := c.ok("get", "ippool", "-o", "wide"); !regexp.MustCompile(`default-ipv4-ippool\s+10\.48\.0\.0/16\s+false\s+Never\s+Never\s+true\s+false\s+all\(\)`).MatchString(out) {
			t.Errorf("wide after edit:\n%s", out)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		c := fresh(t)
		c.ok("apply", "-f", testdata("cluster.yaml"))
		if out := c.ok("delete", "gnp", "default-deny"); out != "Successfully deleted 1 'GlobalNetworkPolicy' resource(s)\n" {
			t.Errorf("delete printed %q", out)
		}
		if out := c.ok("delete", "NetworkPolicy", "allow-web", "-n", "shop"); !strings.Contains(out, "deleted 1") {
			t.Errorf("delete -n printed %q", out)
		}
		stderr := c.fail("delete", "policy", "allow-web", "-n", "shop")
		if !strings.Contains(stderr, "NetworkPolicy shop/allow-web does not exist") {
			t.Errorf("missing delete: %q", stderr)
		}
		if out := c.ok("delete", "policy", "allow-web", "-n", "shop", "--skip-not-exists"); !strings.Contains(out, "(1 skipped)") {
			t.Errorf("--skip-not-exists printed %q", out)
		}
		// Deleting one existing and one missing by name deletes neither.
		stderr = c.fail("delete", "profile", "shop-net", "nope")
		if !strings.Contains(stderr, "Profile nope does not exist") {
			t.Errorf("partial delete: %q", stderr)
		}
		if !slices.Contains(etcdKeys(t, c.endpoints), prefix+"profiles/shop-net") {
			t.Fatal("a failed delete removed shop-net")
		}
		// delete -f removes everything the manifest names.
		if out := c.ok("delete", "-f", testdata("cluster.yaml"), "--skip-not-exists"); out != "Successfully deleted 10 resource(s) (2 skipped)\n" {
			t.Errorf("delete -f printed %q", out)
		}
		if keys := etcdKeys(t, c.endpoints); len(keys) != initKeys {
			t.Errorf("left behind %v (want only the %d keys of the initialisation)", keys, initKeys)
		}
		if stderr := c.fail("delete", "-f", testdata("policy.yaml")); !strings.Contains(stderr, "document 1 (NetworkPolicy shop/allow-web): NetworkPolicy shop/allow-web does not exist") {
			t.Errorf("delete -f of missing: %q", stderr)
		}
		if stderr := c.fail("delete", "gnp"); !strings.Contains(stderr, "at least one name") {
			t.Errorf("delete without name: %q", stderr)
		}
	})

	t.Run("GetFormatsAndAliases", func(t *testing.T) {
		c := fresh(t)
		c.ok("apply", "-f", testdata("cluster.yaml"))
		// Every alias of a kind gives the same answer.
		for _, aliases := range [][]string{
			{"ippool", "ippools", "IPPool", "pool", "pools", "ipp"},
			{"networkpolicy", "NetworkPolicies", "policy", "policies", "np", "netpol"},
			{"globalnetworkpolicy", "gnp", "GNPS"},
			{"workloadendpoint", "wep", "weps"},
			{"hostendpoint", "hep", "heps"},
			{"node", "nodes", "no"},
			{"bgppeer", "bgppeers", "bgpp"},
			{"bgpconfiguration", "bgpconfig", "bgpconfigs"},
			{"felixconfiguration", "felixconfig", "felixconfigs"},
			{"profile", "profiles", "pro"},
		} {
			first := c.ok("get", aliases[0], "-A", "-o", "wide")
			for _, a := range aliases[1:] {
				if got := c.ok("get", a, "-A", "-o", "wide"); got != first {
					t.Errorf("get %s differs from get %s:\n%s\n%s", a, aliases[0], got, first)
				}
			}
		}
		tables := map[string]string{
			"ippool":             "NAME                  CIDR           SELECTOR\ndefault-ipv4-ippool   10.48.0.0/16   all()\ndefault-ipv6-ippool   fd00:48::/48   all()\n",
			"np":                 "NAME       TIER\nallow-db   default\n",
			"gnp -o wide":        "NAME           TIER      ORDER   SELECTOR\ndefault-deny   default   2000    all()\n",
			"np -A":              "NAMESPACE   NAME        TIER\ndefault     allow-db    default\nshop        allow-web   default\n",
			"np -n shop -o wide": "NAME        TIER      ORDER   SELECTOR\nallow-web   default   100     role == 'web'\n",
			"wep -A -o wide":     "NAMESPACE   NAME                               WORKLOAD   NODE    NETWORKS       INTERFACE         PROFILES   NATS\nshop        host1-libnetwork-libnetwork-eth0   web1       host1   10.48.0.5/32   cali1a2b3c4d5e6   shop-net   \n",
			"hep -o wide":        "NAME         NODE    INTERFACE   IPS          PROFILES\nhost1-eth0   host1   eth0        192.0.2.10   \n",
			"nodes -o wide":      "NAME    ASN       IPV4            IPV6\nhost1   (64512)   192.0.2.10/24   \n",
			"bgppeer":            "NAME   PEERIP      NODE       ASN\ntor    192.0.2.1   (global)   64500\n",
			"bgpconfig":          "NAME      LOGSEVERITY   MESHENABLED   ASNUMBER\ndefault   Info          true          64512\n",
			"felixconfig":        "NAME\ndefault\n",
			"profile -o wide":    "NAME                          LABELS\nshop-net                      network=shop\nprojectcalico-default-allow   \n",
			"gnp -o name":        "globalnetworkpolicy/default-deny\n",
		}
		for args, want := range tables {
			if got := c.ok(append([]string{"get"}, strings.Fields(args)...)...); got != want {
				t.Errorf("get %s:\n%q\nwant\n%q", args, got, want)
			}
		}
		// JSON listing is a typed list with a resourceVersion.
		var list struct {
			APIVersion, Kind string
			Metadata         struct{ ResourceVersion string }
			Items            []map[string]any
		}
		if err := json.Unmarshal([]byte(c.ok("get", "pools", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		if list.Kind != "IPPoolList" || list.APIVersion != "projectcalico.org/v3" || list.Metadata.ResourceVersion == "" || len(list.Items) != 2 {
			t.Errorf("json list: %+v", list)
		}
		// YAML listing decodes as the same thing.
		var ylist map[string]any
		if err := yaml.Unmarshal([]byte(c.ok("get", "pools", "-o", "yaml")), &ylist); err != nil || ylist["kind"] != "IPPoolList" {
			t.Errorf("yaml list: %v %v", ylist["kind"], err)
		}
		// Named gets: several names list; a missing name fails.
		if out := c.ok("get", "ippool", "default-ipv4-ippool", "default-ipv6-ippool", "-o", "name"); out != "ippool/default-ipv4-ippool\nippool/default-ipv6-ippool\n" {
			t.Errorf("named get: %q", out)
		}
		if stderr := c.fail("get", "gnp", "nope"); !strings.Contains(stderr, "GlobalNetworkPolicy nope not found") {
			t.Errorf("missing get: %q", stderr)
		}
		if stderr := c.fail("get", "np", "allow-web"); !strings.Contains(stderr, "NetworkPolicy default/allow-web not found") {
			t.Errorf("wrong namespace get: %q", stderr)
		}
		if stderr := c.fail("get", "firewalls"); !strings.Contains(stderr, `unknown resource type "firewalls"`) {
			t.Errorf("unknown kind: %q", stderr)
		}
		if stderr := c.fail("get", "gnp", "-o", "xml"); !strings.Contains(stderr, `unknown output format "xml"`) {
			t.Errorf("bad -o: %q", stderr)
		}
		// Empty listings print just the header (table) or an empty list.
		c.ok("delete", "bgppeer", "tor")
		if out := c.ok("get", "bgppeers"); out != "NAME   PEERIP   NODE   ASN\n" {
			t.Errorf("empty table %q", out)
		}
		if out := c.ok("get", "bgppeers", "-o", "json"); !strings.Contains(out, `"items": []`) {
			t.Errorf("empty json %q", out)
		}
	})

	t.Run("ClusterInformation", func(t *testing.T) {
		// The datastore's initialisation writes Calico's "default"; it is
		// read, patched (as Calico's migration docs do) and keeps its GUID.
		c := fresh(t)
		c.ok("apply", "-f", testdata("cluster.yaml"))
		before := c.ok("get", "clusterinfo", "default", "-o", "yaml")
		guid := regexp.MustCompile(`clusterGUID: (\S+)`).FindStringSubmatch(before)
		if guid == nil || !strings.Contains(before, "datastoreReady: true") || !strings.Contains(before, "kind: ClusterInformation") {
			t.Fatalf("get clusterinformation:\n%s", before)
		}
		r := c.run("", "patch", "clusterinformation", "default", "-p", `{"spec":{"datastoreReady":false}}`)
		if r.code != 0 || !strings.Contains(r.stderr, "spec.datastoreReady: false is stored, but nodes here do not pause") {
			t.Fatalf("patch: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		after := c.ok("get", "clusterinformations", "-o", "yaml")
		if !strings.Contains(after, "datastoreReady: false") || !strings.Contains(after, "clusterGUID: "+guid[1]) {
			t.Fatalf("after patch:\n%s", after)
		}
	})

	t.Run("UnreachableDatastore", func(t *testing.T) {
		start := time.Now()
		r := runCalico(t, bin, "http://127.0.0.1:1", "", "get", "gnp")
		took := time.Since(start)
		if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("unreachable: %+v", r)
		}
		if took > 10*time.Second {
			t.Errorf("took %v to give up", took)
		}
		// A bad manifest is reported before the datastore is contacted.
		r = runCalico(t, bin, "http://127.0.0.1:1", "", "apply", "-f", testdata("bad-third.yaml"))
		if r.code != 1 || !strings.Contains(r.stderr, "document 3") {
			t.Errorf("bad manifest, no datastore: %+v", r)
		}
	})
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(testdata(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func getJSON(t *testing.T, c resCLI, args ...string) map[string]any {
	t.Helper()
	var m map[string]any
	out := c.ok(append(append([]string{"get"}, args...), "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return m
}

// policyManifest is n NetworkPolicies in namespace ns, each with a
// selector and two rules, as one multi-document manifest.
func policyManifest(ns string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: policy-%04d
  namespace: %s
spec:
  order: %d
  selector: app == 'app-%d' && tier in {'web', 'api'}
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: role == 'client-%d'
    destination:
      ports: [80, 443, "8000:8100"]
  - action: Deny
    source:
      nets: [10.%d.0.0/16]
`, i, ns, i, i, i, i%256)
	}
	return b.String()
}

// runInProcess runs the calico command tree in this process, the code path
// of the binary without the process start.
func runInProcess(args ...string) error {
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return root.Execute()
}

// BenchmarkApply1000Policies applies a manifest of 1,000 NetworkPolicies
// (one transaction); every iteration creates 1,000 new keys.
func BenchmarkApply1000Policies(b *testing.B) {
	ep := strings.Join(etcdtest.Start(b), ",")
	dir := b.TempDir()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		f := filepath.Join(dir, fmt.Sprintf("p%d.yaml", i))
		if err := os.WriteFile(f, []byte(policyManifest(fmt.Sprintf("bench-%d", i), 1000)), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := runInProcess("apply", "-f", f, "--etcd-endpoints", ep); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply1000PoliciesUnchanged re-applies the same 1,000 policies:
// validation and a comparison with the stored values, no writes.
func BenchmarkApply1000PoliciesUnchanged(b *testing.B) {
	ep := strings.Join(etcdtest.Start(b), ",")
	f := filepath.Join(b.TempDir(), "p.yaml")
	if err := os.WriteFile(f, []byte(policyManifest("bench", 1000)), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := runInProcess("apply", "-f", f, "--etcd-endpoints", ep); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := runInProcess("apply", "-f", f, "--etcd-endpoints", ep); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet1000Policies lists 1,000 policies as a table and as YAML.
func BenchmarkGet1000Policies(b *testing.B) {
	ep := strings.Join(etcdtest.Start(b), ",")
	f := filepath.Join(b.TempDir(), "p.yaml")
	if err := os.WriteFile(f, []byte(policyManifest("bench", 1000)), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := runInProcess("apply", "-f", f, "--etcd-endpoints", ep); err != nil {
		b.Fatal(err)
	}
	for _, format := range []string{"ps", "yaml"} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				if err := runInProcess("get", "np", "-n", "bench", "-o", format, "--etcd-endpoints", ep); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidate1000Policies is the pure part of apply: decode,
// default and validate the manifest.
func BenchmarkValidate1000Policies(b *testing.B) {
	f := filepath.Join(b.TempDir(), "p.yaml")
	if err := os.WriteFile(f, []byte(policyManifest("bench", 1000)), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := runInProcess("validate", "-f", f); err != nil {
			b.Fatal(err)
		}
	}
}

// marshalYAML must print what sigs.k8s.io/yaml prints, so that manifests
// look the same whichever path wrote them.
func TestMarshalYAMLMatchesSigsYAML(t *testing.T) {
	docs, err := api.DecodeAndValidate([]byte(readTestdata(t, "cluster.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	var items []api.Resource
	for _, d := range docs {
		items = append(items, d.Resource)
	}
	order := 1.5
	items[3].(*api.GlobalNetworkPolicy).Spec.Order = &order
	big := api.ASNumber(4294967295)
	items[9].(*api.BGPConfiguration).Spec.ASNumber = &big
	obj := map[string]any{"items": items, "empty": []string{}, "none": nil, "s": "80:90", "b": "true"}
	want, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	got, err := marshalYAML(obj)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("marshalYAML:\n%s\nsigs.k8s.io/yaml:\n%s", got, want)
	}
}

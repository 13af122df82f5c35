package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/testutil"
)

// calicoctl's commands and formats, run in process against one real etcd
// (subtests share it and use their own resources).
func TestCalicoctlCommands(t *testing.T) {
	eps := etcdtest.Start(t)
	ep := "--etcd-endpoints=" + strings.Join(eps, ",")
	st, err := datastore.NewEtcd(context.Background(), datastore.Config{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	run := func(args ...string) (string, string, error) {
		t.Helper()
		return runRoot(t, append(args, ep)...)
	}
	ok := func(t *testing.T, args ...string) (string, string) {
		t.Helper()
		out, errOut, err := run(args...)
		if err != nil {
			t.Fatalf("calico %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out, errOut
	}
	fail := func(t *testing.T, want string, args ...string) {
		t.Helper()
		out, errOut, err := run(args...)
		if err == nil {
			t.Fatalf("calico %s: succeeded, want error %q\n%s", strings.Join(args, " "), want, out)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("calico %s: error %q lacks %q\n%s", strings.Join(args, " "), err, want, errOut)
		}
	}
	stored := func(t *testing.T, key string) map[string]any {
		t.Helper()
		kv, err := st.Get(context.Background(), key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		var m map[string]any
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	apply := func(t *testing.T, manifest string) (string, string) {
		t.Helper()
		return ok(t, "apply", "-f", writeFile(t, "m.yaml", manifest))
	}

	t.Run("NoEffectFieldsStoredWithWarning", func(t *testing.T) {
		out, errOut := apply(t, `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec:
  bpfEnabled: true
  bpfLogLevel: ""
  wireguardEnabled: true
  routeTableRanges: [{min: 1, max: 250}]
  chainInsertMode: Append
  logSeverityScreen: Info
`)
		if out != "Successfully applied 1 'FelixConfiguration' resource(s)\n" {
			t.Errorf("stdout %q", out)
		}
		for _, w := range []string{
			"warning: FelixConfiguration default: spec.bpfEnabled: stored, but has no effect here: the eBPF dataplane",
			"warning: FelixConfiguration default: spec.wireguardEnabled: stored, but has no effect here: WireGuard",
			"warning: FelixConfiguration default: spec.routeTableRanges: stored, but has no effect here",
			"warning: FelixConfiguration default: spec.chainInsertMode: stored, but has no effect here: this dataplane is nftables",
		} {
			if !strings.Contains(errOut, w) {
				t.Errorf("stderr lacks %q:\n%s", w, errOut)
			}
		}
		if strings.Contains(errOut, "bpfLogLevel") || strings.Contains(errOut, "logSeverityScreen") {
			t.Errorf("warned about a field that asks for nothing or acts:\n%s", errOut)
		}
		spec := stored(t, prefix+"felixconfigurations/default")["spec"].(map[string]any)
		if spec["bpfEnabled"] != true || spec["bpfLogLevel"] != "" || spec["chainInsertMode"] != "Append" {
			t.Errorf("stored spec %v", spec)
		}
		y, _ := ok(t, "get", "felixconfig", "default", "-o", "yaml")
		for _, w := range []string{"bpfEnabled: true", "bpfLogLevel: \"\"", "wireguardEnabled: true", "- max: 250\n    min: 1", "chainInsertMode: Append"} {
			if !strings.Contains(y, w) {
				t.Errorf("get -o yaml lacks %q:\n%s", w, y)
			}
		}
		// get -o yaml applies back unchanged (no write: same stored value).
		kv1, _ := st.Get(context.Background(), prefix+"felixconfigurations/default")
		ok(t, "apply", "-f", writeFile(t, "back.yaml", y))
		kv2, _ := st.Get(context.Background(), prefix+"felixconfigurations/default")
		if kv1.Revision != kv2.Revision {
			t.Errorf("applying get -o yaml rewrote the resource")
		}
		// An invalid value is refused with the field named; nothing written.
		_, _, err := run("apply", "-f", writeFile(t, "bad.yaml", `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {bpfEnabled: true, iptablesBackend: nft}
`))
		if err == nil || !strings.Contains(err.Error(), `spec.iptablesBackend: invalid value "nft" (did you mean "NFT"?)`) {
			t.Fatalf("bad value: %v", err)
		}
		if kv3, _ := st.Get(context.Background(), prefix+"felixconfigurations/default"); kv3.Revision != kv2.Revision {
			t.Errorf("a refused manifest changed the stored resource")
		}
		// Leaving a table field out of a manifest removes it.
		apply(t, "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {bpfEnabled: false}\n")
		spec = stored(t, prefix+"felixconfigurations/default")["spec"].(map[string]any)
		if spec["bpfEnabled"] != false || spec["wireguardEnabled"] != nil || spec["routeTableRanges"] != nil {
			t.Errorf("after apply without them: %v", spec)
		}
	})

	t.Run("KubernetesOnlySelectors", func(t *testing.T) {
		// Stored and evaluated as Calico does (never refused), with a
		// warning saying what they match here.
		manifest := `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: h24-kube}
spec:
  namespaceSelector: env == 'prod'
  serviceAccountSelector: projectcalico.org/name == 'api'
  ingress:
  - action: Allow
    source:
      namespaceSelector: global()
  - action: Allow
    source:
      serviceAccounts: {names: [web], selector: "team == 'a'"}
  - action: Allow
    source:
      services: {name: frontend, namespace: shop}
`
		out, errOut := apply(t, manifest)
		if out != "Successfully applied 1 'GlobalNetworkPolicy' resource(s)\n" {
			t.Errorf("stdout %q", out)
		}
		for _, w := range []string{
			"spec.namespaceSelector: label env is never set here: namespaces have only the label projectcalico.org/name",
			"spec.serviceAccountSelector: containers here have no service account",
			"spec.ingress[1].source.serviceAccounts: containers here have no service account",
			"spec.ingress[1].source.serviceAccounts.selector: label team is never set here",
			"spec.ingress[2].source.services: there are no Kubernetes Services here, so this rule matches no traffic",
		} {
			if !strings.Contains(errOut, "warning: GlobalNetworkPolicy h24-kube: "+w) {
				t.Errorf("stderr lacks %q:\n%s", w, errOut)
			}
		}
		if strings.Contains(errOut, "ingress[0]") {
			t.Errorf("warned about namespaceSelector global(), which means here what it means in Calico:\n%s", errOut)
		}
		y, _ := ok(t, "get", "globalnetworkpolicy", "h24-kube", "-o", "yaml")
		for _, w := range []string{"namespaceSelector: env == 'prod'", "serviceAccountSelector: projectcalico.org/name == 'api'",
			"namespaceSelector: global()", "- web", "selector: team == 'a'", "name: frontend", "namespace: shop"} {
			if !strings.Contains(y, w) {
				t.Errorf("get -o yaml lacks %q:\n%s", w, y)
			}
		}
		// Calico's own checks still refuse, naming the field; nothing written.
		fail(t, "spec.ingress[0].source.services: cannot specify selector and services on the same side of a rule",
			"apply", "-f", writeFile(t, "bad.yaml", strings.Replace(manifest, "namespaceSelector: global()", "namespaceSelector: global()\n      services: {name: x, namespace: shop}\n      selector: a == 'b'", 1)))
		y2, _ := ok(t, "get", "globalnetworkpolicy", "h24-kube", "-o", "yaml")
		if y2 != y {
			t.Errorf("a refused manifest changed the policy:\n%s\n%s", y, y2)
		}
		ok(t, "delete", "globalnetworkpolicy", "h24-kube")
	})

	t.Run("Patch", func(t *testing.T) {
		apply(t, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: patched}\nspec: {cidr: 10.77.0.0/16, namespaceSelector: all(), allowedUses: [Workload]}\n")
		out, errOut := ok(t, "patch", "ippool", "patched", "-p", `{"spec":{"natOutgoing":true,"disabled":true}}`)
		if out != "Successfully patched 1 'IPPool' resource\n" {
			t.Errorf("patch printed %q", out)
		}
		if !strings.Contains(errOut, "spec.namespaceSelector: stored, but has no effect here") {
			t.Errorf("patch did not warn about the stored no-effect field: %q", errOut)
		}
		spec := stored(t, prefix+"ippools/patched")["spec"].(map[string]any)
		if spec["natOutgoing"] != true || spec["disabled"] != true || spec["namespaceSelector"] != "all()" {
			t.Errorf("after patch: %v", spec)
		}
		ok(t, "patch", "ippools", "patched", "--patch", `{"spec":{"natOutgoing":null,"namespaceSelector":null}}`, "--type", "merge")
		spec = stored(t, prefix+"ippools/patched")["spec"].(map[string]any)
		if _, set := spec["natOutgoing"]; set || spec["namespaceSelector"] != nil {
			t.Errorf("null did not remove: %v", spec)
		}
		before, _ := st.Get(context.Background(), prefix+"ippools/patched")
		fail(t, `spec.vxlanMode: invalid vxlanMode "sometimes"`, "patch", "ippool", "patched", "-p", `{"spec":{"vxlanMode":"sometimes"}}`)
		fail(t, "metadata.name cannot be changed", "patch", "ippool", "patched", "-p", `{"metadata":{"name":"other"}}`)
		fail(t, "--type json (JSON Patch, RFC 6902) is not implemented", "patch", "ippool", "patched", "-p", `[]`, "--type", "json")
		fail(t, "--patch: want a JSON object", "patch", "ippool", "patched", "-p", `[1]`)
		fail(t, "not found", "patch", "ippool", "nosuch", "-p", `{"spec":{}}`)
		if after, _ := st.Get(context.Background(), prefix+"ippools/patched"); after.Revision != before.Revision {
			t.Errorf("a refused patch wrote")
		}
		// Namespaced, by the client name of a policy (stored as default.<name>).
		apply(t, "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: web, namespace: shop}\nspec: {selector: all()}\n")
		ok(t, "patch", "networkpolicy", "web", "-n", "shop", "-p", `{"spec":{"order":100}}`)
		if o := stored(t, prefix+"networkpolicies/shop/default.web")["spec"].(map[string]any)["order"]; o != float64(100) {
			t.Errorf("patched policy order %v", o)
		}
	})

	t.Run("Label", func(t *testing.T) {
		apply(t, "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: lbl-node}\nspec: {wireguard: {interfaceIPv4Address: 10.9.9.9}}\n")
		if out, _ := ok(t, "label", "nodes", "lbl-node", "cluster=frontend"); out != "Successfully set label cluster on nodes lbl-node\n" {
			t.Errorf("label set: %q", out)
		}
		fail(t, "key cluster is already present. please use '--overwrite'", "label", "nodes", "lbl-node", "cluster=backend")
		if out, _ := ok(t, "label", "nodes", "lbl-node", "cluster=backend", "--overwrite"); out != "Successfully updated label cluster on nodes lbl-node\n" {
			t.Errorf("label overwrite: %q", out)
		}
		labels := stored(t, prefix+"nodes/lbl-node")["metadata"].(map[string]any)["labels"].(map[string]any)
		if labels["cluster"] != "backend" {
			t.Errorf("labels %v", labels)
		}
		if spec := stored(t, prefix+"nodes/lbl-node")["spec"].(map[string]any); spec["wireguard"] == nil {
			t.Errorf("label dropped spec.wireguard: %v", spec)
		}
		ok(t, "label", "nodes", "lbl-node", "zone=a")
		if out, _ := ok(t, "label", "nodes", "lbl-node", "cluster", "--remove"); out != "Successfully removed label cluster from nodes lbl-node\n" {
			t.Errorf("label remove: %q", out)
		}
		ok(t, "label", "node", "lbl-node", "zone-")
		if md := stored(t, prefix+"nodes/lbl-node")["metadata"].(map[string]any); md["labels"] != nil {
			t.Errorf("labels left: %v", md["labels"])
		}
		fail(t, "cannot remove label of nodes lbl-node, key cluster does not exist", "label", "nodes", "lbl-node", "cluster", "--remove")
		fail(t, "invalid label a=b=c", "label", "nodes", "lbl-node", "a=b=c")
		fail(t, "metadata.labels", "label", "nodes", "lbl-node", "bad key!=x")
		// A workload endpoint in a namespace.
		apply(t, `apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-libnetwork-libnetwork-eth0, namespace: shop}
spec: {node: node1, orchestrator: libnetwork, workload: web1, endpoint: eth0, interfaceName: cali0ef24ba, ipNetworks: [192.168.0.7/32]}
`)
		ok(t, "label", "wep", "node1-libnetwork-libnetwork-eth0", "-n", "shop", "app=web")
		labels = stored(t, prefix+"workloadendpoints/shop/node1-libnetwork-libnetwork-eth0")["metadata"].(map[string]any)["labels"].(map[string]any)
		if labels["app"] != "web" {
			t.Errorf("wep labels %v", labels)
		}
	})

	t.Run("OutputFormats", func(t *testing.T) {
		apply(t, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: fmt-a}\nspec: {cidr: 10.81.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: fmt-b}\nspec: {cidr: 10.82.0.0/16, vxlanMode: Always}\n")
		out, _ := ok(t, "get", "ippool", "-o", `go-template={{range .}}{{range .Items}}{{.ObjectMeta.Name}}={{.Spec.CIDR}} {{end}}{{end}}`)
		if !strings.Contains(out, "fmt-a=10.81.0.0/16 fmt-b=10.82.0.0/16") {
			t.Errorf("go-template listing: %q", out)
		}
		out, _ = ok(t, "get", "ippool", "fmt-b", "-o", `go-template={{range .}}{{.Name}} {{.Spec.VXLANMode}} {{join .Labels ","}}{{end}}`)
		if out != "fmt-b Always " {
			t.Errorf("go-template by name: %q", out)
		}
		tf := writeFile(t, "t.tmpl", `{{range .}}{{.Kind}}:{{len .Items}}{{end}}`)
		out, _ = ok(t, "get", "networkpolicy", "-n", "shop", "-o", "go-template-file="+tf)
		if out != "NetworkPolicyList:1" {
			t.Errorf("go-template-file: %q", out)
		}
		out, _ = ok(t, "get", "ippool", "fmt-a", "fmt-b", "-o", "custom-columns=NAME,CIDR,VXLANMODE")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME CIDR VXLANMODE" ||
			strings.Join(strings.Fields(lines[2]), " ") != "fmt-b 10.82.0.0/16 Always" {
			t.Errorf("custom-columns:\n%s", out)
		}
		fail(t, "unknown heading COLOUR, valid values are: NAME", "get", "ippool", "-o", "custom-columns=NAME,COLOUR")
		fail(t, "need to specify a template", "get", "ippool", "-o", "go-template=")
		fail(t, "unknown output format", "get", "ippool", "-o", "xml")
		fail(t, "-o go-template", "get", "ippool", "-o", "go-template={{.Nope")
	})

	t.Run("IPAMShowFlags", func(t *testing.T) {
		if out, _ := ok(t, "ipam", "show", "--show-configuration"); !strings.Contains(out, "StrictAffinity") || !strings.Contains(out, "AutoAllocateBlocks") {
			t.Errorf("--show-configuration: %q", out)
		}
		out, _ := ok(t, "ipam", "configure", "--strictaffinity=true")
		if !strings.Contains(out, "Successfully set StrictAffinity to: true") {
			t.Errorf("configure: %q", out)
		}
		kv, err := st.Get(context.Background(), ipam.ConfigKey)
		if err != nil || !strings.Contains(string(kv.Value), `"strict_affinity":true`) {
			t.Errorf("config key %s: %s %v", ipam.ConfigKey, kv.Value, err)
		}
		if out, _ := ok(t, "ipam", "show", "--show-configuration"); !regexpMatch(`StrictAffinity\s+true`, out) {
			t.Errorf("--show-configuration after configure: %q", out)
		}
		ok(t, "ipam", "configure", "--strictaffinity=false")
		// host-b takes an address in host-a's block: borrowed.
		apply(t, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: borrow}\nspec: {cidr: 10.90.0.0/24, blockSize: 28}\n")
		ok(t, "ipam", "assign", "--handle", "a1", "--node", "host-a", "--pool", "10.90.0.0/24")
		ok(t, "ipam", "assign", "--handle", "b1", "--node", "host-b", "--ip", "10.90.0.9", "--note", "borrowed one")
		out, _ = ok(t, "ipam", "show", "--show-borrowed")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "IP BORROWING-NODE BLOCK BLOCK OWNER TYPE ALLOCATED-TO" ||
			!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "10.90.0.9 host-b 10.90.0.0/28 host-a") {
			t.Errorf("--show-borrowed:\n%s", out)
		}
		fail(t, "cannot be combined", "ipam", "show", "--show-borrowed", "--show-blocks")
		if out, _ := ok(t, "ipam", "release", "--ip", "10.90.0.9"); out != "10.90.0.9\n" {
			t.Errorf("release --ip: %q", out)
		}
		if out, _ := ok(t, "ipam", "show", "--show-borrowed"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("--show-borrowed after release:\n%s", out)
		}
	})

	t.Run("CalicoctlTree", func(t *testing.T) {
		root := NewCalicoctlRoot()
		have := map[string]bool{}
		for _, c := range root.Commands() {
			have[c.Name()] = true
			if c.Name() == "ipam" {
				for _, sc := range c.Commands() {
					if sc.Name() == "assign" {
						t.Errorf("calicoctl ipam has no assign")
					}
				}
			}
		}
		for _, want := range []string{"apply", "create", "replace", "delete", "get", "patch", "label", "validate", "ipam", "node", "version"} {
			if !have[want] {
				t.Errorf("calicoctl tree lacks %s", want)
			}
		}
		for _, not := range []string{"lab", "container", "selector", "datastore"} {
			if have[not] {
				t.Errorf("calicoctl tree has %s, which calicoctl does not", not)
			}
		}
		for _, a := range []string{"calicoctl", "/usr/local/bin/calicoctl", "./calicoctl"} {
			if !IsCalicoctl(a) {
				t.Errorf("IsCalicoctl(%q) = false", a)
			}
		}
		if IsCalicoctl("/usr/bin/calico") || IsCalicoctl("calicoctl-old") {
			t.Errorf("IsCalicoctl too eager")
		}
	})

	// The binary invoked through a symlink named calicoctl: calicoctl's
	// tree, its config file (-c) and DATASTORE_TYPE.
	t.Run("SymlinkMode", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds the binary")
		}
		link := filepath.Join(t.TempDir(), "calicoctl")
		if err := os.Symlink(testutil.CalicoBin(t), link); err != nil {
			t.Fatal(err)
		}
		cfg := writeFile(t, "calicoctl.cfg", "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: "+strings.Join(eps, ",")+"\n")
		runLink := func(env []string, args ...string) (string, string, int) {
			cmd := exec.Command(link, args...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			code := 0
			if xe, ok := err.(*exec.ExitError); ok {
				code = xe.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return out.String(), errOut.String(), code
		}
		out, errOut, code := runLink([]string{"DATASTORE_TYPE=etcdv3"}, "get", "ippools", "-c", cfg, "-o", "custom-columns=NAME")
		if code != 0 || !strings.Contains(out, "fmt-a") {
			t.Errorf("calicoctl get -c: %d %q %q", code, out, errOut)
		}
		_, errOut, code = runLink([]string{"DATASTORE_TYPE=kubernetes"}, "get", "ippools", "-c", cfg)
		if code != 1 || !strings.Contains(errOut, "DATASTORE_TYPE=kubernetes is not supported") {
			t.Errorf("DATASTORE_TYPE=kubernetes: %d %q", code, errOut)
		}
		_, errOut, code = runLink(nil, "lab", "status")
		if code == 0 || !strings.Contains(errOut, `unknown command "lab" for "calicoctl"`) {
			t.Errorf("calicoctl lab: %d %q", code, errOut)
		}
		out, _, code = runLink(nil, "--help")
		if code != 0 || !strings.Contains(out, "calicoctl") || strings.Contains(out, "container") {
			t.Errorf("calicoctl --help: %d %q", code, out)
		}
	})
}

func regexpMatch(re, s string) bool {
	return regexp.MustCompile(re).MatchString(s)
}

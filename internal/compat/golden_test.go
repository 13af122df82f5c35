package compat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/compat"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/ipam"
	"sigs.k8s.io/yaml"
)

func yamlToJSON(t *testing.T, y []byte) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// The golden data under testdata/calicoctl-v3.31.7 is what the real
// calicoctl wrote for each manifest (see its README.md). These tests need
// no calicoctl: they check that we read what it wrote, and write the same
// for the same manifest.

const goldenDir = "testdata/calicoctl-v3.31.7"

type kvPair struct{ key, value string }

// readKV reads a file of alternating key and value lines (etcdctl get).
func readKV(t *testing.T, path string) []kvPair {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines)%2 != 0 {
		t.Fatalf("%s: odd number of lines", path)
	}
	var out []kvPair
	for i := 0; i < len(lines); i += 2 {
		out = append(out, kvPair{lines[i], lines[i+1]})
	}
	return out
}

// cases are the manifests with the key calicoctl stored each under.
func cases(t *testing.T) []string {
	ms, err := filepath.Glob(filepath.Join(goldenDir, "manifests", "*.yaml"))
	if err != nil || len(ms) == 0 {
		t.Fatalf("no golden manifests: %v", err)
	}
	sort.Strings(ms)
	return ms
}

func kvFor(manifest string) string {
	return filepath.Join(goldenDir, strings.TrimSuffix(filepath.Base(manifest), ".yaml")+".kv")
}

// manifestKey is the key of a manifest's resource as we store it.
func manifestKey(t *testing.T, r api.Resource) string {
	m := r.GetObjectMeta()
	return datastore.ResourceKey(api.Info(r).Plural, m.Namespace, api.StoredName(r.Kind(), m.Name))
}

// normalize parses a stored value and drops what differs between any two
// writers: uid, creationTimestamp, a cluster GUID.
func normalize(t *testing.T, v string) any {
	t.Helper()
	var obj map[string]any
	d := json.NewDecoder(strings.NewReader(v))
	d.UseNumber()
	if err := d.Decode(&obj); err != nil {
		t.Fatalf("value %s: %v", v, err)
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		delete(md, "uid")
		delete(md, "creationTimestamp")
	}
	if spec, ok := obj["spec"].(map[string]any); ok && obj["kind"] == "ClusterInformation" {
		if g, _ := spec["clusterGUID"].(string); len(g) == 32 {
			spec["clusterGUID"] = "<guid>"
		}
	}
	return obj
}

func show(v any) string { b, _ := json.Marshal(v); return string(b) }

// decodeManifest decodes one of the golden manifests with our strict
// decoder; ok is false for manifests with fields this project does not know
// (they are covered by TestGoldenUpdateKeepsUnknownFields).
func decodeManifest(t *testing.T, path string) (api.Resource, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := api.DecodeAndValidate(data)
	if err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return nil, false
		}
		t.Fatalf("%s: %v", path, err)
	}
	return docs[0].Resource, true
}

// TestGoldenKeys: we compute calicoctl's key for every manifest, and read
// its value back to what the manifest says (client name, spec).
func TestGoldenKeysAndRead(t *testing.T) {
	n := 0
	for _, m := range cases(t) {
		t.Run(filepath.Base(m), func(t *testing.T) {
			data, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := api.DecodeDocuments(data) // no validation: unknown fields are reported below
			var r api.Resource
			strictOK := err == nil
			if strictOK {
				r = docs[0].Resource
			} else {
				// A manifest with fields we do not know: decode leniently
				// for its identity.
				r = lenient(t, data)
			}
			api.Default(r)
			key := manifestKey(t, r)
			var stored *kvPair
			for _, kv := range readKV(t, kvFor(m)) {
				if kv.key == key {
					stored = &kv
				}
			}
			if stored == nil {
				t.Fatalf("calicoctl did not store %s at %s; it wrote %v", api.Ident(r), key, readKV(t, kvFor(m)))
			}
			_, _, sname, _ := datastore.ParseResourceKey(stored.key)
			got, err := api.DecodeStored(r.Kind(), sname, []byte(stored.value), 7)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetObjectMeta().Name != r.GetObjectMeta().Name {
				t.Errorf("name read back: %q, manifest %q", got.GetObjectMeta().Name, r.GetObjectMeta().Name)
			}
			if got.GetObjectMeta().ResourceVersion != "7" {
				t.Errorf("resourceVersion %q, want the key's revision 7", got.GetObjectMeta().ResourceVersion)
			}
			if api.IsTiered(r.Kind()) {
				tier := api.PolicySpecOf(r).Tier
				if tier == "" {
					tier = api.DefaultTier
				}
				if got.GetObjectMeta().Labels[api.LabelTier] != tier {
					t.Errorf("labels %v: want calicoctl's %s=%s", got.GetObjectMeta().Labels, api.LabelTier, tier)
				}
			}
			if a := got.GetObjectMeta().Annotations[api.MetadataAnnotation]; a != "" {
				t.Errorf("annotation %s=%s shown to the user; calicoctl hides it", api.MetadataAnnotation, a)
			}
			if strictOK {
				wantSpec := specOf(t, r)
				gotSpec := specOf(t, got)
				if api.IsTiered(r.Kind()) {
					delete(gotSpec, "tier")
					delete(wantSpec, "tier")
				}
				if !reflect.DeepEqual(gotSpec, wantSpec) {
					t.Errorf("spec read back:\n got %s\nwant %s", show(gotSpec), show(wantSpec))
				}
			}
			n++
		})
	}
	t.Logf("%d golden cases read", n)
}

func lenient(t *testing.T, yamlData []byte) api.Resource {
	t.Helper()
	var tm struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	j := yamlToJSON(t, yamlData)
	if err := json.Unmarshal(j, &tm); err != nil {
		t.Fatal(err)
	}
	r, err := api.Unmarshal(tm.Kind, j)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func specOf(t *testing.T, r api.Resource) map[string]any {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	spec, _ := obj["spec"].(map[string]any)
	return spec
}

// TestGoldenWrite applies each manifest this project can decode with our
// own CLI to an empty etcd, and compares every key written (the manifest's
// and the initialisation's) with what calicoctl wrote.
func TestGoldenWrite(t *testing.T) {
	ep := strings.Join(etcdtest.Start(t), ",")
	st := etcdtest.Store(t, strings.Split(ep, ","))
	ctx := context.Background()
	want := map[string]string{}
	applied := 0
	for _, m := range cases(t) {
		if _, ok := decodeManifest(t, m); !ok {
			continue
		}
		for _, kv := range readKV(t, kvFor(m)) {
			want[kv.key] = kv.value
		}
		root := cli.NewRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"apply", "-f", m, "--etcd-endpoints", ep})
		if err := root.Execute(); err != nil {
			t.Fatalf("calico apply -f %s: %v\n%s", m, err, out.String())
		}
		applied++
	}
	kvs, _, err := st.List(ctx, datastore.ResourcesRoot)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range kvs {
		got[kv.Key] = string(kv.Value)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("calicoctl wrote %s; we did not", k)
			continue
		}
		if gn, wn := normalize(t, g), normalize(t, w); !reflect.DeepEqual(gn, wn) {
			t.Errorf("%s:\n ours      %s\n calicoctl %s", k, show(gn), show(wn))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != compat.KubeControllersKey {
			t.Errorf("we wrote %s; calicoctl did not", k)
		}
	}
	t.Logf("%d manifests applied, %d keys compared", applied, len(want))
}

// TestGoldenUpdateKeepsUnknownFields: a resource calicoctl wrote with
// fields this project does not know keeps them when we update it.
func TestGoldenUpdateKeepsUnknownFields(t *testing.T) {
	for _, tc := range []struct {
		file, kind, name string
		change           func(api.Resource)
		keep             []string // JSON paths (dot separated) that must survive
	}{
		{"06-felixconfig.kv", api.KindFelixConfiguration, "default",
			func(r api.Resource) { r.(*api.FelixConfiguration).Spec.LogSeverityScreen = "Debug" },
			[]string{"spec.bpfLogLevel", "spec.bpfConnectTimeLoadBalancing", "spec.bpfHostNetworkedNATWithoutCTLB", "spec.floatingIPs"}},
		{"07-node.kv", api.KindNode, "host-a",
			func(r api.Resource) { r.(*api.Node).Spec.IPv4VXLANTunnelAddr = "10.48.0.9" },
			[]string{"spec.wireguard.interfaceIPv4Address", "status"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			kv := readKV(t, filepath.Join(goldenDir, tc.file))[0]
			r, err := api.DecodeStored(tc.kind, tc.name, []byte(kv.value), 3)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(r)
			out, err := api.EncodeStored(r, []byte(kv.value))
			if err != nil {
				t.Fatal(err)
			}
			var before, after map[string]any
			_ = json.Unmarshal([]byte(kv.value), &before)
			_ = json.Unmarshal(out, &after)
			for _, p := range tc.keep {
				b, a := lookup(before, p), lookup(after, p)
				if b == nil || !reflect.DeepEqual(a, b) {
					t.Errorf("%s: before %v, after %v", p, b, a)
				}
			}
			if bytes.Equal(out, []byte(kv.value)) {
				t.Error("the change was not written")
			}
			back, err := api.DecodeStored(tc.kind, tc.name, out, 4)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(specOf(t, back), specOf(t, r)) {
				t.Errorf("known fields after the update: %s, want %s", show(specOf(t, back)), show(specOf(t, r)))
			}
			if _, ok := after["metadata"].(map[string]any)["resourceVersion"]; ok {
				t.Error("resourceVersion stored")
			}
		})
	}
}

func lookup(obj map[string]any, path string) any {
	var cur any = obj
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// TestGoldenIPAM: the block, handles and affinity Calico's own IPAM library
// wrote decode, re-encode without losing a field, and check judges the
// addresses as calicoctl does: the tunnel address is in use while the Node
// lists it, the pod address without an endpoint is a leak.
func TestGoldenIPAM(t *testing.T) {
	kvs := readKV(t, filepath.Join(goldenDir, "20-ipam-libcalico.kv"))
	ctx := context.Background()
	st := etcdtest.Store(t, etcdtest.Start(t))
	var blockKV kvPair
	for _, kv := range kvs {
		if strings.Contains(kv.key, "/block/") && strings.Contains(kv.key, "/assignment/") {
			blockKV = kv
		}
		if _, err := st.Update(ctx, kv.key, []byte(kv.value), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Every field of Calico's block is one our model knows, so a write
	// keeps them all.
	var b ipam.Block
	if err := json.Unmarshal([]byte(blockKV.value), &b); err != nil {
		t.Fatal(err)
	}
	re, err := json.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	var orig, again map[string]any
	d := json.NewDecoder(strings.NewReader(blockKV.value))
	d.UseNumber()
	_ = d.Decode(&orig)
	d = json.NewDecoder(bytes.NewReader(re))
	d.UseNumber()
	_ = d.Decode(&again)
	for k, v := range orig {
		if !reflect.DeepEqual(again[k], v) {
			t.Errorf("block field %s: re-encoded %v, calico %v", k, show(again[k]), show(v))
		}
	}
	// The Node that lists the tunnel address, and the pool.
	for _, f := range []string{"05-ippool.kv", "07-node.kv"} {
		for _, kv := range readKV(t, filepath.Join(goldenDir, f)) {
			if _, err := st.Update(ctx, kv.key, []byte(kv.value), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Make the Node list the address Calico's library gave its tunnel.
	nodeKey := datastore.ResourceKey("nodes", "", "host-a")
	nkv, err := st.Get(ctx, nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := api.DecodeStored(api.KindNode, "host-a", nkv.Value, 0)
	r.(*api.Node).Spec.IPv4VXLANTunnelAddr = "10.48.54.1"
	v, _ := api.EncodeStored(r, nkv.Value)
	if _, err := st.Update(ctx, nodeKey, v, nkv.Revision); err != nil {
		t.Fatal(err)
	}
	rep, err := ipam.New(st).Check(ctx, ipam.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Leaked) != 1 || rep.Leaked[0].IP.String() != "10.48.54.0" || rep.Leaked[0].Reason != ipam.LeakNotInUse {
		t.Errorf("leaked: %+v; want only the pod address 10.48.54.0 (no endpoint lists it), as calicoctl ipam check", rep.Leaked)
	}
	for _, in := range rep.Inconsistencies {
		t.Errorf("inconsistency: %+v", in)
	}
}

// runCLI runs our CLI in process against the etcd at ep and returns its
// output; a failing command fails the test.
func runCLI(t *testing.T, ep string, args ...string) string {
	t.Helper()
	root := cli.NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(args, "--etcd-endpoints", ep))
	if err := root.Execute(); err != nil {
		t.Fatalf("calico %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// TestGoldenTierListOrder: `get tier` lists the tiers in the order
// calicoctl does (by spec.order, as recorded in get/tier.yaml), not by key.
func TestGoldenTierListOrder(t *testing.T) {
	ep := strings.Join(etcdtest.Start(t), ",")
	run := func(args ...string) string { t.Helper(); return runCLI(t, ep, args...) }
	run("apply", "-f", filepath.Join(goldenDir, "manifests", "10-tier.yaml"))
	names := func(y []byte) []string {
		var l struct {
			Items []struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(yamlToJSON(t, y), &l); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range l.Items {
			out = append(out, it.Metadata.Name)
		}
		return out
	}
	want, err := os.ReadFile(filepath.Join(goldenDir, "get", "tier.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, w := names([]byte(run("get", "tier", "-o", "yaml"))), names(want); !reflect.DeepEqual(got, w) {
		t.Fatalf("tiers listed as %v; calicoctl lists %v", got, w)
	}
}

// TestGoldenTables: with every golden manifest applied, our `get KIND -o
// ps|wide` prints the tables calicoctl printed for the same data
// (get/tables.txt; trailing blanks and blank lines aside).
func TestGoldenTables(t *testing.T) {
	ep := strings.Join(etcdtest.Start(t), ",")
	run := func(args ...string) string { t.Helper(); return runCLI(t, ep, args...) }
	for _, m := range cases(t) {
		run("apply", "-f", m)
	}
	data, err := os.ReadFile(filepath.Join(goldenDir, "get", "tables.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tidy := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimRight(l, " "); l != "" {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	n := 0
	for _, block := range strings.Split(string(data), "$ calicoctl ")[1:] {
		cmdLine, want, _ := strings.Cut(block, "\n")
		t.Run(cmdLine, func(t *testing.T) {
			if got := tidy(run(strings.Fields(cmdLine)...)); got != tidy(want) {
				t.Errorf("calico %s:\n%s\ncalicoctl printed:\n%s", cmdLine, got, tidy(want))
			}
		})
		n++
	}
	if n == 0 {
		t.Fatal("no tables in get/tables.txt")
	}
}

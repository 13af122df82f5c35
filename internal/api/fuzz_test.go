package api

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeAndValidate feeds arbitrary manifests to the decode path of
// `calico apply` and checks that it never panics, that a refusal says
// something, and that whatever it accepts survives the trip through the
// datastore: it encodes as stored, decodes back, still validates, and
// encodes to the same stored value again.
func FuzzDecodeAndValidate(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	for _, s := range []string{
		"",
		"---\n---\n",
		"[]",
		"{}",
		`{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/8"}}`,
		"apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: a/b\n",
		"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: x\nspec:\n  selector: " + "(((((((((((a == 'b')))))))))))\n",
		"apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 10.0.0.0/33\n  blockSize: 99\n",
		"apiVersion: projectcalico.org/v3\nkind: List\nitems:\n- kind: Profile\n  apiVersion: projectcalico.org/v3\n  metadata: {name: a, labels: {\"k\\u0000\": v}}\n",
		"a: &a [*a, *a, *a, *a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := DecodeAndValidate(data)
		if err != nil {
			if docs != nil || err.Error() == "" {
				t.Fatalf("refusal with documents %v or no message %q", docs, err)
			}
			return
		}
		for _, d := range docs {
			r := d.Resource
			kind := r.Kind()
			v1, err := EncodeStored(r, nil)
			if err != nil {
				t.Fatalf("accepted %s does not encode: %v", Ident(r), err)
			}
			back, err := DecodeStored(kind, StoredName(kind, r.GetObjectMeta().Name), v1, 0)
			if err != nil {
				t.Fatalf("stored %s does not decode: %v\n%s", Ident(r), err, v1)
			}
			Default(back)
			if err := Validate(back); err != nil {
				t.Fatalf("stored %s no longer validates: %v\n%s", Ident(r), err, v1)
			}
			v2, err := EncodeStored(back, nil)
			if err != nil {
				t.Fatalf("decoded %s does not encode: %v", Ident(back), err)
			}
			if !SameStored(kind, v1, v2) {
				t.Fatalf("%s changes on a round trip through the datastore:\n%s\n%s", Ident(r), v1, v2)
			}
		}
	})
}

package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Every manifest under testdata/good decodes, defaults and validates, and
// survives an encode/decode round trip unchanged.
func TestGoodManifests(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*")
	if len(files) == 0 {
		t.Fatal("no manifests under testdata/good")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := DecodeAndValidate(data)
			if err != nil {
				t.Fatalf("refused:\n%v", err)
			}
			for _, d := range docs {
				out, err := yaml.Marshal(d.Resource)
				if err != nil {
					t.Fatal(err)
				}
				again, err := DecodeAndValidate(out)
				if err != nil {
					t.Fatalf("re-decoding %s failed: %v\n%s", Ident(d.Resource), err, out)
				}
				a, _ := json.Marshal(d.Resource)
				b, _ := json.Marshal(again[0].Resource)
				if !bytes.Equal(a, b) {
					t.Errorf("round trip of %s changed it:\n%s\n%s", Ident(d.Resource), a, b)
				}
			}
		})
	}
}

// Every manifest under testdata/bad is refused; each "# want: ..." line at
// its top is a substring the error must contain.
func TestBadManifests(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*")
	if len(files) == 0 {
		t.Fatal("no manifests under testdata/bad")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(wants) == 0 {
				t.Fatal("no '# want:' lines")
			}
			_, err = DecodeAndValidate(data)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, w := range wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; got:\n%s", w, msg)
				}
			}
		})
	}
}

func TestDecodePositions(t *testing.T) {
	data, err := os.ReadFile("testdata/good/list.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := DecodeDocuments(data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, strings.Join([]string{Ident(d.Resource), itoa(d.Document), itoa(d.Item)}, "|"))
	}
	want := []string{"IPPool pool-a|1|1", "IPPool pool-b|1|2", "Profile web|2|1", "GlobalNetworkPolicy web-ingress|2|2"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
	if p := docs[0].Resource.(*IPPool); p.ResourceVersion != "40" || p.UID == "" {
		t.Errorf("list item metadata lost: %+v", p.ObjectMeta)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestDecodeEmptyAndComments(t *testing.T) {
	docs, err := Decode([]byte("# nothing\n---\n---\n# still nothing\n"))
	if err != nil || len(docs) != 0 {
		t.Fatalf("got %v, %v", docs, err)
	}
	if _, err := DecodeAndValidate([]byte("\n")); err == nil || !strings.Contains(err.Error(), "no resources") {
		t.Fatalf("empty manifest: %v", err)
	}
	// "--- " with trailing comment and a document end marker.
	docs, err = Decode([]byte("--- # first\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: a}\n...\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: b}\n"))
	if err != nil || len(docs) != 2 {
		t.Fatalf("got %d docs, %v", len(docs), err)
	}
}

func TestDecodeJSONArray(t *testing.T) {
	docs, err := DecodeDocuments([]byte(`[{"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"a"}},
	{"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"b"}}]`))
	if err != nil || len(docs) != 2 || docs[1].Item != 2 {
		t.Fatalf("got %+v, %v", docs, err)
	}
	if _, err := Decode([]byte(`{"kind": `)); err == nil {
		t.Fatal("truncated JSON accepted")
	}
}

func TestListItemKindMismatch(t *testing.T) {
	_, err := Decode([]byte(`apiVersion: projectcalico.org/v3
kind: IPPoolList
items:
- kind: Profile
  metadata: {name: x}
`))
	if err == nil || !strings.Contains(err.Error(), `document 1, item 1: kind "Profile" in a IPPoolList`) {
		t.Fatalf("got %v", err)
	}
	_, err = Decode([]byte(`apiVersion: projectcalico.org/v3
kind: List
items:
- metadata: {name: x}
`))
	if err == nil || !strings.Contains(err.Error(), "kind is missing") {
		t.Fatalf("got %v", err)
	}
	_, err = Decode([]byte(`apiVersion: projectcalico.org/v3
kind: List
extra: 1
`))
	if err == nil || !strings.Contains(err.Error(), `unknown field "extra"`) {
		t.Fatalf("got %v", err)
	}
}

func TestUnmarshalStoredIsLenient(t *testing.T) {
	r, err := Unmarshal(KindIPPool, []byte(`{"metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16","futureField":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.(*IPPool).Spec.CIDR != "10.0.0.0/16" || r.GetTypeMeta().Kind != KindIPPool {
		t.Fatalf("got %+v", r)
	}
	if _, err := Unmarshal("Nope", nil); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

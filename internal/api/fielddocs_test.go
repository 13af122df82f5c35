package api

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite the field table of docs/resources.md")

const (
	docsPath    = "../../docs/resources.md"
	fieldsBegin = "<!-- BEGIN FIELD TABLE: generated from internal/api/fields_table.go; go test ./internal/api -run TestFieldDocs -update -->\n"
	fieldsEnd   = "<!-- END FIELD TABLE -->\n"
)

// docs/resources.md lists every field with its status, generated from the
// same table that drives validation and warnings: the test fails when the
// two disagree (regenerate with -update).
func TestFieldDocs(t *testing.T) {
	data, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	begin := strings.Index(doc, fieldsBegin)
	end := strings.Index(doc, fieldsEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s lacks the field table markers %q ... %q", docsPath, fieldsBegin, fieldsEnd)
	}
	want := FieldTableMarkdown()
	got := doc[begin+len(fieldsBegin) : end]
	if got == want {
		return
	}
	if *updateDocs {
		doc = doc[:begin+len(fieldsBegin)] + want + doc[end:]
		if err := os.WriteFile(docsPath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the field table of %s is out of date: run go test ./internal/api -run TestFieldDocs -update", docsPath)
}

// The generated table covers the fields the issue names, with the status
// the field table gives them.
func TestFieldDocsCover(t *testing.T) {
	md := FieldTableMarkdown()
	for _, want := range []string{
		"| `iptablesBackend` |", "| `routeTableRanges` |", "| `bpfEnabled` |", "| `wireguardEnabled` |",
		"| `natOutgoingAddress` |", "| `healthTimeoutOverrides` |", "| `chainInsertMode` |", "| `ipipEnabled` |",
		"| `communities` |", "| `prefixAdvertisements` |", "| `serviceClusterIPs` |", "| `nodeMeshPassword` |",
		"| `reachableBy` |", "| `namespaceSelector` |", "| `wireguard` |", "#### Rule", "#### EntityRule",
		"| `cidr` | string | acts |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("field table lacks %q", want)
		}
	}
}

package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Document is one resource of a manifest with its position in it.
type Document struct {
	Resource Resource
	// Document counts the non-empty YAML documents (or top-level JSON
	// values) of the manifest from 1.
	Document int
	// Item is the position in a List (from 1), or 0.
	Item int
	// Warnings name the fields that are stored without effect here (set
	// by DecodeAndValidate).
	Warnings []string
}

// Error wraps err with the document's position and resource name.
func (d Document) Error(err error) error {
	return &DocumentError{Document: d.Document, Item: d.Item, Resource: displayIdent(d.Resource), Err: err}
}

// Decode parses a manifest: YAML with one or more documents separated by
// "---", or JSON (one or more objects, or an array). A document may be a
// resource, a "List" or a "<Kind>List" with items. Decoding is strict:
// unknown kinds, unknown fields and a missing or wrong apiVersion are
// refused. Every bad document is reported, each named by number, kind/name
// and field path. Decode neither defaults nor validates; see DecodeAndValidate.
func Decode(data []byte) ([]Resource, error) {
	docs, err := DecodeDocuments(data)
	out := make([]Resource, len(docs))
	for i, d := range docs {
		out[i] = d.Resource
	}
	return out, err
}

// DecodeAndValidate decodes a manifest, applies defaults to every resource
// and validates it. It returns every error found, each naming its document.
// An empty manifest is an error.
func DecodeAndValidate(data []byte) ([]Document, error) {
	docs, problems := decodeDocuments(data)
	for i := range docs {
		d := &docs[i]
		Default(d.Resource)
		warn, verr := ValidateWarn(d.Resource)
		if verr != nil {
			problems = append(problems, &DocumentError{Document: d.Document, Item: d.Item, Resource: displayIdent(d.Resource), Err: verr})
		}
		d.Warnings = warn
	}
	if len(problems) > 0 {
		return nil, joinSorted(problems)
	}
	if len(docs) == 0 {
		return nil, errors.New("no resources found in the manifest")
	}
	return docs, nil
}

// DecodeDocuments is Decode keeping each resource's position. On error it
// still returns the documents that decoded.
func DecodeDocuments(data []byte) ([]Document, error) {
	docs, problems := decodeDocuments(data)
	if len(problems) > 0 {
		return docs, joinSorted(problems)
	}
	return docs, nil
}

// joinSorted joins document errors in manifest order.
func joinSorted(problems []*DocumentError) error {
	slices.SortStableFunc(problems, func(a, b *DocumentError) int {
		if a.Document != b.Document {
			return a.Document - b.Document
		}
		return a.Item - b.Item
	})
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

func decodeDocuments(data []byte) ([]Document, []*DocumentError) {
	raws, err := splitManifest(data)
	if err != nil {
		return nil, []*DocumentError{err}
	}
	var docs []Document
	var problems []*DocumentError
	for i, raw := range raws {
		n := i + 1
		if raw.err != nil {
			problems = append(problems, &DocumentError{Document: n, Err: raw.err})
			continue
		}
		got, errs := decodeDocument(raw.json, n)
		docs = append(docs, got...)
		problems = append(problems, errs...)
	}
	return docs, problems
}

type rawDoc struct {
	json []byte
	err  error
}

// splitManifest turns the manifest into one JSON text per document.
func splitManifest(data []byte) ([]rawDoc, *DocumentError) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return splitJSON(trimmed)
	}
	return splitYAML(data), nil
}

func splitJSON(data []byte) ([]rawDoc, *DocumentError) {
	var out []rawDoc
	d := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := d.Decode(&raw)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, &DocumentError{Document: len(out) + 1, Err: fmt.Errorf("invalid JSON: %w", err)}
		}
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
			// A top-level array is a list of resources without a List wrapper.
			wrapped, _ := json.Marshal(map[string]any{"kind": "List", "apiVersion": "v1", "items": raw})
			out = append(out, rawDoc{json: wrapped})
			continue
		}
		out = append(out, rawDoc{json: raw})
	}
}

// splitYAML cuts at "---" lines and converts each non-empty document to
// JSON. Documents with only comments or whitespace are not counted.
func splitYAML(data []byte) []rawDoc {
	var out []rawDoc
	var cur bytes.Buffer
	startLine, line := 1, 0
	flush := func() {
		text := cur.Bytes()
		if hasContent(text) {
			j, err := yaml.YAMLToJSONStrict(text)
			if err != nil {
				out = append(out, rawDoc{err: fmt.Errorf("invalid YAML (document starts at line %d of the manifest): %w", startLine, err)})
			} else {
				out = append(out, rawDoc{json: j})
			}
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for sc.Scan() {
		line++
		l := sc.Text()
		if l == "---" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "---\t") {
			flush()
			startLine = line + 1
			rest := strings.TrimSpace(strings.TrimPrefix(l, "---"))
			if rest != "" && !strings.HasPrefix(rest, "#") {
				cur.WriteString(rest)
				cur.WriteByte('\n')
				startLine = line
			}
			continue
		}
		if l == "..." {
			// Explicit end of document.
			flush()
			startLine = line + 1
			continue
		}
		cur.WriteString(l)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

// hasContent reports whether a YAML document has anything but blank lines
// and comments.
func hasContent(doc []byte) bool {
	for _, l := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

// decodeDocument decodes one document: a resource or a list of them.
func decodeDocument(raw []byte, n int) ([]Document, []*DocumentError) {
	tree, err := parseTree(raw)
	if err != nil {
		return nil, []*DocumentError{{Document: n, Err: fmt.Errorf("invalid JSON: %w", err)}}
	}
	if tree == nil {
		return nil, nil
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, []*DocumentError{{Document: n, Err: errors.New("expected a resource: an object with apiVersion, kind, metadata and spec")}}
	}
	kind, _ := obj["kind"].(string)
	base, isList := listKind(kind)
	if !isList {
		r, err := decodeResource(raw, obj, "")
		if err != nil {
			return nil, []*DocumentError{{Document: n, Resource: err.ident, Err: err.err}}
		}
		return []Document{{Resource: r, Document: n}}, nil
	}

	// A List, or a typed list such as NetworkPolicyList.
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch k {
		case "apiVersion", "kind", "metadata", "items":
		default:
			return nil, []*DocumentError{{Document: n, Err: fmt.Errorf("%s: unknown field %q", kind, k)}}
		}
	}
	av, _ := obj["apiVersion"].(string)
	switch {
	case av == APIVersion:
	case av == "v1" && base == "":
		// Kubernetes' generic List.
	default:
		return nil, []*DocumentError{{Document: n, Err: apiVersionError(av)}}
	}
	items, ok := obj["items"].([]any)
	if !ok && obj["items"] != nil {
		return nil, []*DocumentError{{Document: n, Err: errors.New("items: expected a list of resources")}}
	}
	var docs []Document
	var problems []*DocumentError
	for i, item := range items {
		itemObj, ok := item.(map[string]any)
		if !ok {
			problems = append(problems, &DocumentError{Document: n, Item: i + 1, Err: errors.New("expected a resource: an object with apiVersion, kind, metadata and spec")})
			continue
		}
		itemRaw, err := json.Marshal(itemObj)
		if err != nil {
			problems = append(problems, &DocumentError{Document: n, Item: i + 1, Err: err})
			continue
		}
		r, rerr := decodeResource(itemRaw, itemObj, base)
		if rerr != nil {
			problems = append(problems, &DocumentError{Document: n, Item: i + 1, Resource: rerr.ident, Err: rerr.err})
			continue
		}
		docs = append(docs, Document{Resource: r, Document: n, Item: i + 1})
	}
	return docs, problems
}

// listKind reports whether kind names a list, and the kind of its items
// ("" for a generic List).
func listKind(kind string) (string, bool) {
	if kind == "List" {
		return "", true
	}
	if base, ok := strings.CutSuffix(kind, "List"); ok {
		if _, known := kindInfo(base); known {
			return base, true
		}
	}
	return "", false
}

func apiVersionError(got string) error {
	if got == "" {
		return fmt.Errorf("apiVersion is missing: want %s", APIVersion)
	}
	return fmt.Errorf("apiVersion %q is not supported: want %s", got, APIVersion)
}

type resourceError struct {
	ident string
	err   error
}

// decodeResource decodes one resource from its JSON text and the same
// parsed as a tree. listKind, when set, is the kind of the typed list it
// came from: items may then leave kind and apiVersion out.
func decodeResource(raw []byte, obj map[string]any, listKind string) (Resource, *resourceError) {
	kind, kindOK := obj["kind"].(string)
	apiVersion, avOK := obj["apiVersion"].(string)
	if obj["kind"] != nil && !kindOK {
		return nil, &resourceError{err: errors.New("kind: expected a string")}
	}
	if obj["apiVersion"] != nil && !avOK {
		return nil, &resourceError{err: errors.New("apiVersion: expected a string")}
	}
	if kind == "" {
		kind = listKind
	}
	if listKind != "" && kind != listKind {
		return nil, &resourceError{err: fmt.Errorf("kind %q in a %sList", kind, listKind)}
	}
	if apiVersion == "" && listKind != "" {
		apiVersion = APIVersion
	}
	if kind == "" {
		return nil, &resourceError{err: errors.New("kind is missing")}
	}
	ki, ok := kindInfo(kind)
	if !ok {
		if unsupportedKinds[kind] {
			return nil, &resourceError{err: fmt.Errorf("kind %q is not supported here", kind)}
		}
		if alt, err := LookupKind(kind); err == nil {
			return nil, &resourceError{err: fmt.Errorf("unknown kind %q (did you mean %q?)", kind, alt.Kind)}
		}
		return nil, &resourceError{err: fmt.Errorf("unknown kind %q: want one of %s", kind, kindNames())}
	}
	ident := ki.Kind
	if md, ok := obj["metadata"].(map[string]any); ok {
		name, _ := md["name"].(string)
		ns, _ := md["namespace"].(string)
		if ki.Namespaced && ns == "" {
			ns = DefaultNamespace
		}
		switch {
		case name != "" && ns != "":
			ident += " " + ns + "/" + name
		case name != "":
			ident += " " + name
		}
	}
	if apiVersion != APIVersion {
		return nil, &resourceError{ident: ident, err: apiVersionError(apiVersion)}
	}
	r := ki.new()
	if err := decodeStrict(raw, obj, r); err != nil {
		return nil, &resourceError{ident: ident, err: err}
	}
	*r.GetTypeMeta() = TypeMeta{Kind: ki.Kind, APIVersion: APIVersion}
	return r, nil
}

// displayIdent names a resource for an error, showing the namespace a
// namespaced resource will get by default.
func displayIdent(r Resource) string {
	if r == nil {
		return ""
	}
	m := r.GetObjectMeta()
	ns := m.Namespace
	if ns == "" && Info(r).Namespaced {
		ns = DefaultNamespace
	}
	if ns != "" {
		return r.Kind() + " " + ns + "/" + m.Name
	}
	return r.Kind() + " " + m.Name
}

// Unmarshal decodes a stored resource of a known kind (as written by this
// project into the datastore). It is lenient: fields it does not know are
// ignored, so that a newer writer does not break an older reader.
func Unmarshal(kind string, data []byte) (Resource, error) {
	r, err := New(kind)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", kind, err)
	}
	*r.GetTypeMeta() = TypeMeta{Kind: kind, APIVersion: APIVersion}
	return r, nil
}

// LookupPlural finds a kind by the plural used in datastore keys.
func LookupPlural(plural string) (KindInfo, bool) {
	for _, k := range kinds {
		if k.Plural == plural {
			return k, true
		}
	}
	return KindInfo{}, false
}

package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestStoredAndClientNames(t *testing.T) {
	for _, tc := range []struct {
		kind, name, stored string
	}{
		{KindGlobalNetworkPolicy, "deny-all", "default.deny-all"},
		{KindGlobalNetworkPolicy, "default.deny-all", "default.deny-all"},
		{KindNetworkPolicy, "allow-web", "default.allow-web"},
		{KindNetworkPolicy, "knp.default.x", "knp.default.x"},
		{KindProfile, "frontend", "frontend"},
		{KindIPPool, "pool.a", "pool.a"},
	} {
		if got := StoredName(tc.kind, tc.name); got != tc.stored {
			t.Errorf("StoredName(%s, %q) = %q, want %q", tc.kind, tc.name, got, tc.stored)
		}
	}
	ann := map[string]string{MetadataAnnotation: `{"name":"deny-all"}`}
	for _, tc := range []struct {
		kind, stored string
		ann          map[string]string
		want         string
	}{
		{KindGlobalNetworkPolicy, "default.deny-all", ann, "deny-all"},
		{KindGlobalNetworkPolicy, "default.deny-all", nil, "deny-all"}, // Calico before 3.30: no annotation
		{KindGlobalNetworkPolicy, "default.x", map[string]string{MetadataAnnotation: `{"name":"default.x"}`}, "default.x"},
		{KindGlobalNetworkPolicy, "legacy", nil, "legacy"}, // an old key of ours
		{KindProfile, "default.p", ann, "default.p"},
	} {
		if got := ClientName(tc.kind, tc.stored, tc.ann); got != tc.want {
			t.Errorf("ClientName(%s, %q, %v) = %q, want %q", tc.kind, tc.stored, tc.ann, got, tc.want)
		}
	}
}

func TestEncodeDecodeStoredPolicy(t *testing.T) {
	p := &GlobalNetworkPolicy{ObjectMeta: ObjectMeta{Name: "deny-all", ResourceVersion: "12", Annotations: map[string]string{"owner": "me"}},
		Spec: PolicySpec{Selector: "all()"}}
	Default(p)
	b, err := EncodeStored(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	_ = json.Unmarshal(b, &obj)
	md := obj["metadata"].(map[string]any)
	if md["name"] != "default.deny-all" || md["resourceVersion"] != nil {
		t.Errorf("stored metadata %v", md)
	}
	if a := md["annotations"].(map[string]any); a[MetadataAnnotation] != `{"name":"deny-all"}` || a["owner"] != "me" {
		t.Errorf("stored annotations %v", a)
	}
	if p.Name != "deny-all" || p.Annotations[MetadataAnnotation] != "" {
		t.Errorf("EncodeStored changed its argument: %+v", p.ObjectMeta)
	}
	r, err := DecodeStored(KindGlobalNetworkPolicy, "default.deny-all", b, 9)
	if err != nil {
		t.Fatal(err)
	}
	g := r.(*GlobalNetworkPolicy)
	if g.Name != "deny-all" || g.ResourceVersion != "9" || g.Spec.Tier != "default" || g.Labels[LabelTier] != "default" ||
		!reflect.DeepEqual(g.Annotations, map[string]string{"owner": "me"}) {
		t.Errorf("read back %+v %+v", g.ObjectMeta, g.Spec)
	}
	// What reading adds for display does not count as a change.
	again, _ := EncodeStored(g, b)
	if !SameStored(KindGlobalNetworkPolicy, again, b) {
		t.Errorf("re-encoding what was read is a change:\n%s\n%s", again, b)
	}
}

func TestEncodeStoredKeepsUnknownFields(t *testing.T) {
	prev := `{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3",
	 "metadata":{"name":"default.p","uid":"u","future":{"a":1}},
	 "spec":{"order":5,"selector":"all()","newSpecField":[1,2],"types":["Ingress"],
	   "ingress":[{"action":"Allow","http":{"methods":["GET"]},"source":{"selector":"a == 'x'"}},
	              {"action":"Deny","metadata":{"annotations":{"k":"v"}}}]},
	 "status":{"x":12345678901234567890}}`
	r, err := DecodeStored(KindGlobalNetworkPolicy, "default.p", []byte(prev), 3)
	if err != nil {
		t.Fatal(err)
	}
	p := r.(*GlobalNetworkPolicy)
	// Change a known field, edit the second rule, drop nothing else.
	p.Spec.Order = ptr(7.0)
	p.Spec.Ingress[1].Action = "Pass"
	b, err := EncodeStored(p, []byte(prev))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"future":{"a":1}`, `"newSpecField":[1,2]`, `"http":{"methods":["GET"]}`, `"status":{"x":12345678901234567890}`, `"order":7`, `"action":"Pass"`} {
		if !strings.Contains(s, want) {
			t.Errorf("stored value lacks %s:\n%s", want, s)
		}
	}
	// The edited rule does not keep what this project cannot see (its
	// metadata), and no rule gets another rule's fields.
	var obj struct {
		Spec struct {
			Ingress []map[string]any `json:"ingress"`
		} `json:"spec"`
	}
	_ = json.Unmarshal(b, &obj)
	if _, ok := obj.Spec.Ingress[1]["http"]; ok {
		t.Errorf("rule 2 got rule 1's http: %v", obj.Spec.Ingress[1])
	}
	if _, ok := obj.Spec.Ingress[0]["http"]; !ok {
		t.Errorf("unchanged rule 1 lost its http: %v", obj.Spec.Ingress[0])
	}
	// Removing a known field removes it.
	p.Spec.Selector = ""
	b, _ = EncodeStored(p, []byte(prev))
	if strings.Contains(string(b), `"selector":"all()"`) {
		t.Errorf("a removed known field came back: %s", b)
	}
}

func TestPreserveUnknown(t *testing.T) {
	type inner struct {
		A int `json:"a"`
	}
	type T struct {
		X  string  `json:"x"`
		In inner   `json:"in"`
		L  []inner `json:"l"`
	}
	prev := []byte(`{"x":"old","y":"keep","in":{"a":1,"b":2},"l":[{"a":1,"c":3},{"a":2,"c":4}]}`)
	enc, _ := json.Marshal(T{X: "new", In: inner{A: 5}, L: []inner{{A: 1}, {A: 9}}})
	out, err := PreserveUnknown(reflect.TypeOf(T{}), prev, enc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(out, &got)
	want := map[string]any{"x": "new", "y": "keep", "in": map[string]any{"a": 5.0, "b": 2.0},
		"l": []any{map[string]any{"a": 1.0, "c": 3.0}, map[string]any{"a": 9.0}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %s\nwant %v", out, want)
	}
}

func TestWorkloadEndpointNames(t *testing.T) {
	for _, tc := range []struct {
		spec WorkloadEndpointSpec
		want string
		err  string
	}{
		{WorkloadEndpointSpec{Node: "host-a", Orchestrator: "docker", Workload: "4f2a9c1b8e7d", Endpoint: "eth0"}, "host--a-docker-4f2a9c1b8e7d-eth0", ""},
		{WorkloadEndpointSpec{Node: "host-a", Orchestrator: "libnetwork", Workload: "ignored", Endpoint: "0123-ab"}, "host--a-libnetwork-libnetwork-0123--ab", ""},
		{WorkloadEndpointSpec{Node: "n1", Orchestrator: "k8s", Pod: "web-0", Endpoint: "eth0"}, "n1-k8s-web--0-eth0", ""},
		{WorkloadEndpointSpec{Node: "n1", Orchestrator: "cni", ContainerID: "abc", Endpoint: "eth0"}, "n1-cni-abc-eth0", ""},
		{WorkloadEndpointSpec{Node: "n1", Orchestrator: "docker", Endpoint: "eth0"}, "", "spec.workload: required"},
		{WorkloadEndpointSpec{Node: "n1", Orchestrator: "docker", Workload: "-x", Endpoint: "eth0"}, "", "must not begin with '-'"},
	} {
		got, err := WorkloadEndpointName(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.spec, got, err, tc.want)
		}
	}
	// Default derives a missing name and sets Calico's labels; Validate
	// refuses another name.
	w := &WorkloadEndpoint{Spec: WorkloadEndpointSpec{Node: "h", Orchestrator: "docker", Workload: "c1", Endpoint: "eth0"}}
	Default(w)
	if w.Name != "h-docker-c1-eth0" || w.Labels[LabelNamespace] != "default" || w.Labels[LabelOrchestrator] != "docker" {
		t.Errorf("defaulted %+v", w.ObjectMeta)
	}
	if err := Validate(w); err != nil {
		t.Error(err)
	}
	w.Name = "h-docker-c2-eth0"
	if err := Validate(w); err == nil || !strings.Contains(err.Error(), `requires "h-docker-c1-eth0"`) {
		t.Errorf("wrong name: %v", err)
	}
	// A policy name with a dot starts with its tier.
	p := &GlobalNetworkPolicy{ObjectMeta: ObjectMeta{Name: "other.x"}}
	Default(p)
	if err := Validate(p); err == nil || !strings.Contains(err.Error(), "must start with its tier") {
		t.Errorf("other.x: %v", err)
	}
	p.Name = "default.x"
	if err := Validate(p); err != nil {
		t.Errorf("default.x: %v", err)
	}
}

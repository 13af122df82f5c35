package calc

import (
	"reflect"
	"testing"
)

// Endpoints with equal labels share one map; the pool forgets a label set
// with its last endpoint, and a caller's map is never kept.
func TestLabelPoolSharesAndReleases(t *testing.T) {
	c := NewCalculator("h1")
	in := map[string]string{"app": "web"}
	for i, name := range []string{"a", "b", "c"} {
		w := wep("default", name, "h1", "cali"+name, []string{"10.0.0." + string(rune('1'+i)) + "/32"}, in, "p1")
		c.UpsertWorkloadEndpoint(&w)
	}
	a, b := c.weps["default/a"], c.weps["default/b"]
	if reflect.ValueOf(a.w.Labels).UnsafePointer() != reflect.ValueOf(b.w.Labels).UnsafePointer() {
		t.Error("endpoints with equal labels hold separate label maps")
	}
	if reflect.ValueOf(a.view.labels).UnsafePointer() != reflect.ValueOf(b.view.labels).UnsafePointer() {
		t.Error("endpoints with equal effective labels hold separate maps")
	}
	if reflect.ValueOf(a.w.Labels).UnsafePointer() == reflect.ValueOf(in).UnsafePointer() {
		t.Error("the pool kept the caller's map")
	}
	in["app"] = "changed by the caller"
	if a.w.Labels["app"] != "web" {
		t.Errorf("caller's change reached the calculator: %v", a.w.Labels)
	}
	// w.Labels, the effective labels and the namespace's labels.
	if n := c.labels.size(); n != 3 {
		t.Errorf("pool holds %d label sets, want 3", n)
	}
	// A relabelled endpoint moves to another set; the old one stays while used.
	w := wep("default", "c", "h1", "calic", []string{"10.0.0.3/32"}, map[string]string{"app": "db"}, "p1")
	c.UpsertWorkloadEndpoint(&w)
	if n := c.labels.size(); n != 5 {
		t.Errorf("pool holds %d label sets after a relabel, want 5", n)
	}
	for _, name := range []string{"a", "b", "c"} {
		c.DeleteWorkloadEndpoint("default", name)
	}
	if n := c.labels.size(); n != 0 {
		t.Errorf("pool holds %d label sets with no endpoints, want 0: %v", n, c.labels.sets)
	}
}

func TestLabelsKeyUnambiguous(t *testing.T) {
	var p labelPool
	a := string(p.key(map[string]string{"a": "b\x011c"}))
	b := string(p.key(map[string]string{"a": "b", "c": ""}))
	if a == b {
		t.Errorf("different label sets share the key %q", a)
	}
}

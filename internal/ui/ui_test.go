package ui

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/trace"
)

// newView serves the view over a real etcd with two endpoints on one
// network; put writes resources.
func newView(t *testing.T) (*httptest.Server, func(kind, ns, name string, obj any)) {
	return newViewWithFlows(t, "")
}

// newViewWithFlows is newView with this host's node flows socket.
func newViewWithFlows(t *testing.T, flowsSocket string) (*httptest.Server, func(kind, ns, name string, obj any)) {
	st := etcdtest.Store(t, etcdtest.Start(t))
	put := func(plural, ns, name string, obj any) {
		t.Helper()
		if r, ok := obj.(api.Resource); ok {
			api.Default(r)
		}
		b, _ := json.Marshal(obj)
		if _, err := st.Update(context.Background(), datastore.ResourceKey(plural, ns, name), b, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []string{"web", "db"} {
		w := &api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Name: "h1-libnetwork-libnetwork-" + n, Namespace: "docker", Labels: map[string]string{"docker.container": n, "role": n}},
			Spec: api.WorkloadEndpointSpec{Orchestrator: "libnetwork", Node: "h1", IPNetworks: []string{"10.0.0." + string(rune('1'+i)) + "/32"}, InterfaceName: "cali" + n, Profiles: []string{"net1"}}}
		put("workloadendpoints", "docker", w.Name, w)
	}
	p := &api.Profile{ObjectMeta: api.ObjectMeta{Name: "net1"}, Spec: api.ProfileSpec{
		Ingress: []api.Rule{{Action: "Allow"}}, Egress: []api.Rule{{Action: "Allow"}}}}
	put("profiles", "", "net1", p)
	srv := httptest.NewServer(Handler(Source{Load: func(ctx context.Context) (*trace.Tracer, *api.FelixConfigurationSpec, error) {
		t, err := trace.Load(ctx, st)
		return t, nil, err
	}, FlowsSocket: flowsSocket}))
	t.Cleanup(srv.Close)
	return srv, put
}

func get(t *testing.T, url string, v any) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return string(b)
}

func denyPolicy() *api.GlobalNetworkPolicy {
	return &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "db-closed"}, Spec: api.PolicySpec{
		Selector: "role == 'db'", Ingress: []api.Rule{{Action: "Deny"}}}}
}

// The API: the matrix follows the datastore, cells explain, the page is
// self-contained and nothing but GET is served.
func TestViewAPI(t *testing.T) {
	srv, put := newView(t)
	var m trace.Matrix
	get(t, srv.URL+"/api/matrix", &m)
	if len(m.Endpoints) != 2 || !m.Cells[0][1].Allowed || !m.Cells[1][0].Allowed {
		t.Fatalf("matrix before policy: %+v", m)
	}
	put("globalnetworkpolicies", "", "db-closed", denyPolicy())
	get(t, srv.URL+"/api/matrix", &m)
	// Endpoints sort by ID: db first.
	if m.Endpoints[0].Container != "db" || m.Cells[1][0].Allowed || !strings.Contains(m.Cells[1][0].Result.Summary, "gnp:db-closed rule 0") {
		t.Fatalf("matrix after policy: %+v", m.Cells[1][0].Result)
	}
	var c Cluster
	get(t, srv.URL+"/api/cluster", &c)
	if len(c.Policies) != 1 || c.Policies[0].ID != "gnp:db-closed" || len(c.Networks) != 1 || len(c.Networks[0].Endpoints) != 2 {
		t.Fatalf("cluster: %+v", c)
	}
	page := get(t, srv.URL+"/", nil) + get(t, srv.URL+"/app.js", nil) + get(t, srv.URL+"/style.css", nil)
	for _, bad := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(page, bad) {
			t.Errorf("assets reference %q: the view must work offline", bad)
		}
	}
	resp, err := http.Post(srv.URL+"/api/matrix", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s, want 405", resp.Status)
	}
	for addr, ok := range map[string]bool{"127.0.0.1:9400": true, "[::1]:0": true, "localhost:1": true, "0.0.0.0:9400": false, "192.0.2.1:80": false, "x": false} {
		if err := CheckListen(addr); (err == nil) != ok {
			t.Errorf("CheckListen(%s) = %v", addr, err)
		}
	}
}

// TestViewInChromium renders the page in headless Chromium (its DOM after
// the scripts ran, --dump-dom) and checks that the matrix shows the
// policy's verdicts and the policy list. TestViewUpdatesLive keeps one page
// open across a change.
func TestViewInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("skipped: chromium not installed (hack/deps.sh installs the Debian package chromium)")
	}
	srv, put := newView(t)
	dump := func(budget time.Duration) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir="+t.TempDir(),
			"--virtual-time-budget="+strconv.FormatInt(budget.Milliseconds(), 10), "--dump-dom", srv.URL+"/")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		return string(out)
	}
	put("globalnetworkpolicies", "", "db-closed", denyPolicy())
	dom := dump(3 * time.Second)
	if !strings.Contains(dom, `id="matrix-table"`) ||
		!strings.Contains(dom, `class="deny" data-from="docker/h1-libnetwork-libnetwork-web" data-to="docker/h1-libnetwork-libnetwork-db"`) ||
		!strings.Contains(dom, `class="allow" data-from="docker/h1-libnetwork-libnetwork-db" data-to="docker/h1-libnetwork-libnetwork-web"`) ||
		!strings.Contains(dom, "gnp:db-closed") {
		t.Fatalf("rendered page lacks the matrix (web -> db denied by gnp:db-closed, db -> web allowed):\n%s", dom)
	}
}

// webToDB is the matrix cell of web -> db in the page.
const webToDB = `document.querySelector('td[data-from="docker/h1-libnetwork-libnetwork-web"][data-to="docker/h1-libnetwork-libnetwork-db"]')`

// TestViewUpdatesLive opens the page in headless Chromium (driven over the
// DevTools protocol), applies a policy to the datastore and checks that
// the same page, never reloaded, turns the web -> db cell from allow to
// deny and names the policy; and that a denied flow the node records
// later shows with its host and both endpoints' names, networks and labels.
func TestViewUpdatesLive(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("skipped: chromium not installed (hack/deps.sh installs the Debian package chromium)")
	}
	ring := flows.NewRing(16, 10*time.Second)
	sock := filepath.Join(t.TempDir(), "flows.sock")
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- flows.Serve(sctx, sock, flows.Handler(func() string { return "h1" }, ring)) }()
	t.Cleanup(func() { stop(); <-served })
	srv, put := newViewWithFlows(t, sock)
	b := startBrowser(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	page, err := b.open(ctx, srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	b.evalUntil(t, page, `(() => { const c = `+webToDB+`; return c !== null && c.classList.contains("allow"); })()`, 60*time.Second)
	// A reload would lose this mark.
	var marked bool
	if err := b.eval(ctx, page, `window.h16Mark = "same page"; true`, &marked); err != nil || !marked {
		t.Fatalf("mark the page: %v", err)
	}
	put("globalnetworkpolicies", "", "db-closed", denyPolicy())
	b.evalUntil(t, page, `(() => { const c = `+webToDB+`; return c !== null && c.classList.contains("deny") && c.title.includes("gnp:db-closed"); })()`, 30*time.Second)
	ring.Add(flows.Record{Host: "h1", Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("10.0.0.1"), Proto: "icmp",
		Action: "deny", Direction: "ingress", Rule: -1, Reason: "no policy or profile allowed it",
		SrcName: "db", SrcNetwork: "net1", SrcLabels: map[string]string{"role": "db", "docker.container": "db"},
		DstName: "web", DstNetwork: "net1", DstLabels: map[string]string{"role": "web"}}, time.Now())
	b.evalUntil(t, page, `(() => { const f = document.getElementById("flows").textContent;
		return f.includes("h1") && f.includes("db 10.0.0.2 net1 role=db") && f.includes("web 10.0.0.1 net1 role=web") && !f.includes("docker.container"); })()`, 30*time.Second)
	var same bool
	if err := b.eval(ctx, page, `window.h16Mark === "same page"`, &same); err != nil || !same {
		t.Fatalf("the page was reloaded (mark lost: %v %v)", same, err)
	}
}

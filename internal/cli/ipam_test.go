package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/testutil"
)

// ipamEnv starts an embedded etcd with pools and nodes and returns its
// endpoint flag and a client.
func ipamEnv(t *testing.T, pools map[string][2]any, nodes ...string) (string, datastore.Store) {
	t.Helper()
	eps := etcdtest.Start(t)
	st, err := datastore.NewEtcd(context.Background(), datastore.Config{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	put := func(key string, v any) {
		raw, _ := json.Marshal(v)
		if _, err := st.Update(context.Background(), key, raw, 0); err != nil {
			t.Fatal(err)
		}
	}
	for name, p := range pools {
		put(datastore.ResourceKey("ippools", "", name), api.IPPool{TypeMeta: api.TypeMeta{Kind: api.KindIPPool, APIVersion: api.APIVersion},
			ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.IPPoolSpec{CIDR: p[0].(string), BlockSize: p[1].(int)}})
	}
	for _, n := range nodes {
		put(datastore.ResourceKey("nodes", "", n), api.Node{TypeMeta: api.TypeMeta{Kind: api.KindNode, APIVersion: api.APIVersion},
			ObjectMeta: api.ObjectMeta{Name: n}})
	}
	return "--etcd-endpoints=" + strings.Join(eps, ","), st
}

func TestIPAMCommands(t *testing.T) {
	ep, st := ipamEnv(t, map[string][2]any{"p4": {"10.65.0.0/24", 28}, "p6": {"fd00:65::/120", 0}}, "host1", "host2")
	run := func(args ...string) (string, string, error) {
		t.Helper()
		return runRoot(t, append(append([]string{"ipam"}, args...), ep)...)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(args...)
		if err != nil {
			t.Fatalf("calico ipam %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}

	if out := mustRun("assign", "--handle", "r1", "--node", "host1", "--num", "3", "--note", "lab router"); out != "10.65.0.0\n10.65.0.1\n10.65.0.2\n" {
		t.Fatalf("assign: %q", out)
	}
	out, errOut, err := run("assign", "--handle", "r1", "--node", "host1", "--num", "3")
	if err != nil || out != "10.65.0.0\n10.65.0.1\n10.65.0.2\n" || !strings.Contains(errOut, "already holds") {
		t.Fatalf("repeat: %q %q %v", out, errOut, err)
	}
	if out := mustRun("assign", "--handle", "v6", "--node", "host2", "--ipv6", "--num", "2"); out != "fd00:65::\nfd00:65::1\n" {
		t.Fatalf("assign v6: %q", out)
	}
	if out := mustRun("assign", "--handle", "gw", "--node", "host2", "--ip", "10.65.0.77"); out != "10.65.0.77\n" {
		t.Fatalf("assign --ip: %q", out)
	}
	_, _, err = run("assign", "--handle", "gw2", "--node", "host2", "--ip", "10.65.0.77")
	if err == nil || !strings.Contains(err.Error(), `10.65.0.77 is already assigned to handle "gw"`) {
		t.Fatalf("assign taken --ip: %v", err)
	}
	mustRun("assign", "--handle", "w1", "--node", "host1", "--endpoint", "ns/gone", "--container", "abc")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"assign", "--node", "host1"}, "--handle is required"},
		{[]string{"assign", "--handle", "x"}, "--node is required"},
		{[]string{"assign", "--handle", "x", "--node", "n", "--num", "0"}, "--num 0"},
		{[]string{"assign", "--handle", "x", "--node", "n", "--pool", "10.65.0.0/33"}, `--pool "10.65.0.0/33"`},
		{[]string{"assign", "--handle", "x", "--node", "n", "--pool", "fd00:65::/120"}, "add --ipv6"},
		{[]string{"assign", "--handle", "x", "--node", "n", "--pool", "10.99.0.0/24"}, "no IPPool has this cidr"},
		{[]string{"assign", "--handle", "x", "--node", "n", "--ip", "nope"}, `--ip "nope"`},
		{[]string{"assign", "--handle", "x", "--node", "n", "--ip", "10.65.0.9", "--pool", "10.65.1.0/24"}, "not in --pool"},
		{[]string{"assign", "--handle", "x", "--node", "n", "--endpoint", "noslash"}, "NAMESPACE/NAME"},
		{[]string{"assign", "--handle", "x/y", "--node", "n"}, "must not contain '/'"},
		{[]string{"release"}, "exactly one of"},
		{[]string{"release", "--handle", "a", "--ip", "10.65.0.1"}, "exactly one of"},
		{[]string{"release", "--from-report", "/nonexistent"}, "--from-report"},
		{[]string{"show", "-o", "yaml"}, `-o "yaml"`},
	} {
		_, _, err := run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}

	out = mustRun("show", "--show-blocks")
	for _, want := range []string{"p4", "10.65.0.0/24", "256", "5", "251", "10.65.0.0/28", "host1", "10.65.0.64/28", "host2", "fd00:65::/122"} {
		if !strings.Contains(out, want) {
			t.Errorf("show --show-blocks lacks %q:\n%s", want, out)
		}
	}
	var u ipam.Usage
	if err := json.Unmarshal([]byte(mustRun("show", "-o", "json")), &u); err != nil || len(u.Pools) != 2 || u.Pools[0].InUse != 5 {
		t.Fatalf("show -o json: %+v %v", u, err)
	}
	if out := mustRun("show", "--ip", "10.65.0.1"); !strings.Contains(out, `10.65.0.1 is assigned to handle "r1": manual reservation "lab router" on node host1`) {
		t.Fatalf("show --ip: %q", out)
	}
	if out := mustRun("show", "--ip", "10.65.0.200"); !strings.Contains(out, "10.65.0.200 is not assigned (pool p4)") {
		t.Fatalf("show --ip free: %q", out)
	}

	// check: exits 0 with findings, writes JSON; release --from-report fixes.
	report := filepath.Join(t.TempDir(), "report.json")
	out = mustRun("check", "--min-age", "0", "-o", report)
	if !strings.Contains(out, `10.65.0.3  handle "w1"  endpoint-gone`) || !strings.Contains(out, "Manual reservations (6, not leaks)") ||
		!strings.Contains(out, "Check complete: 1 problems") {
		t.Fatalf("check:\n%s", out)
	}
	var rep ipam.Report
	data, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(data, &rep) != nil || len(rep.Leaked) != 1 {
		t.Fatalf("report file: %v %s", err, data)
	}
	if out := mustRun("release", "--from-report", report); !strings.Contains(out, "released 10.65.0.3\n") || !strings.Contains(out, "1 addresses released") {
		t.Fatalf("release --from-report: %q", out)
	}
	if out := mustRun("check", "--min-age", "0"); !strings.Contains(out, "Check complete: 0 problems") {
		t.Fatalf("check after release:\n%s", out)
	}

	if out := mustRun("release", "--handle", "r1"); out != "10.65.0.0\n10.65.0.1\n10.65.0.2\n" {
		t.Fatalf("release --handle: %q", out)
	}
	out, errOut, err = run("release", "--handle", "r1")
	if err != nil || out != "" || !strings.Contains(errOut, "holds no addresses") {
		t.Fatalf("release unknown handle: %q %q %v", out, errOut, err)
	}
	out, errOut, err = run("release", "--ip", "10.65.0.77", "--ip", "10.65.0.78")
	if err != nil || out != "10.65.0.77\n" || !strings.Contains(errOut, "10.65.0.78 was not assigned") {
		t.Fatalf("release --ip: %q %q %v", out, errOut, err)
	}
	if out := mustRun("release", "--empty-blocks", "--node", "host1", "--older-than", "0s"); !strings.Contains(out, "released block 10.65.0.0/28") {
		t.Fatalf("release --empty-blocks: %q", out)
	}

	if out := mustRun("configure", "--strictaffinity=true"); !strings.Contains(out, "StrictAffinity: true") {
		t.Fatalf("configure: %q", out)
	}
	kv, err := st.Get(context.Background(), ipam.ConfigKey)
	if err != nil || !strings.Contains(string(kv.Value), `"strict_affinity":true`) {
		t.Fatalf("config stored: %s %v", kv.Value, err)
	}
}

func TestIPAMExhaustionError(t *testing.T) {
	ep, _ := ipamEnv(t, map[string][2]any{"small": {"10.65.0.0/28", 30}})
	if _, _, err := runRoot(t, "ipam", "assign", "--handle", "a", "--node", "n1", "--num", "16", ep); err != nil {
		t.Fatal(err)
	}
	_, _, err := runRoot(t, "ipam", "assign", "--handle", "b", "--node", "n2", ep)
	if err == nil || err.Error() != "no free addresses in pool 10.65.0.0/28 (16 addresses, 16 in use)" {
		t.Fatalf("exhaustion: %v", err)
	}
}

// TestIPAMBinary runs the built binary: concurrency across processes and
// exit codes.
func TestIPAMBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 320 processes; skipped with -short")
	}
	bin := testutil.CalicoBin(t)
	t.Run("EightProcesses", func(t *testing.T) { testIPAMAssignEightProcesses(t, bin) })
	t.Run("CheckExitCode", func(t *testing.T) { testIPAMCheckExitCode(t, bin) })
}

// testIPAMAssignEightProcesses: 8 processes of the built binary, 4 per node,
// each assigning 40 addresses (one `calico ipam assign` per address, as a
// shell loop would), all at once. No address twice; every address in a
// block affine to the node it was assigned for; each node holding the
// fewest blocks its 160 addresses need (3 of 64).
func testIPAMAssignEightProcesses(t *testing.T, bin string) {
	ep, st := ipamEnv(t, map[string][2]any{"p": {"10.65.0.0/20", 26}}, "n1", "n2")
	const procs, per = 8, 40
	script := `for j in $(seq 1 ` + fmt.Sprint(per) + `); do "$BIN" ipam assign --handle "p$P-$j" --node "$NODE" --endpoint "ns/p$P-$j" "$EP" || exit 1; done`
	type result struct {
		out string
		err error
	}
	results := make([]result, procs)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("sh", "-c", script)
			cmd.Env = append(os.Environ(), "BIN="+bin, fmt.Sprintf("P=%d", i), fmt.Sprintf("NODE=n%d", i%2+1), "EP="+ep)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, errOut.String())
			}
			results[i] = result{out.String(), err}
		}()
	}
	wg.Wait()
	t.Logf("%d assignments by %d processes in %v", procs*per, procs, time.Since(start))
	owner := map[netip.Addr]int{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("process %d: %v", i, r.err)
		}
		lines := strings.Fields(r.out)
		if len(lines) != per {
			t.Fatalf("process %d printed %d addresses", i, len(lines))
		}
		for _, l := range lines {
			ip := netip.MustParseAddr(l)
			if prev, dup := owner[ip]; dup {
				t.Fatalf("%s assigned to processes %d and %d", ip, prev, i)
			}
			owner[ip] = i
		}
	}
	u, err := ipam.New(st).Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	blocksOf := map[string]int{}
	for _, b := range u.Pools[0].Blocks {
		blocksOf[b.Node]++
		if b.Borrowed != 0 {
			t.Errorf("block %s has %d borrowed addresses", b.CIDR, b.Borrowed)
		}
		pfx := b.CIDR
		for ip, p := range owner {
			if pfx.Contains(ip) && fmt.Sprintf("n%d", p%2+1) != b.Node {
				t.Errorf("%s of process %d (node n%d) is in block %s of %s", ip, p, p%2+1, pfx, b.Node)
			}
		}
	}
	if blocksOf["n1"] != 3 || blocksOf["n2"] != 3 || len(blocksOf) != 2 {
		t.Fatalf("blocks per node: %v", blocksOf)
	}
	if u.Pools[0].InUse != procs*per {
		t.Fatalf("in use %d", u.Pools[0].InUse)
	}
}

// testIPAMCheckExitCode: check exits 0 even with findings, and a
// datastore that is down is an error (exit 1).
func testIPAMCheckExitCode(t *testing.T, bin string) {
	ep, _ := ipamEnv(t, map[string][2]any{"p": {"10.65.0.0/24", 26}}, "n1")
	if out, err := exec.Command(bin, "ipam", "assign", "--handle", "w", "--node", "n1", "--endpoint", "ns/gone", ep).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	cmd := exec.Command(bin, "ipam", "check", "--min-age", "0", ep)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///nonexistent/docker.sock")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Check complete: 1 problems") || !strings.Contains(string(out), "containers not checked: Docker daemon not reachable") {
		t.Fatalf("check with a leak: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "ipam", "check", "--etcd-endpoints=http://127.0.0.1:1").CombinedOutput()
	var xe *exec.ExitError
	if !errors.As(err, &xe) || xe.ExitCode() != 1 || !strings.Contains(string(out), "error: datastore unreachable") {
		t.Fatalf("check without a datastore: %v\n%s", err, out)
	}
}

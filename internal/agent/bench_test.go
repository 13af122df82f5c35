package agent_test

// Benchmarks of the whole node (issue 4). Run them with hack/bench-agent.sh
// (as root), or e.g.:
//
//	go test -run '^$' -bench EndpointToKernel -benchtime 50x ./internal/agent/
//	go test -run '^$' -bench ColdStart -benchtime 3x ./internal/agent/
//	go test -run '^$' -bench NodeRSS -benchtime 1x ./internal/agent/
//
// The scale follows the nft driver's benchmark: endpoints spread over 100
// applications and 10 networks (profiles), IPv4 and IPv6 each; policy p
// selects application p%100 and allows TCP port 8000+p%100 from application
// (p*7)%100, so each endpoint has 10 ingress policies at 1,000 policies.
// The endpoints have no interfaces: the rule side is programmed in full and
// their routes wait for links that never come (by design).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
	"github.com/calico-docker/calico/internal/dataplane/nft"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/syncer"
	"github.com/calico-docker/calico/internal/testutil"
)

const (
	benchApps = 100
	benchNets = 10
)

// benchObject is one resource: its datastore key and stored JSON.
type benchObject struct {
	key   string
	value []byte
}

func benchIface(i int) string { return fmt.Sprintf("calib%06d", i) }

func benchWEP(i int) benchObject {
	n := i + 1
	// Calico's name for it: <node>-<orchestrator>-<workload>-<endpoint>,
	// '-' doubled inside each part.
	wl := fmt.Sprintf("w%06d", i)
	name := strings.ReplaceAll(testNode, "-", "--") + "-bench-" + wl + "-eth0"
	w := map[string]any{
		"apiVersion": api.APIVersion, "kind": "WorkloadEndpoint",
		"metadata": map[string]any{"name": name, "namespace": "default",
			"labels": map[string]string{"app": fmt.Sprintf("app%02d", i%benchApps)}},
		"spec": map[string]any{
			"orchestrator": "bench", "workload": wl, "endpoint": "eth0", "node": testNode,
			"interfaceName": benchIface(i),
			"ipNetworks": []string{
				fmt.Sprintf("10.%d.%d.%d/32", 128+(n>>16), (n>>8)&255, n&255),
				fmt.Sprintf("fd71:b::%x:%x/128", n>>16, n&0xffff),
			},
			"profiles": []string{fmt.Sprintf("net%d", i%benchNets)},
		},
	}
	b, _ := json.Marshal(w)
	return benchObject{datastore.ResourceKey("workloadendpoints", "default", name), b}
}

func benchPolicy(p int) benchObject {
	name := fmt.Sprintf("bench-p%04d", p)
	g := map[string]any{
		"apiVersion": api.APIVersion, "kind": "GlobalNetworkPolicy",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"order":    p,
			"selector": fmt.Sprintf("app == 'app%02d'", p%benchApps),
			"types":    []string{"Ingress"},
			"ingress": []any{map[string]any{
				"action": "Allow", "protocol": "TCP",
				"source":      map[string]any{"selector": fmt.Sprintf("app == 'app%02d'", (p*7)%benchApps)},
				"destination": map[string]any{"ports": []int{8000 + p%benchApps}},
			}},
		},
	}
	b, _ := json.Marshal(g)
	return benchObject{datastore.ResourceKey("globalnetworkpolicies", "", name), b}
}

func benchProfile(k int) benchObject {
	name := fmt.Sprintf("net%d", k)
	p := map[string]any{
		"apiVersion": api.APIVersion, "kind": "Profile",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"labelsToApply": map[string]string{"net": name},
			"ingress":       []any{map[string]any{"action": "Allow", "source": map[string]any{"selector": fmt.Sprintf("net == '%s'", name)}}},
			"egress":        []any{map[string]any{"action": "Allow"}},
		},
	}
	b, _ := json.Marshal(p)
	return benchObject{datastore.ResourceKey("profiles", "", name), b}
}

// benchState is the whole bench scale: profiles, policies, endpoints.
func benchState(nEP, nPol int) []benchObject {
	var objs []benchObject
	for k := range benchNets {
		objs = append(objs, benchProfile(k))
	}
	for p := range nPol {
		objs = append(objs, benchPolicy(p))
	}
	for i := range nEP {
		objs = append(objs, benchWEP(i))
	}
	return objs
}

// writeObjects stores objects in transactions of 5,000 (what apply does,
// minus the parsing).
func writeObjects(b testing.TB, st datastore.Store, objs []benchObject) {
	b.Helper()
	for chunk := range slices.Chunk(objs, 5000) {
		ops := make([]datastore.Op, len(chunk))
		for i, o := range chunk {
			ops[i] = datastore.Op{Type: datastore.OpPut, Key: o.key, Value: o.value}
		}
		if _, err := st.Txn(context.Background(), ops); err != nil {
			b.Fatal(err)
		}
	}
}

// nftProbe reads our table in a namespace over netlink.
type nftProbe struct {
	conn  *nftables.Conn
	table *nftables.Table
}

func newNFTProbe(b testing.TB, nsPath string) *nftProbe {
	b.Helper()
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		b.Fatal(err)
	}
	return &nftProbe{conn: c, table: &nftables.Table{Name: "calico", Family: nftables.TableFamilyINet}}
}

// dispatch returns the interfaces in the to-workload dispatch map: an
// endpoint is there exactly when its rules are (one atomic batch).
func (p *nftProbe) dispatch() (map[string]bool, error) {
	s, err := p.conn.GetSetByName(p.table, "tw-map")
	if err != nil {
		return nil, err
	}
	els, err := p.conn.GetSetElements(s)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(els))
	for _, e := range els {
		out[strings.TrimRight(string(e.Key), "\x00")] = true
	}
	return out, nil
}

// waitDispatch polls (every 0.5 ms) until iface is in the map.
func (p *nftProbe) waitDispatch(b testing.TB, iface string, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := p.dispatch()
		if err == nil && m[iface] {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not programmed within %v (last error %v)", iface, timeout, err)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func reportLatencies(b *testing.B, name string, ds []time.Duration) {
	slices.Sort(ds)
	p50, p99 := percentile(ds, 0.50), percentile(ds, 0.99)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
	b.Logf("%s: %d samples, p50 %v, p99 %v, max %v", name, len(ds), p50.Round(10*time.Microsecond),
		p99.Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond))
}

// BenchmarkEndpointToKernel: with 1,000 endpoints (and 1,000 policies)
// programmed, one new endpoint is written to the datastore and the clock runs
// until its dispatch element (and so its rules) is in the kernel. "write" is
// a direct datastore write of the JSON `calico apply` stores; "apply" runs
// the `calico apply` binary (process start and etcd connection included).
func BenchmarkEndpointToKernel(b *testing.B) {
	const base = 1000
	e := newEnv(b, envOpts{quiet: true})
	writeObjects(b, e.store, benchState(base, 1000))
	probe := newNFTProbe(b, e.host.Path())
	testutil.Eventually(b, time.Minute, func() error {
		m, err := probe.dispatch()
		if err != nil || len(m) < base {
			return fmt.Errorf("%d of %d endpoints programmed (%v)", len(m), base, err)
		}
		return nil
	})
	next := base
	b.Run("write", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			o := benchWEP(next)
			start := time.Now()
			if _, err := e.store.Update(context.Background(), o.key, o.value, 0); err != nil {
				b.Fatal(err)
			}
			probe.waitDispatch(b, benchIface(next), 10*time.Second)
			lat = append(lat, time.Since(start))
			next++
		}
		reportLatencies(b, "datastore write -> rules in kernel", lat)
	})
	b.Run("apply", func(b *testing.B) {
		dir := b.TempDir()
		var lat []time.Duration
		for b.Loop() {
			o := benchWEP(next)
			f := filepath.Join(dir, "wep.json")
			if err := os.WriteFile(f, o.value, 0o644); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if out, err := exec.Command(calicoBin(b), "apply", "-f", f, "--etcd-endpoints", e.etcd.Endpoints()[0]).CombinedOutput(); err != nil {
				b.Fatalf("calico apply: %v: %s", err, out)
			}
			probe.waitDispatch(b, benchIface(next), 10*time.Second)
			lat = append(lat, time.Since(start))
			next++
		}
		reportLatencies(b, "calico apply -> rules in kernel", lat)
	})
}

// BenchmarkColdStart: 10,000 endpoints and 1,000 policies in the datastore,
// a fresh host namespace; the clock runs from agent start until every
// endpoint is in the kernel. Also reported, outside the clock: the
// calculation alone (syncer decode + incremental calculator + Desired) and
// the nft driver alone (one cold Apply of that Desired into an empty
// namespace).
func BenchmarkColdStart(b *testing.B) {
	const nEP, nPol = 10000, 1000
	e := newEnv(b, envOpts{quiet: true, noStart: true})
	objs := benchState(nEP, nPol)
	writeObjects(b, e.store, objs)

	// Calculation alone.
	calcStart := time.Now()
	c := calc.NewCalculator(testNode)
	for _, o := range objs {
		u, err := syncer.Decode(datastore.KV{Key: o.key, Value: o.value, Revision: 1})
		if err != nil {
			b.Fatal(err)
		}
		switch obj := u.Object.(type) {
		case *api.WorkloadEndpoint:
			c.UpsertWorkloadEndpoint(obj)
		case *api.GlobalNetworkPolicy:
			c.UpsertGlobalNetworkPolicy(obj)
		case *api.Profile:
			c.UpsertProfile(obj)
		}
	}
	d := c.Desired()
	calcTook := time.Since(calcStart)
	if len(d.Endpoints) != nEP {
		b.Fatalf("calc: %d endpoints", len(d.Endpoints))
	}

	// The nft driver alone, into an empty namespace.
	ns := testutil.NewNetNS(b, "agb")
	drv, err := nft.New(nft.Options{NetNS: ns.Path(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = drv.Close() })
	drv.SetDesired(d)
	nftStart := time.Now()
	st, err := drv.Apply(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	nftTook := time.Since(nftStart)
	b.Logf("alone: calc %v (%d endpoints, %d chains, %d sets), nft cold apply %v (%+v)",
		calcTook.Round(time.Millisecond), len(d.Endpoints), len(d.Chains), len(d.Sets), nftTook.Round(time.Millisecond), st)

	var total, synced []time.Duration
	// Live heap (after a full GC) before the agent and with it running:
	// the agent's own retained memory (plus the etcd server's for its watch).
	calcRetained := d
	liveBefore := liveHeap()
	var liveAgent float64
	for b.Loop() {
		b.StopTimer()
		host := testutil.NewNetNS(b, "agh")
		host.MustExec(b, "ip", "link", "add", "agup0", "type", "veth", "peer", "name", "agup1")
		host.MustExec(b, "ip", "addr", "add", hostV4+"/24", "dev", "agup0")
		host.MustExec(b, "ip", "link", "set", "agup0", "up")
		host.MustExec(b, "ip", "link", "set", "agup1", "up")
		host.MustExec(b, "ip", "route", "add", "default", "dev", "agup0")
		probe := newNFTProbe(b, host.Path())
		cfg := e.cfg
		cfg.NetNS = host.Path()
		a, err := agent.New(cfg, "bench")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()

		start := time.Now()
		go func() { done <- a.Run(ctx) }()
		var syncAt time.Duration
		for {
			if syncAt == 0 && a.Status().InSync {
				syncAt = time.Since(start)
			}
			if s := a.Status(); s.Ready && s.Endpoints == nEP {
				if m, err := probe.dispatch(); err == nil && len(m) == nEP {
					break
				}
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("not programmed within 2 minutes: %+v", a.Status())
			}
			time.Sleep(2 * time.Millisecond)
		}
		total = append(total, time.Since(start))
		synced = append(synced, syncAt)

		b.StopTimer()
		if liveAgent == 0 {
			liveAgent = liveHeap() - liveBefore
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	runtime.KeepAlive(calcRetained)
	slices.Sort(total)
	b.ReportMetric(liveAgent, "agent-live-heap-MiB")
	b.ReportMetric(float64(percentile(total, 0.5).Milliseconds()), "programmed-ms")
	b.ReportMetric(float64(percentile(synced, 0.5).Milliseconds()), "in-sync-ms")
	b.ReportMetric(float64(calcTook.Milliseconds()), "calc-alone-ms")
	b.ReportMetric(float64(nftTook.Milliseconds()), "nft-alone-ms")
	b.Logf("agent start -> %d endpoints and %d policies in the kernel: %v (median of %d; datastore in sync after %v)",
		nEP, nPol, percentile(total, 0.5).Round(time.Millisecond), len(total), percentile(synced, 0.5).Round(time.Millisecond))
}

// liveHeap is the heap in use after a full collection, in MiB.
func liveHeap() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// BenchmarkNodeRSS runs `calico datastore run` and `calico node run` as
// processes inside a host namespace, loads 10,000 endpoints and 1,000
// policies with `calico apply`, and reads the node's VmRSS once everything
// is programmed (and its peak, VmHWM).
func BenchmarkNodeRSS(b *testing.B) {
	testutil.RequireRoot(b)
	testutil.RequireCmd(b, "ip", "busybox")
	bin := calicoBin(b)
	// The datastore this benchmark starts, whatever configuration files
	// or sockets the machine has.
	b.Setenv("ETCD_ENDPOINTS", datastore.DefaultEndpoint)
	const nEP, nPol = 10000, 1000
	for b.Loop() {
		host := testutil.NewNetNS(b, "agh")
		host.MustExec(b, "ip", "link", "add", "agup0", "type", "veth", "peer", "name", "agup1")
		host.MustExec(b, "ip", "addr", "add", hostV4+"/24", "dev", "agup0")
		host.MustExec(b, "ip", "link", "set", "agup0", "up")
		host.MustExec(b, "ip", "link", "set", "agup1", "up")
		host.MustExec(b, "ip", "route", "add", "default", "dev", "agup0")
		dir := b.TempDir()

		ds := startProc(b, "ip", "netns", "exec", host.Name, bin, "datastore", "run",
			"--data-dir", filepath.Join(dir, "etcd"), "--auto-compaction-retention", "0")
		testutil.Eventually(b, 30*time.Second, func() error {
			_, err := host.Exec(bin, "get", "ippools")
			return err
		})
		// Manifests: JSON lists of at most 10,000 resources (one transaction each).
		objs := append(benchState(nEP, nPol), benchObject{value: []byte(`{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"bench"},"spec":{"cidr":"10.128.0.0/16"}}`)})
		for j, c := range slices.Collect(slices.Chunk(objs, 5000)) {
			var raw []json.RawMessage
			for _, o := range c {
				raw = append(raw, o.value)
			}
			m, _ := json.Marshal(raw)
			f := filepath.Join(dir, fmt.Sprintf("m%d.json", j))
			if err := os.WriteFile(f, m, 0o644); err != nil {
				b.Fatal(err)
			}
			host.MustExec(b, bin, "apply", "-f", f)
		}

		start := time.Now()
		nodeCmd := []string{"netns", "exec", host.Name}
		if v := os.Getenv("NODE_GOMEMLIMIT"); v != "" {
			// To measure the node under a Go memory limit (env execs it:
			// the PID stays the node's).
			nodeCmd = append(nodeCmd, "env", "GOMEMLIMIT="+v)
		}
		nodeCmd = append(nodeCmd, bin, "node", "run", "--name", testNode,
			"--ip", hostV4+"/24", "--no-bgp", "--no-docker-plugin", "--etcd-endpoints", datastore.DefaultEndpoint)
		node := startProc(b, "ip", nodeCmd...)
		var st struct {
			Ready     bool `json:"ready"`
			Endpoints int  `json:"endpoints"`
		}
		testutil.Eventually(b, 2*time.Minute, func() error {
			out, err := host.Exec("busybox", "wget", "-qO-", "http://127.0.0.1:9099/status")
			if err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				return err
			}
			if !st.Ready || st.Endpoints != nEP {
				return fmt.Errorf("status %s", out)
			}
			return nil
		})
		took := time.Since(start)
		rss, hwm := procMem(b, node.Process.Pid, "VmRSS"), procMem(b, node.Process.Pid, "VmHWM")
		// Settled: the lowest VmRSS over the 5 s after it is programmed
		// (the node gives the memory of its first programming back to the
		// OS once ready; a measurement window, not a synchronisation).
		settled := rss
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			settled = min(settled, procMem(b, node.Process.Pid, "VmRSS"))
		}
		// Idle CPU: nothing changes after programming, so the node's CPU
		// time over the next 30 s is its idle cost (periodic checks,
		// resyncs, metrics).
		cpu0 := procCPU(b, node.Process.Pid)
		idleStart := time.Now()
		time.Sleep(30 * time.Second) // a measurement window, not a synchronisation
		idleCPU := (procCPU(b, node.Process.Pid) - cpu0).Seconds() / time.Since(idleStart).Seconds() * 100
		idleRSS := procMem(b, node.Process.Pid, "VmRSS")
		dsRSS := procMem(b, ds.Process.Pid, "VmRSS")
		// The Go runtime's view, from the node's own /metrics.
		if out, err := host.Exec("busybox", "wget", "-qO-", "http://127.0.0.1:9091/metrics"); err == nil {
			for _, l := range strings.Split(out, "\n") {
				for _, m := range []string{"go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_heap_released_bytes", "go_memstats_sys_bytes"} {
					if strings.HasPrefix(l, m+" ") {
						b.Logf("%s", l)
					}
				}
			}
		}
		b.ReportMetric(rss, "node-rss-MiB")
		b.ReportMetric(settled, "node-rss-settled-MiB")
		b.ReportMetric(hwm, "node-peak-MiB")
		b.ReportMetric(float64(took.Milliseconds()), "process-start-to-programmed-ms")
		b.ReportMetric(idleCPU, "node-idle-cpu-%")
		b.ReportMetric(idleRSS, "node-rss-idle30s-MiB")
		b.Logf("calico node run with %d endpoints and %d policies: VmRSS %.1f MiB when programmed, %.1f MiB settled (lowest over the next 5 s), VmHWM %.1f MiB, start -> programmed %v (etcd process VmRSS %.1f MiB)",
			nEP, nPol, rss, settled, hwm, took.Round(time.Millisecond), dsRSS)
		b.Logf("idle for 30 s after that: %.2f%% of one CPU, VmRSS %.1f MiB at the end", idleCPU, idleRSS)
	}
}

// startProc starts a process; it gets SIGTERM (then SIGKILL) by PID at cleanup.
func startProc(b testing.TB, name string, args ...string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "NO_DEFAULT_POOLS=true", "CALICO_NODENAME_FILE=" + filepath.Join(b.TempDir(), "nodename")}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd
}

// procCPU is the user plus system CPU time of a process, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(b testing.TB, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procMem reads a /proc/PID/status field in MiB.
func procMem(b testing.TB, pid int, field string) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("%s not in /proc/%d/status", field, pid)
	return 0
}

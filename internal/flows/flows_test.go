package flows

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
	"github.com/calico-docker/calico/internal/dataplane/nft"
	"github.com/calico-docker/calico/internal/testutil"
)

func TestParsePrefixRoundTrip(t *testing.T) {
	for in, want := range map[string]nft.FlowPrefix{
		"cflow D pi-0123456789abcdef 3": {Action: "Deny", Chain: "pi-0123456789abcdef", Rule: 3, Ingress: true},
		"cflow A pe-0123456789abcdef 0": {Action: "Allow", Chain: "pe-0123456789abcdef", Rule: 0},
		"cflow E tw pol":                {Action: "EndOfPolicies", Rule: -1, Ingress: true},
		"cflow E fw end\x00":            {Action: "EndOfProfiles", Rule: -1},
	} {
		got, ok := nft.ParseFlowPrefix(in)
		if !ok || got != want {
			t.Errorf("ParseFlowPrefix(%q) = %+v %v, want %+v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "calico x", "cflow D pi-x y", "cflow Q a b"} {
		if _, ok := nft.ParseFlowPrefix(bad); ok {
			t.Errorf("ParseFlowPrefix(%q) accepted", bad)
		}
	}
}

func TestRingAggregatesAndBounds(t *testing.T) {
	g := NewRing(3, 10*time.Second)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Record{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: "tcp", DstPort: 80, Action: "deny", Endpoint: "docker/b", Direction: "ingress", Rule: -1}
	for i := 0; i < 5; i++ {
		r.SrcPort = uint16(40000 + i) // ephemeral ports aggregate
		g.Add(r, t0.Add(time.Duration(i)*time.Second))
	}
	if got := g.Since(0); len(got) != 1 || got[0].Packets != 5 {
		t.Fatalf("aggregation: %+v", got)
	}
	g.Add(r, t0.Add(11*time.Second)) // next interval: a new record
	for i := 0; i < 3; i++ {
		r.DstPort = uint16(i + 1)
		g.Add(r, t0.Add(12*time.Second))
	}
	all := g.Since(0)
	if len(all) != 3 {
		t.Fatalf("ring holds %d records, want its capacity 3", len(all))
	}
	last := all[len(all)-1].Seq
	if len(g.Since(last)) != 0 {
		t.Fatal("Since(last seq) not empty")
	}
	acts, denied := g.Totals()
	if acts["deny"] != 9 || denied["docker/b"] != 9 {
		t.Fatalf("totals %v %v", acts, denied)
	}
}

const yaml = `
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: front}
spec:
  ingress: [{action: Allow, source: {selector: "role == 'web'"}}]
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: web, namespace: docker, labels: {role: web}}
spec: {node: h1, interfaceName: califlw0000001, ipNetworks: [10.67.0.1/32], profiles: [front]}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: db, namespace: docker, labels: {role: db}}
spec: {node: h1, interfaceName: califlw0000002, ipNetworks: [10.67.0.2/32], profiles: [front]}
`

const policy = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db-ping}
spec:
  selector: has(role)
  ingress: [{action: Deny, protocol: ICMP, source: {selector: "role == 'db'"}}, {action: Allow, protocol: ICMP}]
`

func snapshot(t *testing.T, docs ...string) *calc.Snapshot {
	s := &calc.Snapshot{Node: "h1"}
	for _, d := range docs {
		rs, err := api.Decode([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			api.Default(r)
			switch o := r.(type) {
			case *api.Profile:
				s.Profiles = append(s.Profiles, *o)
			case *api.WorkloadEndpoint:
				s.WorkloadEndpoints = append(s.WorkloadEndpoints, *o)
			case *api.GlobalNetworkPolicy:
				s.GlobalNetworkPolicies = append(s.GlobalNetworkPolicies, *o)
			}
		}
	}
	return s
}

// TestFlowLogsFromKernel programs real nftables with flow logs on, reads
// NFLOG in the namespace and checks that a denied ping shows up with the
// profile's end-of-chain reason, and after a policy with the policy and
// rule that allowed or denied it.
func TestFlowLogsFromKernel(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "ip", "sysctl", "busybox")
	host := testutil.NewNetNS(t, "flw-h")
	host.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	host.MustExec(t, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	host.MustExec(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
	host.MustExec(t, "ip", "link", "set", "up1", "up")
	host.MustExec(t, "ip", "link", "set", "up0", "up")
	host.MustExec(t, "ip", "route", "add", "default", "via", "192.0.2.2", "dev", "up0", "onlink")
	var ws []testutil.NetNS
	for i := 1; i <= 2; i++ {
		iface := fmt.Sprintf("califlw000000%d", i)
		addr := fmt.Sprintf("10.67.0.%d", i)
		w := testutil.NewNetNS(t, "flw-w")
		host.MustExec(t, "ip", "link", "add", iface, "type", "veth", "peer", "name", "eth0", "netns", w.Name)
		host.MustExec(t, "ip", "link", "set", iface, "address", "ee:ee:ee:ee:ee:ee")
		host.MustExec(t, "sysctl", "-qw", "net.ipv4.conf."+iface+".proxy_arp=1", "net.ipv4.neigh."+iface+".proxy_delay=0")
		host.MustExec(t, "ip", "link", "set", iface, "up")
		host.MustExec(t, "ip", "route", "add", addr+"/32", "dev", iface, "scope", "link")
		w.MustExec(t, "ip", "addr", "add", addr+"/32", "dev", "eth0")
		w.MustExec(t, "ip", "link", "set", "eth0", "up")
		w.MustExec(t, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
		w.MustExec(t, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
		ws = append(ws, w)
	}
	web, db := ws[0], ws[1]
	drv, err := nft.New(nft.Options{NetNS: host.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	c := NewCollector()
	program := func(s *calc.Snapshot) {
		d := *calc.Compute(s)
		d.FlowLogs = true
		drv.SetDesired(&d)
		if _, err := drv.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.SetDesired(&d, "h1")
	}
	program(snapshot(t, yaml))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, host.Path()) }()
	t.Cleanup(func() { cancel(); <-done })

	ping := func(from testutil.NetNS, to string) bool {
		_, err := from.Exec("busybox", "ping", "-c", "1", "-W", "1", to)
		return err == nil
	}
	find := func(want func(r Record) bool) Record {
		t.Helper()
		var got Record
		testutil.Eventually(t, 5*time.Second, func() error {
			for _, r := range c.Ring.Since(0) {
				if want(r) {
					got = r
					return nil
				}
			}
			return fmt.Errorf("no such flow yet in %+v", c.Ring.Since(0))
		})
		return got
	}

	// db -> web: web's profile admits only role web: dropped at the end of
	// web's profiles.
	if ping(db, "10.67.0.1") {
		t.Fatal("db -> web ping got through")
	}
	r := find(func(r Record) bool { return r.Action == "deny" && r.Dst.String() == "10.67.0.1" })
	if r.Endpoint != "docker/web" || r.Direction != "ingress" || r.Reason != "no policy or profile allowed it (profiles profile:front)" || r.Proto != "icmp" || r.SrcEndpoint != "docker/db" {
		t.Errorf("denied flow: %+v", r)
	}
	// web -> db: allowed by the profile (egress of web, ingress of db).
	if !ping(web, "10.67.0.2") {
		t.Fatal("web -> db ping dropped")
	}
	r = find(func(r Record) bool {
		return r.Action == "allow" && r.Direction == "ingress" && r.Dst.String() == "10.67.0.2"
	})
	if r.Policy != "profile:front" || r.Rule != 0 {
		t.Errorf("allowed flow: %+v", r)
	}

	// With a policy on both: db -> web denied by its rule 0, web -> db
	// allowed by its rule 1.
	program(snapshot(t, yaml, policy))
	if ping(db, "10.67.0.1") {
		t.Fatal("db -> web ping got through the deny rule")
	}
	r = find(func(r Record) bool { return r.Policy == "gnp:db-ping" && r.Action == "deny" })
	if r.Rule != 0 || r.Endpoint != "docker/web" || r.Direction != "ingress" {
		t.Errorf("flow denied by policy: %+v", r)
	}
	if !ping(web, "10.67.0.2") {
		t.Fatal("web -> db ping dropped under the policy")
	}
	r = find(func(r Record) bool { return r.Policy == "gnp:db-ping" && r.Action == "allow" })
	if r.Action != "allow" || r.Rule != 1 || r.Endpoint != "docker/db" {
		t.Errorf("flow allowed by policy: %+v", r)
	}
	if !strings.HasPrefix(r.Host, "h1") {
		t.Errorf("host: %+v", r)
	}
}

package agent_test

import (
	"fmt"
	"strings"
	"testing"
)

// Profiles are the seed's security groups: members reach each other, other
// groups are dropped, in both directions, for ping and TCP.
func TestProfilesSameAllowedOtherDenied(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	c := e.newWorkload("c", "blue", false, nil)
	d := e.newWorkload("d", "blue", false, nil)
	e.addWorkloads(t, profileYAML("red")+profileYAML("blue"), a, b, c, d)
	serve(t, a.ns, 7000)
	serve(t, c.ns, 7000)

	reach(t, "a -> b (same profile)", pingP(a, b.v4))
	reach(t, "b -> a (same profile)", pingP(b, a.v4))
	reach(t, "c -> d (same profile)", pingP(c, d.v4))
	reach(t, "b -> a tcp", tcpP(b, a.v4, 7000))
	reach(t, "d -> c tcp", tcpP(d, c.v4, 7000))

	blocked(t, "c -> a (other profile)", pingP(c, a.v4))
	blocked(t, "a -> c (other profile)", pingP(a, c.v4))
	blocked(t, "d -> a tcp (other profile)", tcpP(d, a.v4, 7000))
	blocked(t, "b -> c tcp (other profile)", tcpP(b, c.v4, 7000))
}

// An ordered GlobalNetworkPolicy overrides the profiles; traffic it does not
// allow is dropped at the end of the policies; Pass hands it to the profiles.
func TestGlobalPolicyOverridesProfilesAndPassFallsThrough(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, map[string]string{"who": "a"})
	b := e.newWorkload("b", "red", false, map[string]string{"who": "b", "role": "db"})
	c := e.newWorkload("c", "red", false, map[string]string{"who": "c"})
	e.addWorkloads(t, profileYAML("red"), a, b, c)
	reach(t, "a -> b (profile)", pingP(a, b.v4))
	reach(t, "c -> b (profile)", pingP(c, b.v4))

	e.apply(t, `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-a-to-db}
spec:
  order: 10
  selector: role == 'db'
  ingress:
  - action: Deny
    source: {selector: who == 'a'}
`)
	becomesBlocked(t, "a -> b (denied by policy over the profile)", pingP(a, b.v4))
	// c matches no rule of the only policy: dropped at the end of the policies.
	blocked(t, "c -> b (end of policies)", pingP(c, b.v4))
	reach(t, "a -> c (c is selected by no policy: profile)", pingP(a, c.v4))

	e.apply(t, `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pass-c}
spec:
  order: 5
  selector: role == 'db'
  ingress:
  - action: Pass
    source: {selector: who == 'c'}
`)
	reach(t, "c -> b (Pass falls through to the profile)", pingP(c, b.v4))
	blocked(t, "a -> b (still denied)", pingP(a, b.v4))
}

// Among policies, order decides: a Deny ordered before an Allow wins, and
// moving it after the Allow lets traffic through.
func TestDenyBeforeAllowByOrder(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "", false, map[string]string{"who": "a"})
	b := e.newWorkload("b", "", false, map[string]string{"who": "b", "role": "db"})
	c := e.newWorkload("c", "", false, map[string]string{"who": "c"})
	gnp := func(denyOrder int) string {
		return fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-all}
spec:
  order: 200
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-a}
spec:
  order: %d
  selector: role == 'db'
  ingress:
  - action: Deny
    source: {selector: who == 'a'}
---
`, denyOrder)
	}
	e.addWorkloads(t, gnp(100), a, b, c)
	reach(t, "c -> b (allow-all)", pingP(c, b.v4))
	reach(t, "a -> c (allow-all)", pingP(a, c.v4))
	blocked(t, "a -> b (deny ordered first)", pingP(a, b.v4))

	e.apply(t, gnp(300))
	reach(t, "a -> b (allow now ordered first)", pingP(a, b.v4))
}

// Ports and protocols end to end: TCP to one port only; ICMP echo by type.
func TestPortsAndProtocols(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "", false, nil)
	b := e.newWorkload("b", "", false, map[string]string{"role": "db"})
	e.addWorkloads(t, `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: egress-all}
spec:
  selector: all()
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db-port}
spec:
  order: 10
  selector: role == 'db'
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [7001, "7100:7200"]}
  - action: Allow
    protocol: UDP
    destination: {ports: [7002]}
---
`, a, b)
	for _, p := range []int{7001, 7002, 7150} {
		serve(t, b.ns, p)
	}
	reach(t, "a -> b tcp/7001", tcpP(a, b.v4, 7001))
	reach(t, "a -> b tcp/7150 (range)", tcpP(a, b.v4, 7150))
	blocked(t, "a -> b tcp/7002 (only UDP allowed there)", tcpP(a, b.v4, 7002))
	blocked(t, "a -> b ping (ICMP not allowed)", pingP(a, b.v4))

	e.apply(t, `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db-port}
spec:
  order: 10
  selector: role == 'db'
  ingress:
  - action: Allow
    protocol: TCP
    destination: {notPorts: [7001]}
  - action: Allow
    protocol: ICMP
    icmp: {type: 8}
`)
	reach(t, "a -> b ping (ICMP echo allowed)", pingP(a, b.v4))
	reach(t, "a -> b tcp/7002 (notPorts 7001)", tcpP(a, b.v4, 7002))
	blocked(t, "a -> b tcp/7001 (notPorts)", tcpP(a, b.v4, 7001))
}

// Nets and notNets end to end.
func TestNets(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "", false, nil)
	b := e.newWorkload("b", "", false, map[string]string{"role": "db"})
	c := e.newWorkload("c", "", false, nil)
	policy := func(field string) string {
		return fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: egress-all}
spec:
  selector: all()
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db-nets}
spec:
  order: 10
  selector: role == 'db'
  ingress:
  - action: Allow
    source: {%s: ["%s/32", "192.0.2.0/24"]}
---
`, field, a.v4)
	}
	e.addWorkloads(t, policy("nets"), a, b, c)
	reach(t, "a -> b (source in nets)", pingP(a, b.v4))
	blocked(t, "c -> b (source not in nets)", pingP(c, b.v4))

	e.apply(t, policy("notNets"))
	reach(t, "c -> b (source not in notNets)", pingP(c, b.v4))
	blocked(t, "a -> b (source in notNets)", pingP(a, b.v4))
}

// A label change (re-applying the WorkloadEndpoint) moves an endpoint in and
// out of a policy's selector, and in and out of a rule's source set.
func TestLabelChangeMovesEndpoint(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	c := e.newWorkload("c", "red", false, nil)
	e.addWorkloads(t, profileYAML("red")+`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db}
spec:
  order: 10
  selector: role == 'db'
  ingress:
  - action: Allow
    source: {selector: tier == 'web'}
---
`, a, b, c)
	reach(t, "a -> b (profile; b not selected)", pingP(a, b.v4))

	// b joins the policy: a (not web) is now dropped.
	b.labels = map[string]string{"role": "db"}
	e.apply(t, b.wepYAML())
	becomesBlocked(t, "a -> b (b selected by the policy)", pingP(a, b.v4))

	// a joins the source set.
	a.labels = map[string]string{"tier": "web"}
	e.apply(t, a.wepYAML())
	reach(t, "a -> b (a in the source set)", pingP(a, b.v4))
	blocked(t, "c -> b (c not in the source set)", pingP(c, b.v4))

	// a leaves the set again.
	a.labels = nil
	e.apply(t, a.wepYAML())
	becomesBlocked(t, "a -> b (a left the source set)", pingP(a, b.v4))

	// b leaves the policy: back to the profile.
	b.labels = nil
	e.apply(t, b.wepYAML())
	reach(t, "a -> b (b no longer selected)", pingP(a, b.v4))
	reach(t, "c -> b (b no longer selected)", pingP(c, b.v4))
}

// A workload's packets from an address that is not its own are dropped, even
// when the host would route them (a static route for the address points back
// into the workload's veth, so reverse-path filtering lets them through).
func TestSpoofedSourceDropped(t *testing.T) {
	e := newEnv(t, envOpts{})
	// Profile "open" allows everything, so no selector set can explain a drop.
	a := e.newWorkload("a", "open", false, nil)
	b := e.newWorkload("b", "open", false, nil)
	e.addWorkloads(t, `apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: open}
spec:
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
---
`, a, b)
	const spoof = "10.71.0.200"
	a.ns.MustExec(t, "ip", "addr", "add", spoof+"/32", "dev", "eth0")
	e.host.MustExec(t, "ip", "route", "add", spoof+"/32", "dev", a.iface, "proto", "static")

	reach(t, "a -> b from its own address", pingP(a, b.v4))
	blocked(t, "a -> b from "+spoof, pingP(a, b.v4, spoof))

	// The same packets pass once the address is the endpoint's: nothing but
	// the anti-spoofing check stood in their way.
	a.extra = []string{spoof}
	e.apply(t, a.wepYAML())
	reach(t, "a -> b from "+spoof+" (now a's)", pingP(a, b.v4, spoof))

	a.extra = nil
	e.apply(t, a.wepYAML())
	becomesBlocked(t, "a -> b from "+spoof+" (no longer a's)", pingP(a, b.v4, spoof))
}

// Traffic from a workload to its own host is dropped unless
// FelixConfiguration's defaultEndpointToHostAction says Accept.
func TestWorkloadToHost(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", true, nil)
	b := e.newWorkload("b", "red", true, nil)
	e.addWorkloads(t, profileYAML("red"), a, b)
	reach(t, "a -> b", pingP(a, b.v4))
	reach(t, "a -> b v6", pingP(a, b.v6))
	blocked(t, "a -> host", pingP(a, hostV4))
	blocked(t, "a -> host v6", pingP(a, hostV6))

	e.apply(t, `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {defaultEndpointToHostAction: Accept}
`)
	reach(t, "a -> host (Accept)", pingP(a, hostV4))
	reach(t, "a -> host v6 (Accept)", pingP(a, hostV6))

	e.calico(t, "", "delete", "felixconfiguration", "default")
	becomesBlocked(t, "a -> host (default Drop again)", pingP(a, hostV4))
}

// natOutgoing masquerades workload traffic leaving the pools: the outside
// namespace, which has no route to the workloads, sees the host's address.
func TestNATOutgoing(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	e.addWorkloads(t, profileYAML("red"), a)
	// The server answers with its own view of its connections.
	serve(t, e.outside, 7000, "busybox", "netstat", "-tn")

	reach(t, "a -> host uplink route is programmed", func() error {
		if !strings.Contains(e.ourRoutes(t), a.v4) {
			return fmt.Errorf("no route to %s yet", a.v4)
		}
		return nil
	})
	blocked(t, "a -> outside without natOutgoing (no route back)", tcpP(a, outsideV4, 7000))

	e.apply(t, poolYAML("ag-pool", poolV4, true))
	var seen string
	reach(t, "a -> outside with natOutgoing", func() error {
		out, err := connect(a.ns, outsideV4, 7000)
		seen = out
		return err
	})
	peer := ""
	for _, l := range strings.Split(seen, "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.HasSuffix(f[3], ":7000") {
			peer = f[4]
		}
	}
	if !strings.HasPrefix(strings.TrimPrefix(peer, "::ffff:"), hostV4+":") {
		t.Fatalf("outside saw the connection from %q, want the host's %s:\n%s", peer, hostV4, seen)
	}

	// Traffic between workloads inside the pools is not masqueraded.
	b := e.newWorkload("b", "red", false, nil)
	e.addWorkloads(t, "", b)
	serve(t, b.ns, 7000, "busybox", "netstat", "-tn")
	out, err := "", error(nil)
	reach(t, "a -> b", func() error { out, err = connect(a.ns, b.v4, 7000); return err })
	if !strings.Contains(out, a.v4+":") {
		t.Fatalf("b did not see a's own address %s:\n%s", a.v4, out)
	}
}

// IPv6: same profile allowed, other profile denied, ping and TCP.
func TestIPv6Profiles(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", true, nil)
	b := e.newWorkload("b", "red", true, nil)
	c := e.newWorkload("c", "blue", true, nil)
	d := e.newWorkload("d", "blue", true, nil)
	e.addWorkloads(t, profileYAML("red")+profileYAML("blue"), a, b, c, d)
	serve(t, a.ns, 7000)
	serve(t, c.ns, 7000)
	reach(t, "b -> a v6", pingP(b, a.v6))
	reach(t, "a -> b v6", pingP(a, b.v6))
	reach(t, "b -> a v6 tcp", tcpP(b, a.v6, 7000))
	reach(t, "d -> c v6 tcp", tcpP(d, c.v6, 7000))
	reach(t, "c -> d v6", pingP(c, d.v6))
	blocked(t, "c -> a v6 (other profile)", pingP(c, a.v6))
	blocked(t, "c -> a v6 tcp (other profile)", tcpP(c, a.v6, 7000))
	blocked(t, "a -> c v6 (other profile)", pingP(a, c.v6))
	blocked(t, "a -> c v6 tcp (other profile)", tcpP(a, c.v6, 7000))
}

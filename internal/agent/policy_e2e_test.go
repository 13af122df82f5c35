package agent_test

import (
	"fmt"
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

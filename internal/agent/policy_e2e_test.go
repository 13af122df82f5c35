package agent_test

import (
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

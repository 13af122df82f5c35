package agent_test

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/calico-docker/calico/internal/testutil"
)

// Per-rule counters: a ping between two members of a profile shows on
// /metrics as packets of that profile's ingress and egress rule 0.
func TestRuleMetrics(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	e.addWorkloads(t, profileYAML("red"), a, b)
	reach(t, "a -> b", pingP(a, b.v4))
	re := regexp.MustCompile(`(?m)^calico_policy_rule_packets_total\{action="Allow",chain="profile:red",direction="(\w+)",kind="Profile",name="red",rule="0"\} ([0-9.e+]+)$`)
	testutil.Eventually(t, waitLong, func() error {
		code, body, err := httpGet("http://" + e.agent.a.MetricsAddr() + "/metrics")
		if err != nil || code != 200 {
			return fmt.Errorf("GET /metrics: %d %v", code, err)
		}
		got := map[string]float64{}
		for _, m := range re.FindAllStringSubmatch(body, -1) {
			got[m[1]], _ = strconv.ParseFloat(m[2], 64)
		}
		if got["ingress"] < 1 || got["egress"] < 1 {
			return fmt.Errorf("profile:red rule 0 counters %v, want >= 1 each:\n%s", got, body)
		}
		return nil
	})
}

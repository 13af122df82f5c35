package agent_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/testutil"
)

// Observability of one node: per-rule counters on /metrics, and flow logs
// (FelixConfiguration flowLogsFileEnabled) read with `calico flows` over
// the node's socket: a denied ping names the profile that did not allow
// it, and after a GlobalNetworkPolicy allows it, the policy and rule.
func TestRuleMetricsAndFlowLogs(t *testing.T) {
	e := newEnv(t, envOpts{noStart: true})
	sock := filepath.Join(t.TempDir(), "flows.sock")
	e.cfg.FlowsSocket = sock
	e.apply(t, `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {flowLogsFileEnabled: true}
`)
	e.startAgent(t)
	e.waitReady(t)
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	c := e.newWorkload("c", "blue", false, nil)
	e.addWorkloads(t, profileYAML("red")+profileYAML("blue"), a, b, c)
	reach(t, "a -> b", pingP(a, b.v4))
	blocked(t, "c -> a", pingP(c, a.v4))

	re := regexp.MustCompile(`(?m)^calico_policy_rule_packets_total\{action="Allow",chain="profile:red",direction="(\w+)",kind="Profile",name="red",rule="0"\} ([0-9.e+]+)$`)
	denied := regexp.MustCompile(`(?m)^calico_denied_packets_total\{endpoint="[^"]*"\} ([0-9.e+]+)$`)
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
			return fmt.Errorf("profile:red rule 0 counters %v, want >= 1 each", got)
		}
		if !denied.MatchString(body) {
			return fmt.Errorf("no calico_denied_packets_total")
		}
		return nil
	})

	var out string
	testutil.Eventually(t, waitLong, func() error {
		out = e.calico(t, "", "flows", "--denied", "--socket", sock)
		if !strings.Contains(out, "no policy or profile allowed it (profiles profile:red)") || !strings.Contains(out, c.v4) {
			return fmt.Errorf("calico flows --denied:\n%s", out)
		}
		return nil
	})
	if strings.Contains(out, "ALLOW") {
		t.Errorf("--denied shows allowed flows:\n%s", out)
	}

	e.apply(t, `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: ping-red}
spec:
  selector: ag.profile == 'red'
  ingress: [{action: Allow, protocol: ICMP, source: {selector: "ag.profile == 'blue'"}}]
`)
	testutil.Eventually(t, waitLong, func() error {
		if err := pingP(c, a.v4)(); err != nil {
			return err
		}
		out = e.calico(t, "", "flows", "--allowed", "--to", a.v4, "-o", "json", "--socket", sock)
		if !strings.Contains(out, `"policy": "gnp:ping-red"`) || !strings.Contains(out, `"rule": 0`) {
			return fmt.Errorf("calico flows --allowed:\n%s", out)
		}
		return nil
	})
}

package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/testutil"
)

// TestHostEndpointFollowsAddress: a HostEndpoint with only expectedIPs
// governs the interface that carries one of them, and follows the address
// as it is added and removed, at once (netlink address events; the periodic
// resync is set far beyond the test's deadlines).
func TestHostEndpointFollowsAddress(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, envOpts{resync: time.Hour})
	e.apply(t, `apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: by-address}
spec:
  node: `+testNode+`
  expectedIPs: [10.72.9.7]
`)
	governed := func(want bool) func() error {
		return func() error {
			got := strings.Contains(e.nftTable(t), `"agup0" : goto hi-`)
			if got != want {
				return fmt.Errorf("agup0 governed by a host endpoint: %v, want %v", got, want)
			}
			return nil
		}
	}
	// No interface carries the address yet: the endpoint governs nothing.
	testutil.Eventually(t, 15*time.Second, governed(false))
	e.host.MustExec(t, "ip", "addr", "add", "10.72.9.7/32", "dev", "agup0")
	testutil.Eventually(t, 15*time.Second, governed(true))
	e.host.MustExec(t, "ip", "addr", "del", "10.72.9.7/32", "dev", "agup0")
	testutil.Eventually(t, 15*time.Second, governed(false))
}

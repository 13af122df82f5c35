package agent

import (
	"net/netip"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
)

// staleRouteGrace is how long a restarted agent keeps the BGP-learned routes
// a previous instance left in the kernel while its own speaker re-learns
// them. Without it the first apply after a restart would delete them and cut
// cross-host traffic until BGP converged (the agent-side half of graceful
// restart; the peers keep our routes by BGP graceful restart).
const staleRouteGrace = 90 * time.Second

// learnedRoutes is what the apply loop merges into the desired routes: the
// speaker's current best paths and, during the grace period after a restart,
// the routes the previous instance had learned that the speaker has not
// (re)learned yet.
func (a *Agent) learnedRoutes() []dataplane.Route {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.stale) == 0 || !a.clock.Now().Before(a.staleUntil) { // over when reached: the AfterFunc fires then
		a.stale = nil
		return a.learned
	}
	out := append([]dataplane.Route(nil), a.learned...)
	have := make(map[netip.Prefix]bool, len(out))
	for _, r := range out {
		have[r.Dst] = true
	}
	for _, r := range a.stale {
		if !have[r.Dst] {
			out = append(out, r)
		}
	}
	return out
}

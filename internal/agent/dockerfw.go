package agent

import (
	"context"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/dockerfw"
	"github.com/calico-docker/calico/internal/dataplane/nft"
)

// FirewallDriver is the part of the Docker firewall driver the agent uses.
type FirewallDriver interface {
	SetDesired(dockerfw.Desired)
	Apply(ctx context.Context) (dockerfw.Status, error)
}

// checkFirewall keeps our rule in Docker's firewall and re-reads the host
// settings forwarding needs. The loop calls it once the datastore is in sync
// and then every FirewallCheckInterval: that interval bounds how long a
// flushed DOCKER-USER or a reset sysctl goes unrepaired.
func (a *Agent) checkFirewall(ctx context.Context) {
	var summary string
	var fwErr error
	if a.fw != nil {
		a.fw.SetDesired(dockerfw.Desired{Mark: nft.MarkForwardAllowed})
		st, err := a.fw.Apply(ctx)
		summary, fwErr = st.Summary(), err
		if err != nil {
			a.log.Warn("docker firewall: could not put our DOCKER-USER rule in place", "err", err)
		}
	}
	fwd := a.forwardingProblem()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fwSummary, a.fwErr, a.fwdProblem = summary, fwErr, fwd
	a.fwChecked = true
}

func (a *Agent) firewallChecked() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fwChecked
}

// desiredHasIPv6 mirrors the routes driver: IPv6 forwarding is wanted
// when any desired route or endpoint address is IPv6.
func desiredHasIPv6(d *dataplane.Desired) bool {
	for _, r := range d.Routes {
		if r.Dst.Addr().Is6() {
			return true
		}
	}
	for _, e := range d.Endpoints {
		for _, p := range e.Addrs {
			if p.Addr().Is6() {
				return true
			}
		}
	}
	return false
}

// forwardingProblem asks the routes driver which forwarding sysctls are off
// ("" when all is well); IPv6 forwarding counts when the desired state has
// IPv6.
func (a *Agent) forwardingProblem() string {
	a.mu.Lock()
	v6 := a.wantV6
	a.mu.Unlock()
	return a.rt.ForwardingProblem(v6)
}

package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/dockerfw"
	"github.com/calico-docker/calico/internal/dataplane/nft"
	"github.com/calico-docker/calico/internal/nsexec"
)

// fwDriver is the part of the Docker firewall driver the agent uses.
type fwDriver interface {
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

// forwardingProblem reads what forwarding to and from workloads needs: IPv4
// forwarding (the routes driver sets net.ipv4.ip_forward=1 on every apply,
// which also turns on forwarding of every interface), forwarding on the
// host's own interfaces (the kernel checks the input interface's setting),
// and IPv6 forwarding when this node has an IPv6 address. Workload
// interfaces' own settings (forwarding, rp_filter=1, proxy_arp) are the
// routes driver's: it sets them when an interface appears and re-checks them
// on every resync. It returns "" when all is well.
func (a *Agent) forwardingProblem() string {
	keys := []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv4/conf/default/forwarding"}
	a.mu.Lock()
	v6 := a.wantV6
	a.mu.Unlock()
	vals, err := nsexec.Read(a.cfg.NetNS, keys...)
	if err != nil {
		return fmt.Sprintf("cannot read forwarding sysctls: %v", err)
	}
	if v6 {
		// Missing when IPv6 is disabled on this host; then there is nothing to forward.
		if v, err := nsexec.Read(a.cfg.NetNS, "net/ipv6/conf/all/forwarding"); err == nil {
			keys, vals = append(keys, "net/ipv6/conf/all/forwarding"), append(vals, v[0])
		}
	}
	var bad []string
	for i, k := range keys {
		if strings.TrimSpace(vals[i]) != "1" {
			bad = append(bad, strings.ReplaceAll(k, "/", ".")+"="+strings.TrimSpace(vals[i]))
		}
	}
	if len(bad) > 0 {
		return "forwarding is off (" + strings.Join(bad, ", ") + "); the node sets it on its next apply, unless something on the host keeps turning it off"
	}
	return ""
}

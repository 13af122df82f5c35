package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Prefix limit. GoBGP counts what each peer sent (before any policy) and,
// when a peer goes over its limit, sends a CEASE "maximum number of prefixes
// reached" NOTIFICATION, closes the session and keeps it down (admin state
// PFX_CT). The speaker watches for that, says so in the log and in Status,
// and tries the session again after Config.PrefixLimitRestart.

// watchPrefixLimits starts watching session state changes for sessions cut
// by their prefix limit; it stops with ctx.
func (g *GoBGP) watchPrefixLimits(ctx context.Context, srv *server.BgpServer) error {
	return srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE || ev.Peer.State.AdminState != api.PeerState_ADMIN_STATE_PFX_CT ||
				ev.Peer.State.SessionState == bgppkt.BGP_FSM_ESTABLISHED {
				return
			}
			addr := ev.Peer.State.NeighborAddress.Unmap()
			g.limitMu.Lock()
			_, already := g.limited[addr]
			if !already {
				g.limited[addr] = time.Now()
			}
			g.limitMu.Unlock()
			if already {
				return
			}
			g.mu.Lock()
			p, ok := g.peers[addr]
			g.mu.Unlock()
			if !ok {
				return
			}
			g.log.Warn("BGP peer sent more prefixes than its limit; session torn down",
				"peer", addr, "type", p.Type, "name", p.Name, "maxPrefixes", g.maxPrefixes(p),
				"retryIn", g.cfg.PrefixLimitRestart)
			time.AfterFunc(g.cfg.PrefixLimitRestart, func() { g.retryLimited(addr) })
		},
	}, server.WatchPeer())
}

// retryLimited brings a session cut by its prefix limit back up.
func (g *GoBGP) retryLimited(addr netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateRunning {
		return
	}
	g.limitMu.Lock()
	_, cut := g.limited[addr]
	delete(g.limited, addr)
	g.limitMu.Unlock()
	if _, ok := g.peers[addr]; !ok || !cut {
		return
	}
	g.log.Info("BGP peer cut by its prefix limit: trying the session again", "peer", addr)
	if err := g.srv.EnablePeer(context.Background(), &api.EnablePeerRequest{Address: addr.String()}); err != nil {
		g.log.Warn("BGP peer cut by its prefix limit: cannot enable it again", "peer", addr, "err", err)
	}
}

// clearLimited forgets a peer's prefix-limit cut (it was removed or added
// again, which starts a fresh session).
func (g *GoBGP) clearLimited(addr netip.Addr) {
	g.limitMu.Lock()
	delete(g.limited, addr)
	g.limitMu.Unlock()
}

// limitInfo is the status detail of a session cut by its prefix limit.
func (g *GoBGP) limitInfo(p Peer, st *api.PeerState) string {
	if st.GetAdminState() != api.PeerState_ADMIN_STATE_PFX_CT {
		return ""
	}
	g.limitMu.Lock()
	at, ok := g.limited[p.Address]
	g.limitMu.Unlock()
	s := fmt.Sprintf("(max prefixes %d exceeded: session torn down", g.maxPrefixes(p))
	if ok {
		s += fmt.Sprintf(", retry at %s", at.Add(g.cfg.PrefixLimitRestart).Format("15:04:05"))
	}
	return s + ")"
}

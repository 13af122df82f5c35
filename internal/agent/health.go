package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/calico-docker/calico/internal/nodectl"
)

// serveHTTP listens on addr and serves h until ctx is done.
func serveHTTP(ctx context.Context, addr string, h http.Handler) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr(), nil
}

func (a *Agent) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/liveness", func(w http.ResponseWriter, _ *http.Request) {
		if err := a.live(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readiness", func(w http.ResponseWriter, _ *http.Request) {
		if h := a.Status(); !h.Ready {
			http.Error(w, "not ready: "+h.Reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		h := a.Status()
		a.mu.Lock()
		b := a.bgp
		a.mu.Unlock()
		if b != nil {
			if peers, err := b.statusJSON(r.Context()); err == nil {
				h.Peers = peers
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	})
	return mux
}

func metricsHandler(m *metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

// live fails when the apply loop has not turned for a long time while work was pending.
func (a *Agent) live() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.loopBeat.IsZero() && a.clock.Since(a.loopBeat) > 5*time.Minute {
		return errors.New("apply loop stalled")
	}
	return nil
}

// Status is the agent's state for /status and `calico node status`.
func (a *Agent) Status() nodectl.Health {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := nodectl.Health{Node: a.cfg.NodeName, Endpoints: a.endpoints, InSync: a.inSync, Version: a.version,
		DockerFirewall: a.fwSummary, Forwarding: "ok"}
	if a.fwdProblem != "" {
		h.Forwarding = a.fwdProblem
	}
	if !a.fwChecked {
		h.Forwarding = ""
	}
	switch {
	case !a.everInSync:
		h.Reason = "waiting for the datastore to sync"
	case !a.inSync:
		// The dataplane keeps its last state (traffic flows, denials
		// hold), but changes made meanwhile are not applied: say so, so
		// that whoever watches readiness sees the outage. In sync again,
		// the watch catches up and readiness returns by itself.
		h.Reason = "datastore not in sync; the dataplane keeps its last programmed state"
	case a.lastApplyErr != nil:
		// Before "not programmed yet": a node whose first apply fails must
		// say why, not look as if it were still starting.
		h.Reason = "last dataplane apply failed: " + a.lastApplyErr.Error()
	case !a.applied:
		h.Reason = "dataplane not programmed yet"
	case !a.fwChecked:
		h.Reason = "docker firewall and forwarding not checked yet"
	case a.fwErr != nil:
		h.Reason = "docker firewall: " + a.fwErr.Error()
	case a.fwdProblem != "":
		h.Reason = a.fwdProblem
	default:
		h.Ready = true
	}
	return h
}

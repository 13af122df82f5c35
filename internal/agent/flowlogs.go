package agent

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/pki"
)

// flowRunner starts the flow log collector the first time FelixConfiguration
// turns flow logs on; it keeps running (and the socket served) until the
// agent stops, so turning them off and on again loses no history.
type flowRunner struct {
	once sync.Once
	c    *flows.Collector
}

// flowLogsEnabled reports FelixConfiguration flowLogsFileEnabled (merged).
func (s *calcState) flowLogsEnabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.mergedFelix()
	return f != nil && f.FlowLogsFileEnabled != nil && *f.FlowLogsFileEnabled
}

// withFlowLogs returns d with FlowLogs set when they are on, and hands the
// collector what is programmed so it can name rules and endpoints.
func (a *Agent) withFlowLogs(ctx context.Context, d *dataplane.Desired) *dataplane.Desired {
	if !a.calc.flowLogsEnabled() {
		return d
	}
	a.flows.once.Do(func() { a.startFlows(ctx) })
	out := *d
	out.FlowLogs = true
	a.flows.c.SetDesired(&out, a.cfg.NodeName)
	return &out
}

func (a *Agent) startFlows(ctx context.Context) {
	c := flows.NewCollector()
	c.Endpoints = a.calc.eps
	a.flows.c = c
	log := a.log.With("component", "flows")
	go func() {
		if err := c.Run(ctx, a.cfg.NetNS); err != nil {
			log.Error("flow logs: reading NFLOG stopped", "err", err)
		}
	}()
	if a.cfg.FlowsSocket != "" {
		go func() {
			h := flows.Handler(func() string { return a.cfg.NodeName }, c.Ring)
			if err := flows.Serve(ctx, a.cfg.FlowsSocket, h); err != nil {
				log.Error("flow logs: socket", "path", a.cfg.FlowsSocket, "err", err)
			}
		}()
	}
	a.serveFlowsTLS(ctx, c, log)
	_ = a.m.reg.Register(&flowCollector{ring: c.Ring,
		flowsDesc:  prometheus.NewDesc("calico_flows_total", "First packets of flows seen by flow logs, by action (rate-limited per rule).", []string{"action"}, nil),
		deniedDesc: prometheus.NewDesc("calico_denied_packets_total", "Denied packets seen by flow logs, per local endpoint whose policy denied them (rate-limited per rule).", []string{"endpoint"}, nil),
	})
	log.Info("flow logs on", "socket", a.cfg.FlowsSocket)
}

// serveFlowsTLS serves the flows to other hosts on this host's IPv4 address
// when the node has cluster credentials; never without client certificates.
func (a *Agent) serveFlowsTLS(ctx context.Context, c *flows.Collector, log *slog.Logger) {
	if a.cfg.FlowsPort <= 0 || !a.ipv4.IsValid() {
		return
	}
	p := pki.Paths{Dir: a.cfg.PKIDir}
	if p.Dir == "" || !p.HasNodeCert() {
		log.Info("flows API for other hosts off: no cluster certificate (the managed datastore's credentials)", "pki-dir", p.Dir)
		return
	}
	cfg, err := flows.ServerTLS(p)
	if err != nil {
		log.Error("flows API for other hosts off", "err", err)
		return
	}
	addr := net.JoinHostPort(a.ipv4.Addr().String(), strconv.Itoa(a.cfg.FlowsPort))
	h := flows.Handler(func() string { return a.cfg.NodeName }, c.Ring)
	got, err := flows.ServeTLS(ctx, addr, cfg, h)
	if err != nil {
		log.Error("flows API for other hosts off", "err", err)
		return
	}
	log.Info("serving flows to other hosts (client certificate required)", "addr", got.String())
}

type flowCollector struct {
	ring                  *flows.Ring
	flowsDesc, deniedDesc *prometheus.Desc
}

func (f *flowCollector) Describe(ch chan<- *prometheus.Desc) { ch <- f.flowsDesc; ch <- f.deniedDesc }

func (f *flowCollector) Collect(ch chan<- prometheus.Metric) {
	acts, denied := f.ring.Totals()
	for k, v := range acts {
		ch <- prometheus.MustNewConstMetric(f.flowsDesc, prometheus.CounterValue, float64(v), k)
	}
	for k, v := range denied {
		ch <- prometheus.MustNewConstMetric(f.deniedDesc, prometheus.CounterValue, float64(v), k)
	}
}

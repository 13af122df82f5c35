package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the agent's Prometheus metrics, registered on a private registry
// so that several agents in one test process do not collide.
type metrics struct {
	reg             *prometheus.Registry
	endpoints       prometheus.Gauge
	policies        prometheus.Gauge
	sets            prometheus.Gauge
	rules           prometheus.Gauge
	routes          prometheus.Gauge
	applySeconds    prometheus.Histogram
	applyErrors     prometheus.Counter
	dsReconnects    prometheus.Counter
	resyncRepairs   prometheus.Counter
	datastoreInSync prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		endpoints: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_endpoints", Help: "Local workload endpoints programmed."}),
		policies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_policy_chains", Help: "Policy and profile chains programmed."}),
		sets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_ip_sets", Help: "Selector address sets programmed."}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_rules", Help: "Policy and profile rules programmed."}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_routes", Help: "Routes this node wants (local, blackhole, learned)."}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "calico_dataplane_apply_seconds",
			Help:    "Time to apply one dataplane update (nftables and routes).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calico_dataplane_apply_errors_total", Help: "Failed dataplane applies (retried)."}),
		dsReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calico_datastore_reconnects_total", Help: "Times the datastore watch lost its place and re-listed."}),
		resyncRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calico_dataplane_resyncs_total", Help: "Periodic resyncs of the dataplane against the kernel."}),
		datastoreInSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_datastore_in_sync", Help: "1 when the datastore watch is in sync."}),
	}
	m.reg.MustRegister(m.endpoints, m.policies, m.sets, m.rules, m.routes, m.applySeconds,
		m.applyErrors, m.dsReconnects, m.resyncRepairs, m.datastoreInSync,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

package agent

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calico-docker/calico/internal/dataplane/nft"
)

// ruleCounterSource is the part of the nft driver the rule metrics read.
type ruleCounterSource interface {
	RuleCounters(ctx context.Context) ([]nft.RuleCounter, error)
}

// ruleCollector exports the nftables counter of every policy and profile
// rule on each scrape: calico_policy_rule_packets_total and
// calico_policy_rule_bytes_total, labelled with the chain ID ("gnp:x",
// "policy:ns/x", "profile:x"), its kind and name, the direction, the rule
// index and the action. Reading costs one netlink dump per policy chain;
// calico_policy_rule_counters_read_seconds says how long the last read took.
type ruleCollector struct {
	src                  ruleCounterSource
	packets, bytes, cost *prometheus.Desc
}

func newRuleCollector(src ruleCounterSource) *ruleCollector {
	labels := []string{"chain", "kind", "name", "direction", "rule", "action"}
	return &ruleCollector{
		src: src,
		packets: prometheus.NewDesc("calico_policy_rule_packets_total",
			"Packets that matched a policy or profile rule (first packets of connections: established traffic is accepted before policy).", labels, nil),
		bytes: prometheus.NewDesc("calico_policy_rule_bytes_total",
			"Bytes of the packets that matched a policy or profile rule.", labels, nil),
		cost: prometheus.NewDesc("calico_policy_rule_counters_read_seconds",
			"Time the last read of the rule counters took.", nil, nil),
	}
}

func (c *ruleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.bytes
	ch <- c.cost
}

func (c *ruleCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	cs, err := c.src.RuleCounters(ctx)
	took := time.Since(start)
	ch <- prometheus.MustNewConstMetric(c.cost, prometheus.GaugeValue, took.Seconds())
	if err != nil {
		return
	}
	for _, r := range cs {
		kind, name := chainKind(r.Chain)
		dir := "egress"
		if r.Ingress {
			dir = "ingress"
		}
		lv := []string{r.Chain, kind, name, dir, strconv.Itoa(r.Rule), r.Action}
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(r.Packets), lv...)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(r.Bytes), lv...)
	}
}

// chainKind splits a PolicyChain ID into a kind and a name.
func chainKind(id string) (string, string) {
	prefix, name, ok := strings.Cut(id, ":")
	if !ok {
		return "", id
	}
	switch prefix {
	case "gnp":
		return "GlobalNetworkPolicy", name
	case "policy":
		return "NetworkPolicy", name
	case "profile":
		return "Profile", name
	}
	return prefix, name
}

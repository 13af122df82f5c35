package agent

import (
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/calico-docker/calico/internal/datastore"
)

// startEmbeddedEtcd runs etcd inside the node. It listens on the configured
// URLs so that other hosts can reach it, and on loopback so that local tools
// find it: 127.0.0.1:2379 unless a loopback URL is configured already.
func (a *Agent) startEmbeddedEtcd(ctx context.Context) (func(), error) {
	listen := slices.Clone(a.cfg.EtcdListenURLs)
	if LoopbackURL(listen) == "" {
		listen = append(listen, datastore.DefaultEndpoint)
	}
	e, err := datastore.RunEmbedded(ctx, datastore.EmbeddedConfig{
		Name:             a.cfg.NodeName,
		DataDir:          a.cfg.EtcdDataDir,
		ListenClientURLs: listen,
		TickMs:           20,
		ElectionMs:       200,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	if err := e.WaitReady(ctx); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	a.log.Info("embedded etcd ready", "endpoints", e.Endpoints(), "dataDir", a.cfg.EtcdDataDir)
	if len(a.cfg.Datastore.Endpoints) == 0 {
		a.cfg.Datastore.Endpoints = []string{datastore.DefaultEndpoint}
	}
	return func() { _ = e.Close() }, nil
}

// LoopbackURL returns the first of urls whose host is 127.0.0.1 or
// localhost, or "".
func LoopbackURL(urls []string) string {
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil {
			continue
		}
		if h := p.Hostname(); h == "127.0.0.1" || h == "localhost" {
			return u
		}
	}
	return ""
}

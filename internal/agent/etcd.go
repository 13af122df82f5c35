package agent

import (
	"context"
	"fmt"
	"slices"

	"github.com/calico-docker/calico/internal/datastore"
)

// startEmbeddedEtcd runs etcd inside the node. It always listens on
// 127.0.0.1:2379 so that local tools find it, plus the configured URLs so
// that other hosts can reach it.
func (a *Agent) startEmbeddedEtcd(ctx context.Context) (func(), error) {
	listen := slices.Clone(a.cfg.EtcdListenURLs)
	if !slices.Contains(listen, datastore.DefaultEndpoint) {
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

package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/calico-docker/calico/internal/hostports"
	"github.com/calico-docker/calico/internal/ipam"
	dockerplugin "github.com/calico-docker/calico/internal/plugin/docker"
)

// startDockerPlugin serves the Docker network and IPAM plugins.
func (a *Agent) startDockerPlugin(ctx context.Context, wg *sync.WaitGroup) error {
	dc, err := dockerplugin.NewDockerClient()
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	// Published ports are reserved (and served on loopback) in this
	// process's network namespace: only when that is the host's.
	var hp *hostports.Holder
	if a.cfg.NetNS == "" {
		hp = hostports.New(a.cfg.Logger.With("component", "hostports"))
	}
	srv, err := dockerplugin.NewServer(dockerplugin.Config{
		Store:       a.store,
		IPAM:        ipam.New(a.store),
		Node:        a.cfg.NodeName,
		PluginDir:   a.cfg.PluginDir,
		SocketGroup: a.cfg.PluginSocketGroup,
		Docker:      dc,
		NetNS:       a.cfg.NetNS,
		HostPorts:   hp,
		Logger:      a.cfg.Logger.With("component", "docker-plugin"),
	})
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer dc.Close()
		if hp != nil {
			// The sockets go with the node; the DNAT rules stay, so
			// published ports keep working from other hosts.
			defer hp.Close()
		}
		if err := srv.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("docker plugin stopped", "err", err)
		}
	}()
	return nil
}

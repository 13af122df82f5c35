package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/plugin/managed"
)

// PluginName is the managed plugin a swarm lab installs on every host.
const PluginName = managed.DefaultName

// swarm makes the lab's hosts a swarm, idempotently: host1 runs `swarm
// init` and is the manager, the others join as workers; then the managed
// calico plugin is installed and enabled on each host.
func (b *builder) swarm(ctx context.Context) error {
	mgr := &b.st.Hosts[0]
	if err := b.step(mgr.Name+" swarm init", func() error {
		if swarmState(ctx, mgr) == "active" {
			return nil
		}
		_, err := dockerOut(ctx, mgr, "swarm", "init", "--advertise-addr", mgr.Addr())
		return err
	}); err != nil {
		return err
	}
	for i := 1; i < len(b.st.Hosts); i++ {
		h := &b.st.Hosts[i]
		if err := b.step(h.Name+" swarm join", func() error {
			if swarmState(ctx, h) == "active" {
				return nil
			}
			tok, err := dockerOut(ctx, mgr, "swarm", "join-token", "-q", "worker")
			if err != nil {
				return err
			}
			_, err = dockerOut(ctx, h, "swarm", "join", "--advertise-addr", h.Addr(), "--token", strings.TrimSpace(tok), mgr.Addr()+":2377")
			return err
		}); err != nil {
			return err
		}
	}
	for i := range b.st.Hosts {
		h := &b.st.Hosts[i]
		if err := b.step(h.Name+" plugin "+PluginName, func() error { return InstallPlugin(ctx, h, b.c.CalicoBin, false) }); err != nil {
			return err
		}
	}
	return b.step(fmt.Sprintf("swarm: %d nodes ready", len(b.st.Hosts)), func() error {
		return waitFor(ctx, 60*time.Second, "swarm nodes", func() error {
			out, err := dockerOut(ctx, mgr, "node", "ls", "--format", "{{.Status}}")
			if err != nil {
				return err
			}
			if n := strings.Count(out, "Ready"); n != len(b.st.Hosts) {
				return fmt.Errorf("%d of %d nodes ready", n, len(b.st.Hosts))
			}
			return nil
		})
	})
}

// InstallPlugin installs and enables the managed calico plugin, built
// from bin, on a host's dockerd; an installed one is only enabled, unless
// replace.
func InstallPlugin(ctx context.Context, h *Host, bin string, replace bool) error {
	docker := []string{"docker", "-H", h.DockerHost}
	ok, err := managed.Exists(ctx, docker, PluginName)
	if err != nil {
		return err
	}
	if ok && !replace {
		out, err := dockerOut(ctx, h, "plugin", "inspect", "--format", "{{.Enabled}}", PluginName)
		if err != nil || strings.TrimSpace(out) == "true" {
			return err
		}
		_, err = dockerOut(ctx, h, "plugin", "enable", PluginName)
		return err
	}
	return managed.Create(ctx, managed.CreateOptions{Name: PluginName, Bin: bin, Docker: docker, Enable: true, Replace: replace})
}

func swarmState(ctx context.Context, h *Host) string {
	out, err := dockerOut(ctx, h, "info", "--format", "{{.Swarm.LocalNodeState}}")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

func dockerOut(ctx context.Context, h *Host, args ...string) (string, error) {
	out, err := DockerCmd(ctx, h, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s on %s: %w: %s", strings.Join(args, " "), h.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

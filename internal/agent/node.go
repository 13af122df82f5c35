package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane/routes"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// openStore connects to the datastore, retrying while it is unreachable:
// a node that starts during a datastore outage waits, with its dataplane
// untouched, instead of exiting.
func (a *Agent) openStore(ctx context.Context) (datastore.Store, error) {
	delay := 500 * time.Millisecond
	for {
		s, err := datastore.NewEtcd(ctx, a.cfg.Datastore)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, datastore.ErrUnavailable) {
			return nil, err
		}
		a.log.Warn("datastore unreachable; retrying (the dataplane is left as it is)", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// resolveAddrs parses or autodetects this host's addresses.
func (a *Agent) resolveAddrs() error {
	v4, err := parseHostAddr(a.cfg.IPv4)
	if err != nil {
		return fmt.Errorf("--ip: %w", err)
	}
	v6, err := parseHostAddr(a.cfg.IPv6)
	if err != nil {
		return fmt.Errorf("--ip6: %w", err)
	}
	if !v4.IsValid() {
		v4, err = a.rt.HostIPv4()
		if err != nil {
			return err
		}
		a.log.Info("autodetected IPv4 address", "ip", v4)
	}
	a.mu.Lock()
	a.ipv4, a.ipv6 = v4, v6
	a.mu.Unlock()
	return nil
}

// registerNode creates or updates this host's Node resource, retrying until
// it succeeds or ctx ends. Fields other than the addresses are preserved.
func (a *Agent) registerNode(ctx context.Context) {
	delay := 200 * time.Millisecond
	for {
		err := a.writeNode(ctx)
		if err == nil {
			a.log.Info("node registered", "ipv4", a.ipv4, "ipv6", a.ipv6)
			a.writeNodenameFile()
			return
		}
		a.log.Warn("register node failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (a *Agent) writeNode(ctx context.Context) error {
	setAddrs := func(n *api.Node) {
		if n.Spec.BGP == nil {
			n.Spec.BGP = &api.NodeBGPSpec{}
		}
		n.Spec.BGP.IPv4Address = a.ipv4.String()
		n.Spec.BGP.IPv6Address = ""
		if a.ipv6.IsValid() {
			n.Spec.BGP.IPv6Address = a.ipv6.String()
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["kubernetes.io/hostname"] = a.cfg.NodeName
	}
	for attempt := 0; attempt < 20; attempt++ {
		err := a.updateNode(ctx, setAddrs)
		if !errors.Is(err, datastore.ErrNotFound) {
			return err
		}
		node := api.Node{
			TypeMeta:   api.TypeMeta{Kind: api.KindNode, APIVersion: api.APIVersion},
			ObjectMeta: api.ObjectMeta{Name: a.cfg.NodeName},
		}
		setAddrs(&node)
		_, err = resources.New(a.store).Create(ctx, &node)
		if errors.Is(err, datastore.ErrExists) {
			continue // created meanwhile: update it
		}
		return err
	}
	return fmt.Errorf("node %s: too many concurrent updates", a.cfg.NodeName)
}

// DefaultNodenameFile is where the node records its name, as calico/node
// does, so that commands on this host (`calico container add`) use the same
// name (Config.NodenameFile, env CALICO_NODENAME_FILE).
const DefaultNodenameFile = "/var/lib/calico/nodename"

func (a *Agent) writeNodenameFile() {
	if a.cfg.NetNS != "" || a.cfg.NodenameFile == "" {
		return // a test programming another namespace: not this host's node
	}
	if err := os.MkdirAll(filepath.Dir(a.cfg.NodenameFile), 0o755); err != nil {
		a.log.Warn("record node name", "err", err)
		return
	}
	if err := os.WriteFile(a.cfg.NodenameFile, []byte(a.cfg.NodeName), 0o644); err != nil {
		a.log.Warn("record node name", "err", err)
	}
}

// HostIPv4 is the address a host uses on the fabric: flag ("10.0.0.1/24"
// or "10.0.0.1") when given, else autodetected from the default route.
func HostIPv4(flag string) (net.IP, error) {
	p, err := parseHostAddr(flag)
	if err != nil {
		return nil, fmt.Errorf("--ip %q: %w", flag, err)
	}
	if !p.IsValid() {
		if p, err = routes.AutodetectIPv4(""); err != nil {
			return nil, err
		}
	}
	return net.IP(p.Addr().AsSlice()), nil
}

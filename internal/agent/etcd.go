package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/join"
	"github.com/calico-docker/calico/internal/pki"
)

// startEmbeddedEtcd runs a single plaintext etcd inside the node (the
// --insecure-plaintext mode). It always listens on 127.0.0.1:2379 so that
// local tools find it, plus the configured URLs.
func (a *Agent) startEmbeddedEtcd(ctx context.Context) (func(), error) {
	listen := slices.Clone(a.cfg.EtcdListenURLs)
	if !slices.Contains(listen, datastore.DefaultEndpoint) {
		listen = append(listen, datastore.DefaultEndpoint)
	}
	e, err := datastore.RunEmbedded(ctx, datastore.EmbeddedConfig{
		Name:              a.cfg.NodeName,
		DataDir:           a.cfg.EtcdDataDir,
		ListenClientURLs:  listen,
		TickMs:            20,
		ElectionMs:        200,
		InsecurePlaintext: a.cfg.InsecurePlaintext,
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

// membersKey holds how many hosts run an etcd member (written by the first
// host, read by each host that joins).
const membersKey = "/calico/datastore/v1/members"

// cluster is the node's part of the managed datastore.
type cluster struct {
	a         *Agent
	p         pki.Paths
	member    bool
	clientURL string
	peerURL   string
	socket    string // unixs:// URL of the local member, "" if none
	endpoints []string
}

func (c *cluster) tlsConfig(endpoints []string) datastore.Config {
	return datastore.Config{Endpoints: endpoints, CACertFile: c.p.CACert(), CertFile: c.p.Cert(), KeyFile: c.p.Key()}
}

// save records the endpoints for the next start and writes calicoctl.cfg
// (CalicoAPIConfig) next to the credentials, so that `calico` on this host
// finds the datastore without flags.
func (c *cluster) save() {
	if err := pki.SaveEndpoints(c.p, c.endpoints); err != nil {
		c.a.log.Warn("remember datastore endpoints", "err", err)
	}
	eps := c.endpoints
	// The local socket first when this host is a voter (a learner does
	// not serve clients).
	if c.socket != "" && slices.Contains(c.endpoints, c.clientURL) {
		eps = append([]string{c.socket}, eps...)
	}
	if err := WriteAPIConfig(filepath.Join(filepath.Dir(c.p.Dir), "calicoctl.cfg"), c.tlsConfig(eps)); err != nil {
		c.a.log.Warn("write calicoctl.cfg", "err", err)
	}
}

// WriteAPIConfig writes calicoctl's CalicoAPIConfig for cfg at path.
func WriteAPIConfig(path string, cfg datastore.Config) error {
	var b strings.Builder
	b.WriteString("# Written by the calico node: how `calico` on this host reaches the datastore.\n")
	b.WriteString("apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n")
	fmt.Fprintf(&b, "  etcdEndpoints: %q\n", strings.Join(cfg.Endpoints, ","))
	for k, v := range map[string]string{"etcdCACertFile": cfg.CACertFile, "etcdCertFile": cfg.CertFile, "etcdKeyFile": cfg.KeyFile} {
		if v != "" {
			fmt.Fprintf(&b, "  %s: %q\n", k, v)
		}
	}
	// Map order varies; keep the file stable by sorting the key lines.
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	head, keys := lines[:8], lines[8:]
	slices.Sort(keys)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(append(head, keys...), "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// startCluster brings up this host's part of the managed datastore: the
// first host creates the cluster CA and runs the first member; a joining
// host gets its certificate with the token and becomes a member (as a
// learner, promoted once caught up) while there are fewer than the wanted
// number, else a client. Everything is TLS with client certificates.
func (a *Agent) startCluster(ctx context.Context) (func(), error) {
	if a.cfg.PKIDir == "" {
		a.cfg.PKIDir = pki.Dir
	}
	p := pki.Paths{Dir: a.cfg.PKIDir}
	ip := net.IP(a.ipv4.Addr().AsSlice())
	c := &cluster{a: a, p: p,
		clientURL: "https://" + net.JoinHostPort(ip.String(), "2379"),
		peerURL:   "https://" + net.JoinHostPort(ip.String(), "2380"),
	}
	if a.cfg.EtcdPeerURL != "" {
		c.peerURL = a.cfg.EtcdPeerURL
	}
	first := false
	var joined *join.Response
	if !p.HasNodeCert() {
		switch {
		case a.cfg.JoinURL != "":
			r, err := join.Join(ctx, a.cfg.JoinURL, a.cfg.JoinToken, a.cfg.NodeName, []net.IP{ip}, p)
			if err != nil {
				return nil, err
			}
			joined = r
			a.log.Info("joined the cluster: credentials written", "dir", p.Dir, "endpoints", r.Endpoints)
		case a.cfg.EmbeddedEtcd:
			ca, err := pki.CreateCA(p, a.cfg.NodeName)
			if err != nil {
				return nil, err
			}
			if err := ca.IssueLocal(p, a.cfg.NodeName, []net.IP{ip}); err != nil {
				return nil, err
			}
			first = true
			a.log.Info("created the cluster CA and this host's certificate", "dir", p.Dir)
		default:
			return nil, fmt.Errorf("no datastore credentials in %s: run the first host with --embedded-etcd, join others with --join-url and --join-token, or point --etcd-endpoints at an external etcd", p.Dir)
		}
	}
	known := pki.LoadEndpoints(p)
	if joined != nil {
		known = joined.Endpoints
	}
	if a.cfg.JoinURL != "" && len(known) == 0 {
		if u, err := urlHost(a.cfg.JoinURL); err == nil {
			known = []string{"https://" + net.JoinHostPort(u, "2379")}
		}
	}
	others := slices.DeleteFunc(slices.Clone(known), func(e string) bool { return e == c.clientURL })

	memberDir := filepath.Join(a.cfg.EtcdDataDir, "member")
	_, statErr := os.Stat(memberDir)
	state, initial := "new", ""
	switch {
	case statErr == nil:
		// A restart: run the member again unless it was removed meanwhile.
		if len(others) > 0 {
			if ms, err := c.list(ctx, others); err == nil && !slices.ContainsFunc(ms, func(m datastore.Member) bool { return m.Name == a.cfg.NodeName }) {
				aside := a.cfg.EtcdDataDir + ".removed-" + time.Now().UTC().Format("20060102T150405")
				a.log.Warn("this host's etcd member was removed from the cluster; keeping its old data aside and running as a client", "dir", aside)
				if err := os.Rename(a.cfg.EtcdDataDir, aside); err != nil {
					return nil, fmt.Errorf("move the removed member's data aside: %w", err)
				}
				break
			}
		}
		c.member = true
	case first || (p.HasCAKey() && len(others) == 0):
		c.member, initial = true, a.cfg.NodeName+"="+c.peerURL
	default:
		if err := c.maybeAddLearner(ctx, others, &state, &initial); err != nil {
			a.log.Warn("not running an etcd member; this host is a datastore client", "reason", err)
		}
	}
	var stop func()
	if c.member {
		s, err := c.runMember(ctx, state, initial)
		if err != nil {
			return nil, err
		}
		stop = s
		c.socket = "unixs://" + a.cfg.EtcdSocket
	}
	if first {
		st, err := datastore.NewEtcd(ctx, c.tlsConfig([]string{c.clientURL}))
		if err != nil {
			stop()
			return nil, err
		}
		_, err = st.Create(ctx, membersKey, []byte(strconv.Itoa(a.cfg.EtcdMembers)))
		st.Close()
		if err != nil && !errors.Is(err, datastore.ErrExists) {
			stop()
			return nil, err
		}
	}
	// The datastore's clients: the voting members.
	probe := others
	if c.member {
		probe = append([]string{c.clientURL}, others...)
	}
	c.endpoints = probe
	if ms, err := c.list(ctx, probe); err == nil {
		if v := datastore.Voters(ms, a.cfg.NodeName); len(v) > 0 {
			c.endpoints = v
		}
	}
	if len(c.endpoints) == 0 {
		if stop != nil {
			stop()
		}
		return nil, fmt.Errorf("no datastore endpoint known: join again with --join-url and a token")
	}
	a.cfg.Datastore = c.tlsConfig(c.endpoints)
	c.save()
	a.cluster = c
	if p.HasCAKey() && a.cfg.JoinPort > 0 {
		addr, err := join.Serve(ctx, net.JoinHostPort(ip.String(), strconv.Itoa(a.cfg.JoinPort)), p,
			func() []string { return a.clusterEndpoints() }, a.log.With("component", "join"))
		if err != nil {
			if stop != nil {
				stop()
			}
			return nil, err
		}
		a.log.Info("serving joins", "url", "https://"+addr.String())
	}
	if stop == nil {
		stop = func() {}
	}
	return stop, nil
}

func urlHost(u string) (string, error) {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		return "", errors.New("not https")
	}
	rest, _, _ = strings.Cut(rest, "/")
	h, _, err := net.SplitHostPort(rest)
	return h, err
}

func (a *Agent) clusterEndpoints() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cluster == nil {
		return nil
	}
	return slices.Clone(a.cluster.endpoints)
}

func (c *cluster) list(ctx context.Context, endpoints []string) ([]datastore.Member, error) {
	cfg := c.tlsConfig(endpoints)
	cfg.DialTimeout = 3 * time.Second
	m, err := datastore.NewMembers(cfg)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return m.List(lctx)
}

// maybeAddLearner adds this host as a learner when the cluster has fewer
// members than wanted.
func (c *cluster) maybeAddLearner(ctx context.Context, endpoints []string, state, initial *string) error {
	if len(endpoints) == 0 {
		return errors.New("no other member known")
	}
	st, err := datastore.NewEtcd(ctx, c.tlsConfig(endpoints))
	if err != nil {
		return err
	}
	want := DefaultEtcdMembers
	if kv, err := st.Get(ctx, membersKey); err == nil {
		if n, err := strconv.Atoi(string(kv.Value)); err == nil {
			want = n
		}
	}
	st.Close()
	ms, err := c.list(ctx, endpoints)
	if err != nil {
		return err
	}
	// Added before but never started (the node stopped in between): start
	// as that member.
	all := ms
	if !slices.ContainsFunc(ms, func(m datastore.Member) bool { return m.Name == "" && slices.Contains(m.PeerURLs, c.peerURL) }) {
		if len(ms) >= want {
			return fmt.Errorf("the cluster has %d of %d wanted members", len(ms), want)
		}
		m, err := datastore.NewMembers(c.tlsConfig(endpoints))
		if err != nil {
			return err
		}
		defer m.Close()
		if _, all, err = m.AddLearner(ctx, c.peerURL); err != nil {
			return err
		}
	}
	var parts []string
	for _, x := range all {
		name := x.Name
		if name == "" && slices.Contains(x.PeerURLs, c.peerURL) {
			name = c.a.cfg.NodeName
		}
		for _, u := range x.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	*state, *initial = "existing", strings.Join(parts, ",")
	c.member = true
	c.a.log.Info("added this host to the etcd cluster as a learner", "peer", c.peerURL)
	return nil
}

func (c *cluster) runMember(ctx context.Context, state, initial string) (func(), error) {
	a := c.a
	if err := os.MkdirAll(filepath.Dir(a.cfg.EtcdSocket), 0o755); err != nil {
		return nil, err
	}
	_ = os.Remove(a.cfg.EtcdSocket) // a stale socket of an earlier run
	client := a.cfg.EtcdListenURLs
	if len(client) == 0 {
		client = []string{c.clientURL}
	}
	client = append(slices.Clone(client), "unixs://"+a.cfg.EtcdSocket)
	e, err := datastore.RunEmbedded(ctx, datastore.EmbeddedConfig{
		Name:                a.cfg.NodeName,
		DataDir:             a.cfg.EtcdDataDir,
		ListenClientURLs:    client,
		AdvertiseClientURLs: []string{c.clientURL},
		ListenPeerURLs:      []string{c.peerURL},
		InitialCluster:      initial,
		InitialClusterState: state,
		TickMs:              50,
		ElectionMs:          500,
		CertFile:            c.p.Cert(), KeyFile: c.p.Key(), TrustedCAFile: c.p.CACert(), ClientCertAuth: true,
		PeerCertFile: c.p.Cert(), PeerKeyFile: c.p.Key(), PeerTrustedCAFile: c.p.CACert(), PeerClientCertAuth: true,
		MaxLearners: 7,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	// A member that restarts while the others are down cannot be ready
	// until a quorum is back: do not block the node on it.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := e.WaitReady(wctx); err != nil && ctx.Err() == nil && wctx.Err() == nil {
		_ = e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	a.log.Info("embedded etcd member running", "name", a.cfg.NodeName, "client", c.clientURL, "peer", c.peerURL, "socket", a.cfg.EtcdSocket, "dataDir", a.cfg.EtcdDataDir)
	return func() { _ = e.Close() }, nil
}

// maintainCluster promotes learners once they have caught up (when the
// cluster then has an odd number, or the wanted number, of voters) and
// keeps the client endpoints and calicoctl.cfg current.
func (a *Agent) maintainCluster(ctx context.Context) {
	c := a.cluster
	endpoints := func() []string {
		eps := a.clusterEndpoints()
		if c.member {
			eps = append([]string{c.clientURL}, eps...)
		}
		return slices.Compact(eps)
	}
	mm, err := datastore.NewMembers(c.tlsConfig(endpoints()))
	if err != nil {
		a.log.Error("etcd membership client; learners will not be promoted by this node", "err", err)
		return
	}
	defer mm.Close()
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ms, err := mm.List(lctx)
		cancel()
		if err != nil {
			a.log.Debug("list etcd members", "err", err)
			continue
		}
		voters, learners := 0, 0
		for _, m := range ms {
			if m.Learner {
				learners++
			} else {
				voters++
			}
		}
		want := DefaultEtcdMembers
		if kv, err := a.store.Get(ctx, membersKey); err == nil {
			if n, err := strconv.Atoi(string(kv.Value)); err == nil {
				want = n
			}
		}
		// Promote only into a cluster of at least min(want, 3) voters: two
		// voters would stop on losing either host, worse than one.
		if learners > 0 && voters+learners >= min(want, 3) {
			for _, m := range ms {
				if !m.Learner || m.Name == "" {
					continue
				}
				if err := mm.Promote(ctx, m.ID); err != nil {
					a.log.Debug("promote learner", "member", m.Name, "err", err)
				} else {
					a.log.Info("promoted etcd learner to voting member", "member", m.Name)
				}
			}
		}
		v := datastore.Voters(ms, a.cfg.NodeName)
		if len(v) > 0 && !slices.Equal(v, a.clusterEndpoints()) {
			a.mu.Lock()
			c.endpoints = v
			a.mu.Unlock()
			datastore.SetEndpoints(a.store, v)
			mm.SetEndpoints(endpoints())
			c.save()
			a.log.Info("datastore endpoints changed", "endpoints", v)
		}
	}
}

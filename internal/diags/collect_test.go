package diags

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/nft"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/nodectl"
	"github.com/calico-docker/calico/internal/testutil"
)

// TestCollect collects from a real netns (real nftables table, routes)
// and a real etcd, and checks that the archive holds the ruleset, the
// routes and the datastore, and that known secrets planted in the
// datastore, the logs and the node container's configuration are absent.
func TestCollect(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "ip", "nft")
	ns := testutil.NewNetNS(t, "diag")
	ns.MustExec(t, "ip", "link", "add", "cali0diag", "type", "veth", "peer", "name", "peer0")
	ns.MustExec(t, "ip", "link", "set", "cali0diag", "up")
	ns.MustExec(t, "ip", "route", "add", "10.77.0.5/32", "dev", "cali0diag", "proto", RouteProtocol, "scope", "link")
	ns.MustExec(t, "ip", "-6", "rule", "add", "pref", "1234", "lookup", "main")
	drv, err := nft.New(nft.Options{NetNS: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	drv.SetDesired(&dataplane.Desired{
		Endpoints: []dataplane.Endpoint{{ID: "docker/w1", Iface: "cali0diag", Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.0.5/32")}, Profiles: []string{"profile:net1"}}},
		Chains:    []dataplane.PolicyChain{{ID: "profile:net1", Ingress: []dataplane.Rule{{Action: dataplane.Allow}}}},
	})
	if _, err := drv.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}

	const secret = "Hunter2SecretValue"
	token := "K10" + strings.Repeat("0f", 32) + "::abc123:" + secret
	st := etcdtest.Store(t, etcdtest.Start(t))
	put := func(key, val string) {
		if _, err := st.Create(context.Background(), key, []byte(val)); err != nil {
			t.Fatal(err)
		}
	}
	put(datastore.ResourceKey("bgppeers", "", "tor"), `{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor","annotations":{"note":"joined with `+token+`"}},"spec":{"peerIP":"192.0.2.9","asNumber":64513,"password":{"secretKeyRef":{"name":"bgp","key":"tor"}}}}`)
	put(datastore.ResourceKey("nodes", "", "h1"), `{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"h1","annotations":{"bgp-password":"`+secret+`"}},"spec":{"bgp":{"ipv4Address":"192.0.2.1/24"}}}`)

	src := Source{
		Version: "v-test",
		Exec: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...).CombinedOutput()
		},
		Store: st,
		Node:  "h1",
		Health: func(context.Context) (nodectl.Health, error) {
			return nodectl.Health{Node: "h1", Ready: true, Version: "v-test", Peers: json.RawMessage(`[]`)}, nil
		},
		Logs: func(context.Context) (string, error) {
			return "level=INFO msg=\"joining\" url=https://192.0.2.1:2378 token=" + token + "\nlevel=INFO msg=started\n", nil
		},
		Docker: func(context.Context) (map[string][]byte, error) {
			return map[string][]byte{"node-container.json": []byte(`{"Cmd":["node","run","--join-token","` + secret + `"],"Env":["CALICO_JOIN_TOKEN=` + token + `","BGP_PASSWORD=` + secret + `"]}`)}, errors.New("plugins: docker unreachable")
		},
		PluginDir: t.TempDir(),
	}
	var buf bytes.Buffer
	names, err := Collect(context.Background(), src, &buf)
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, buf.Bytes())
	if len(files) != len(names) {
		t.Errorf("Collect named %d files, archive holds %d", len(names), len(files))
	}
	for name, want := range map[string]string{
		"version.txt":                "calico v-test",
		"nftables/calico.txt":        "table inet calico",
		"nftables/ruleset.txt":       "fw-map",
		"net/routes-ipv4.txt":        "10.77.0.5 dev cali0diag",
		"net/rules-ipv6.txt":         "1234:",
		"net/links.txt":              "cali0diag",
		"net/addresses.txt":          "lo",
		"bgp/rib-ipv4.txt":           "10.77.0.5",
		"bgp/peers.txt":              "",
		"node/status.json":           `"node": "h1"`,
		"node/logs.txt":              "msg=started",
		"datastore/resources.txt":    "bgppeers/tor",
		"datastore/ipam-check.txt":   "",
		"docker/node-container.json": "node",
		"errors.txt":                 "docker unreachable",
	} {
		got, ok := files[name]
		if !ok {
			t.Errorf("archive lacks %s (has %v)", name, names)
			continue
		}
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", name, want, got)
		}
	}
	for name, body := range files {
		if strings.Contains(body, secret) || strings.Contains(body, "::abc123") {
			t.Errorf("%s leaks the secret:\n%s", name, body)
		}
	}
}

func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(h.Name, "/")
		out[rest] = string(body)
	}
}

package diags

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/bgp"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/nodectl"
)

// RouteProtocol is the protocol number of the routes the node installs
// (package routes, DefaultProtocol): local endpoints, blocks, BGP-learned.
const RouteProtocol = "80"

// Source says where to collect from; nil parts are skipped (and noted).
type Source struct {
	// Version of the calico binary collecting.
	Version string
	// Exec runs a command on the node (nil: on this host, in this process's
	// network namespace).
	Exec func(ctx context.Context, name string, args ...string) ([]byte, error)
	// Store is the datastore.
	Store datastore.Store
	// Node is the node's name (for the IPAM check's container lookups).
	Node string
	// Health reads the node's /status (peers included).
	Health func(ctx context.Context) (nodectl.Health, error)
	// Logs returns the node container's recent output.
	Logs func(ctx context.Context) (string, error)
	// Docker returns files describing Docker's side (networks, plugins,
	// the node container), name -> content.
	Docker func(ctx context.Context) (map[string][]byte, error)
	// PluginDir is Docker's legacy plugin directory (default /run/docker/plugins).
	PluginDir string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// commands are run on the node, each into its own file.
var commands = []struct {
	file string
	args []string
}{
	{"nftables/calico.txt", []string{"nft", "list", "table", "inet", "calico"}},
	{"nftables/ruleset.txt", []string{"nft", "list", "ruleset"}},
	{"net/routes-ipv4.txt", []string{"ip", "-4", "route", "show", "table", "all"}},
	{"net/routes-ipv6.txt", []string{"ip", "-6", "route", "show", "table", "all"}},
	{"net/rules-ipv4.txt", []string{"ip", "-4", "rule", "show"}},
	{"net/rules-ipv6.txt", []string{"ip", "-6", "rule", "show"}},
	{"net/links.txt", []string{"ip", "-d", "link", "show"}},
	{"net/addresses.txt", []string{"ip", "addr", "show"}},
	{"net/neighbours.txt", []string{"ip", "neigh", "show"}},
	{"net/sysctl-forwarding.txt", []string{"sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"}},
	{"bgp/rib-ipv4.txt", []string{"ip", "-4", "route", "show", "table", "all", "proto", RouteProtocol}},
	{"bgp/rib-ipv6.txt", []string{"ip", "-6", "route", "show", "table", "all", "proto", RouteProtocol}},
	{"iptables/filter.txt", []string{"iptables-save", "-t", "filter"}},
}

// Collect writes the archive to w and returns the names of the files in it.
// It fails only when w fails; every source that cannot be read is named in
// errors.txt.
func Collect(ctx context.Context, src Source, w io.Writer) ([]string, error) {
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	run := src.Exec
	if run == nil {
		run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		}
	}
	files := map[string][]byte{}
	var problems []string
	fail := func(what string, err error) { problems = append(problems, fmt.Sprintf("%s: %v", what, err)) }

	files["version.txt"] = fmt.Appendf(nil, "calico %s\ncollected %s\n", src.Version, now().UTC().Format(time.RFC3339))

	for _, c := range commands {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		out, err := run(cctx, c.args[0], c.args[1:]...)
		cancel()
		if err != nil {
			fail(strings.Join(c.args, " "), fmt.Errorf("%w: %s", err, bytes.TrimSpace(out)))
			if len(out) == 0 {
				continue
			}
		}
		files[c.file] = out
	}

	if src.Health != nil {
		h, err := src.Health(ctx)
		if err != nil {
			fail("node status", err)
		} else {
			b, _ := json.MarshalIndent(h, "", "  ")
			files["node/status.json"] = b
			var peers []bgp.PeerStatus
			if len(h.Peers) > 0 && json.Unmarshal(h.Peers, &peers) == nil {
				var buf bytes.Buffer
				_ = bgp.FormatStatus(&buf, peers)
				files["bgp/peers.txt"] = buf.Bytes()
			} else {
				files["bgp/peers.txt"] = []byte("BGP: not running or no peers\n")
			}
		}
	} else {
		fail("node status", fmt.Errorf("not collected"))
	}

	if src.Logs != nil {
		logs, err := src.Logs(ctx)
		if err != nil {
			fail("node logs", err)
		}
		if logs != "" {
			files["node/logs.txt"] = []byte(logs)
		}
	}

	if src.Store != nil {
		collectDatastore(ctx, src, files, fail)
	} else {
		fail("datastore", fmt.Errorf("not collected"))
	}

	if src.Docker != nil {
		d, err := src.Docker(ctx)
		if err != nil {
			fail("docker", err)
		}
		for name, b := range d {
			files["docker/"+name] = b
		}
	}
	dir := src.PluginDir
	if dir == "" {
		dir = "/run/docker/plugins"
	}
	if ents, err := os.ReadDir(dir); err != nil {
		fail("docker plugin directory", err)
	} else {
		var b strings.Builder
		for _, e := range ents {
			info, _ := e.Info()
			mode := ""
			if info != nil {
				mode = info.Mode().String()
			}
			fmt.Fprintf(&b, "%s %s\n", mode, e.Name())
		}
		files["docker/plugin-dir.txt"] = []byte(b.String())
	}

	if len(problems) > 0 {
		files["errors.txt"] = []byte(strings.Join(problems, "\n") + "\n")
	}
	return writeTarGz(w, files, now())
}

func collectDatastore(ctx context.Context, src Source, files map[string][]byte, fail func(string, error)) {
	for _, p := range []struct{ file, prefix string }{
		{"datastore/resources.txt", datastore.ResourcesRoot},
		{"datastore/ipam.txt", datastore.IPAMRoot},
		{"datastore/docker-networks.txt", "/calico/docker/v1/networks/"},
	} {
		kvs, rev, err := src.Store.List(ctx, p.prefix)
		if err != nil {
			fail("datastore "+p.prefix, err)
			continue
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "# %s at revision %d: %d keys\n", p.prefix, rev, len(kvs))
		for _, kv := range kvs {
			fmt.Fprintf(&b, "%s\n", kv.Key)
			var pretty bytes.Buffer
			if json.Indent(&pretty, kv.Value, "  ", "  ") == nil {
				b.WriteString("  ")
				b.Write(pretty.Bytes())
			} else {
				b.Write(kv.Value)
			}
			b.WriteString("\n")
		}
		files[p.file] = b.Bytes()
	}
	a := ipam.New(src.Store)
	r, err := a.Check(ctx, ipam.CheckOptions{MinAge: time.Minute, DockerNode: src.Node, NoDockerReason: "not checked by diags"})
	if err != nil {
		fail("ipam check", err)
		return
	}
	files["datastore/ipam-check.txt"] = []byte(r.String())
}

// writeTarGz writes files (redacted) under a top directory.
func writeTarGz(w io.Writer, files map[string][]byte, now time.Time) ([]string, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	top := "calico-diags-" + now.UTC().Format("20060102-150405")
	var out []string
	for _, n := range names {
		b := Redact(files[n])
		name := path.Join(top, n)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return nil, fmt.Errorf("write diags archive: %w", err)
		}
		if _, err := tw.Write(b); err != nil {
			return nil, fmt.Errorf("write diags archive: %w", err)
		}
		out = append(out, n)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write diags archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("write diags archive: %w", err)
	}
	return out, nil
}

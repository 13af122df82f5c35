package uninstall

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/testutil"
)

// Dataplane removes exactly what carries our markers, and a second run finds
// nothing and succeeds.
func TestDataplaneRemovesOursOnly(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "nft")
	ns := testutil.NewNetNS(t, "h3rm")
	for _, cmd := range [][]string{
		{"nft", "add table inet calico"},
		{"nft", "add chain inet calico forward { type filter hook forward priority 0; policy accept; }"},
		{"nft", "add table inet other"},
		{"ip", "link", "add", "calitest0", "type", "veth", "peer", "name", "ctr0"},
		{"ip", "link", "set", "calitest0", "up"},
		{"ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p"},
		{"ip", "link", "set", "eth9", "up"},
		{"ip", "addr", "add", "192.0.2.1/24", "dev", "eth9"},
		{"ip", "link", "add", "vxlan.calico", "type", "vxlan", "id", "4096", "dstport", "4789"},
		{"ip", "route", "add", "10.65.0.1/32", "dev", "calitest0", "scope", "link", "proto", "80"},
		{"ip", "route", "add", "blackhole", "10.65.1.0/26", "proto", "80"},
		{"ip", "route", "add", "10.66.0.0/26", "via", "192.0.2.2", "proto", "80"},
		{"ip", "-6", "route", "add", "blackhole", "fd00:65::/122", "proto", "80"},
		{"ip", "route", "add", "10.99.0.0/24", "via", "192.0.2.3", "proto", "static"},
	} {
		ns.MustExec(t, cmd...)
	}
	got, err := Dataplane(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got.Links)
	if !got.Table || got.Routes < 3 || !slices.Equal(got.Links, []string{"calitest0", "vxlan.calico"}) {
		t.Fatalf("removed %+v", got)
	}
	if out := ns.MustExec(t, "ip", "route", "show", "proto", "80"); strings.TrimSpace(out) != "" {
		t.Errorf("routes with protocol 80 left:\n%s", out)
	}
	if out := ns.MustExec(t, "ip", "-6", "route", "show", "proto", "80"); strings.TrimSpace(out) != "" {
		t.Errorf("IPv6 routes with protocol 80 left:\n%s", out)
	}
	if out := ns.MustExec(t, "ip", "route", "show", "proto", "static"); !strings.Contains(out, "10.99.0.0/24") {
		t.Errorf("a foreign route was removed:\n%s", out)
	}
	if out := ns.MustExec(t, "nft", "list", "tables"); strings.Contains(out, "inet calico") || !strings.Contains(out, "inet other") {
		t.Errorf("tables after removal:\n%s", out)
	}
	if out := ns.MustExec(t, "ip", "-br", "link"); strings.Contains(out, "cali") || !strings.Contains(out, "eth9") {
		t.Errorf("links after removal:\n%s", out)
	}
	again, err := Dataplane(ns.Path())
	if err != nil || again.Table || again.Routes != 0 || len(again.Links) != 0 {
		t.Fatalf("second removal: %+v, %v", again, err)
	}
}

func TestSocketsRemovesOnlyOurs(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "calico.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := os.WriteFile(filepath.Join(dir, "other.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Sockets(dir)
	if err != nil || len(got) != 1 || filepath.Base(got[0]) != "calico.sock" {
		t.Fatalf("Sockets = %v, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.sock")); err != nil {
		t.Fatal("a foreign socket was removed")
	}
	if got, err := Sockets(dir); err != nil || len(got) != 0 {
		t.Fatalf("second run: %v, %v", got, err)
	}
}

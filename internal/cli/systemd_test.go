package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUnitFile(t *testing.T) {
	u := unitFile("/usr/local/bin/calico", []string{"--name=host 1", "--ip=10.0.0.2/24", "--etcd-listen=http://10.0.0.2:2379"},
		[]string{"ETCD_ENDPOINTS=http://10.0.0.1:2379", "CALICO_LOG_LEVEL=50%"}, 90*time.Second)
	for _, want := range []string{
		unitMarker,
		"Requires=docker.service",
		"After=network-online.target docker.service",
		"Type=oneshot",
		"RemainAfterExit=yes",
		`ExecStart=/usr/local/bin/calico node start "--name=host 1" --ip=10.0.0.2/24 --etcd-listen=http://10.0.0.2:2379`,
		"Environment=ETCD_ENDPOINTS=http://10.0.0.1:2379",
		"Environment=CALICO_LOG_LEVEL=50%%",
		"TimeoutStartSec=150",
		"WantedBy=multi-user.target",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if strings.Contains(u, "ExecStop") {
		t.Error("stopping the unit must not stop the node")
	}
	// systemd's own parser accepts it (systemd-analyze works without a running systemd).
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: unit syntax not verified by systemd")
		return
	}
	dir := t.TempDir()
	p := filepath.Join(dir, unitName)
	// ExecStart must name an existing executable for verify.
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(u, "/usr/local/bin/calico", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
	// Only complaints about this unit count (the host's other units are not ours).
	var mine []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, unitName) {
			mine = append(mine, l)
		}
	}
	if err != nil || len(mine) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "a b": `"a b"`, `a"b`: `"a\"b"`, "50%": "50%%", "$HOME": "$$HOME", "": `""`,
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRemoveUnitOnlyOurs(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := removeUnit(context.Background(), &out, dir); err != nil || out.Len() != 0 {
		t.Fatalf("no unit: %v %q", err, out.String())
	}
	p := unitPath(dir)
	if err := os.WriteFile(p, []byte("[Unit]\nDescription=someone else's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeUnit(context.Background(), &out, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal("a unit we did not write was removed")
	}
	if err := os.WriteFile(p, []byte(unitFile("/bin/calico", nil, nil, time.Minute)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeUnit(context.Background(), &out, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("our unit was not removed")
	}
}

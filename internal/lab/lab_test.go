package lab

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/testutil"
)

func TestPlan(t *testing.T) {
	st, err := Plan(Config{Name: "p", Hosts: 3, Subnets: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Router != "calab-p-rtr" || st.Fabric.NetNS != "calab-p-fab" || len(st.Fabric.Bridges) != 2 {
		t.Fatalf("fabric: %+v router %q", st.Fabric, st.Router)
	}
	want := []struct{ name, ip, gw string }{
		{"host1", "10.99.1.11/24", "10.99.1.254"},
		{"host2", "10.99.2.12/24", "10.99.2.254"},
		{"host3", "10.99.1.13/24", "10.99.1.254"},
	}
	for i, w := range want {
		h := st.Hosts[i]
		if h.Name != w.name || h.IP != w.ip || h.Gateway != w.gw {
			t.Errorf("host %d = %s %s via %s, want %s %s via %s", i, h.Name, h.IP, h.Gateway, w.name, w.ip, w.gw)
		}
	}
	if st.EtcdEndpoints[0] != "https://10.99.1.11:2379" {
		t.Errorf("etcd endpoints %v", st.EtcdEndpoints)
	}
	for _, bad := range []Config{
		{Name: "Bad", Hosts: 1, Subnets: 1},
		{Name: "toolongname1", Hosts: 1, Subnets: 1},
		{Name: "ok", Hosts: 0, Subnets: 1},
		{Name: "ok", Hosts: 2, Subnets: 3},
	} {
		if _, err := Plan(bad); err == nil {
			t.Errorf("Plan(%+v) accepted", bad)
		}
	}
}

// TestUpDown builds a two-subnet lab without nodes: hosts reach each other
// through the router, their dockerds see only their own plugin directory,
// Up again changes nothing, and Down removes exactly what Up made.
func TestUpDown(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "dockerd", "docker", "nsenter", "unshare")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipped: /bin/busybox (busybox-static) missing")
	}
	name := "t" + testutil.RandSuffix(5)
	ctx := context.Background()
	cfg := Config{Name: name, Hosts: 2, Subnets: 2, TestImage: "calico-lab/busybox:latest"}
	t.Cleanup(func() { _ = Down(context.Background(), name, nil) })
	st, err := Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := &st.Hosts[0], &st.Hosts[1]
	run := func(h *Host, args ...string) string {
		t.Helper()
		cmd, err := ExecCmd(ctx, st, h, args[0], args[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v on %s: %v\n%s", args, h.Name, err, out)
		}
		return string(out)
	}
	run(h1, "busybox", "ping", "-c1", "-W2", h2.Addr())
	if env := run(h2, "sh", "-c", "echo $DOCKER_HOST $NODENAME"); strings.TrimSpace(env) != h2.DockerHost+" host2" {
		t.Fatalf("env in host2: %q", env)
	}
	// Each host has its own /run/docker/plugins.
	if err := os.WriteFile(h1.RunDir+"/plugins/marker", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run(h1, "ls", "/run/docker/plugins"); !strings.Contains(out, "marker") {
		t.Fatalf("host1 plugins dir: %q", out)
	}
	if out := run(h2, "ls", "/run/docker/plugins"); strings.Contains(out, "marker") {
		t.Fatalf("host2 sees host1's plugins dir: %q", out)
	}
	if out := run(h2, "docker", "run", "--rm", "--net=none", cfg.TestImage, "echo", "hi"); strings.TrimSpace(out) != "hi" {
		t.Fatalf("container on host2: %q", out)
	}

	// Up again: idempotent, same dockerds.
	st2, err := Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Hosts[0].DockerdPID != h1.DockerdPID {
		t.Fatalf("second Up restarted dockerd: pid %d -> %d", h1.DockerdPID, st2.Hosts[0].DockerdPID)
	}
	s, err := GetStatus(name)
	if err != nil || len(s.Hosts) != 2 || !s.Hosts[1].DockerdRunning || s.Router == "" {
		t.Fatalf("status %+v, %v", s, err)
	}

	if err := Down(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), "calab-"+name+"-") {
		t.Fatalf("namespaces left after down:\n%s", out)
	}
	for _, d := range []string{LibRoot + "/" + name, RunRoot + "/" + name} {
		if _, err := os.Stat(d); err == nil {
			t.Fatalf("%s left after down", d)
		}
	}
	if pidAlive(h1.DockerdPID, "dockerd") || pidAlive(h2.DockerdPID, "dockerd") {
		t.Fatal("dockerd still running after down")
	}
	if _, err := Load(name); err == nil {
		t.Fatal("state still loadable after down")
	}
	// Down of a lab that is gone is success.
	if err := Down(ctx, name, nil); err != nil {
		t.Fatalf("second down: %v", err)
	}
}

// A failed Up of a new lab removes what it made.
func TestUpFailureCleansUp(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "dockerd", "docker", "nsenter", "unshare")
	name := "f" + testutil.RandSuffix(5)
	t.Cleanup(func() { _ = Down(context.Background(), name, nil) })
	_, err := Up(context.Background(), Config{Name: name, Hosts: 1, Subnets: 1, NodeImage: "calico/node:lab-test", CalicoBin: "/nonexistent/calico"})
	if err == nil || !strings.Contains(err.Error(), "images") {
		t.Fatalf("Up with a missing binary: %v", err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), "calab-"+name+"-") {
		t.Fatalf("namespaces left after a failed up:\n%s", out)
	}
	if _, err := os.Stat(LibRoot + "/" + name); err == nil {
		t.Fatal("lab directory left after a failed up")
	}
}

package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/nodectl"
)

// Up builds the lab described by c, step by step, showing progress. It is
// idempotent: steps already done are checked and skipped. If a step fails on
// a lab that did not exist before, everything made is removed again.
func Up(ctx context.Context, c Config) (*State, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("calico lab needs root (network namespaces, dockerd)")
	}
	for _, bin := range []string{"ip", "nsenter", "unshare", "dockerd", "docker", "mount"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("calico lab needs %s on PATH: %w (run hack/deps.sh)", bin, err)
		}
	}
	st, err := Plan(c)
	if err != nil {
		return nil, err
	}
	if st.IptablesBackend == "" {
		if st.IptablesBackend, err = MachineIptablesBackend(); err != nil {
			return nil, err
		}
	}
	fresh := true
	if old, err := Load(c.Name); err == nil {
		fresh = false
		if old.IptablesBackend != "" && old.IptablesBackend != st.IptablesBackend {
			return nil, fmt.Errorf("lab %s exists with iptables back end %s; take it down first (calico lab down --name %s)",
				c.Name, old.IptablesBackend, c.Name)
		}
		if len(old.Hosts) != len(st.Hosts) || len(old.Fabric.Bridges) != len(st.Fabric.Bridges) {
			return nil, fmt.Errorf("lab %s exists with %d hosts and %d subnets; take it down first (calico lab down --name %s)",
				c.Name, len(old.Hosts), len(old.Fabric.Bridges), c.Name)
		}
		if old.Swarm != st.Swarm {
			return nil, fmt.Errorf("lab %s exists with swarm=%v; take it down first (calico lab down --name %s)", c.Name, old.Swarm, c.Name)
		}
		for i := range st.Hosts {
			st.Hosts[i].DockerdPID = old.Hosts[i].DockerdPID
		}
	}
	b := builder{c: c, st: st, r: runner{log: c.Logger}}
	if err := b.build(ctx); err != nil {
		if fresh {
			fmt.Fprintf(c.Progress, "lab %s: failed, cleaning up what was made\n", c.Name)
			if derr := Down(context.Background(), c.Name, c.Progress); derr != nil {
				err = fmt.Errorf("%w (cleanup also failed: %v)", err, derr)
			}
		}
		return nil, err
	}
	return st, nil
}

type builder struct {
	c     Config
	st    *State
	r     runner
	token string // join token of this build, revoked at the end
}

func (b *builder) step(what string, f func() error) error {
	start := time.Now()
	fmt.Fprintf(b.c.Progress, "lab %s: %s ... ", b.st.Name, what)
	if err := f(); err != nil {
		fmt.Fprintln(b.c.Progress, "failed")
		return fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintf(b.c.Progress, "ok (%.1fs)\n", time.Since(start).Seconds())
	return b.st.save()
}

func (b *builder) build(ctx context.Context) error {
	if err := b.st.save(); err != nil {
		return err
	}
	if err := b.step("fabric", func() error { return b.fabric(ctx) }); err != nil {
		return err
	}
	for i := range b.st.Hosts {
		h := &b.st.Hosts[i]
		if err := b.step(fmt.Sprintf("%s network (%s)", h.Name, h.IP), func() error { return b.hostNet(ctx, h) }); err != nil {
			return err
		}
	}
	for i := range b.st.Hosts {
		h := &b.st.Hosts[i]
		if err := b.step(h.Name+" dockerd", func() error { return b.dockerd(ctx, h) }); err != nil {
			return err
		}
	}
	for i := range b.st.Hosts {
		h := &b.st.Hosts[i]
		if err := b.step(h.Name+" images", func() error { return b.images(ctx, h) }); err != nil {
			return err
		}
	}
	if !b.c.StartNodes {
		if b.st.Swarm {
			// The plugin only forwards: it installs without a node, and
			// answers once one runs.
			return b.swarm(ctx)
		}
		return nil
	}
	for i := range b.st.Hosts {
		h := &b.st.Hosts[i]
		if err := b.step(h.Name+" calico node", func() error { return b.node(ctx, h, i == 0) }); err != nil {
			_ = b.revokeToken(context.Background())
			return err
		}
	}
	if err := b.revokeToken(ctx); err != nil {
		return err
	}
	if b.st.Swarm {
		if err := b.swarm(ctx); err != nil {
			return err
		}
	}
	// Learners are promoted once caught up, when the cluster reaches three
	// voters: wait for that, so the lab is as resilient as it says.
	want := 1
	if len(b.st.Hosts) >= 3 {
		want = 3
	}
	return b.step(fmt.Sprintf("datastore: %d voting etcd member(s)", want), func() error {
		return waitFor(ctx, 60*time.Second, "etcd members", func() error { return b.st.checkVoters(ctx, want) })
	})
}

func (b *builder) ensureNS(ctx context.Context, name string) error {
	if nsExists(name) {
		return nil
	}
	if err := b.r.ip(ctx, "", "netns", "add", name); err != nil {
		return err
	}
	return b.r.ip(ctx, name, "link", "set", "lo", "up")
}

func linkExists(ns, name string) bool {
	return exec.Command("ip", "-n", ns, "link", "show", "dev", name).Run() == nil
}

func (b *builder) fabric(ctx context.Context) error {
	fab := b.st.Fabric.NetNS
	if err := b.ensureNS(ctx, fab); err != nil {
		return err
	}
	for k, br := range b.st.Fabric.Bridges {
		if !linkExists(fab, br.Name) {
			if err := b.r.ip(ctx, fab, "link", "add", br.Name, "type", "bridge"); err != nil {
				return err
			}
		}
		if err := b.r.ip(ctx, fab, "link", "set", br.Name, "up"); err != nil {
			return err
		}
		gw4 := fmt.Sprintf("10.99.%d.254/24", k+1)
		gw6 := fmt.Sprintf("fd00:99:%d::fe/64", k+1)
		if b.st.Router == "" {
			// One subnet: the bridge itself holds the gateway address, so hosts
			// have a default route (proxy ARP for 169.254.1.1 needs one) that
			// leads nowhere outside the lab.
			if err := b.addAddr(ctx, fab, br.Name, gw4, gw6); err != nil {
				return err
			}
		}
	}
	if b.st.Router == "" {
		return nil
	}
	rtr := b.st.Router
	if err := b.ensureNS(ctx, rtr); err != nil {
		return err
	}
	for _, key := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if err := b.r.sysctl(ctx, rtr, key, "1"); err != nil {
			return err
		}
	}
	for k, br := range b.st.Fabric.Bridges {
		leg := fmt.Sprintf("r%d", k+1)
		inner := fmt.Sprintf("eth%d", k+1)
		if !linkExists(rtr, inner) {
			if err := b.r.ip(ctx, fab, "link", "add", leg, "type", "veth", "peer", "name", inner, "netns", rtr); err != nil {
				return err
			}
		}
		if err := b.r.ip(ctx, fab, "link", "set", leg, "master", br.Name, "up"); err != nil {
			return err
		}
		if err := b.r.ip(ctx, rtr, "link", "set", inner, "up"); err != nil {
			return err
		}
		if err := b.addAddr(ctx, rtr, inner, fmt.Sprintf("10.99.%d.254/24", k+1), fmt.Sprintf("fd00:99:%d::fe/64", k+1)); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) addAddr(ctx context.Context, ns, dev string, addrs ...string) error {
	for _, a := range addrs {
		args := []string{"addr", "replace", a, "dev", dev}
		if strings.Contains(a, ":") {
			args = append(args, "nodad")
		}
		if err := b.r.ip(ctx, ns, args...); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) hostNet(ctx context.Context, h *Host) error {
	fresh := !nsExists(h.NetNS)
	if err := b.ensureNS(ctx, h.NetNS); err != nil {
		return err
	}
	fab := b.st.Fabric.NetNS
	leg := "h" + strings.TrimPrefix(h.Name, "host")
	if !linkExists(h.NetNS, "eth0") {
		if err := b.r.ip(ctx, fab, "link", "add", leg, "type", "veth", "peer", "name", "eth0", "netns", h.NetNS); err != nil {
			return err
		}
	}
	if err := b.r.ip(ctx, fab, "link", "set", leg, "master", fmt.Sprintf("br%d", h.Subnet), "up"); err != nil {
		return err
	}
	if err := b.r.ip(ctx, h.NetNS, "link", "set", "eth0", "up"); err != nil {
		return err
	}
	if err := b.addAddr(ctx, h.NetNS, "eth0", h.IP, h.IP6); err != nil {
		return err
	}
	if err := b.r.ip(ctx, h.NetNS, "route", "replace", "default", "via", h.Gateway); err != nil {
		return err
	}
	if err := b.r.ip(ctx, h.NetNS, "-6", "route", "replace", "default", "via", h.Gateway6); err != nil {
		return err
	}
	// Forwarding off, as on a freshly booted host: dockerd then turns it on
	// and sets the FORWARD policy of iptables' filter table to DROP, as it
	// does on users' hosts (the node needs forwarding and sets it itself).
	// A new namespace inherits IPv4 forwarding from the machine, hence the
	// explicit 0; a lab up over an existing host leaves it alone.
	for _, key := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if !fresh {
			break
		}
		if err := b.r.sysctl(ctx, h.NetNS, key, "0"); err != nil {
			return err
		}
	}
	return nil
}

// Mounts private to each host's mount namespace: the source under the host's
// lib/run directory is bind-mounted over the target.
func hostMounts(h *Host) [][2]string {
	return [][2]string{
		{filepath.Join(h.RunDir, "plugins"), "/run/docker/plugins"},
		{filepath.Join(h.LibDir, "calico"), "/var/lib/calico"},
		{filepath.Join(h.RunDir, "calico"), "/var/run/calico"},
		{filepath.Join(h.LibDir, "log"), "/var/log/calico"},
	}
}

func dockerdAlive(h *Host) bool { return pidAlive(h.DockerdPID, "dockerd") }

func (b *builder) dockerd(ctx context.Context, h *Host) error {
	if dockerdAlive(h) {
		return waitDocker(ctx, h)
	}
	if err := ensureMountNS(ctx, b.r, b.st.Name, h); err != nil {
		return fmt.Errorf("mount namespace: %w", err)
	}
	if err := ensureBinDir(h, b.st.IptablesBackend); err != nil {
		return err
	}
	if err := startDockerd(h, !b.st.Swarm); err != nil {
		return err
	}
	if err := b.st.save(); err != nil {
		return err
	}
	if err := waitDocker(ctx, h); err != nil {
		return fmt.Errorf("%w (log: %s)", err, filepath.Join(h.LibDir, "dockerd.log"))
	}
	return nil
}

// startDockerd starts the host's dockerd in the host's network and mount
// namespaces with Docker's own defaults (iptables and ip-masq on, the default
// bridge present), as users run it, with `iptables` resolving to the lab's
// back end through the host's bin directory; plus live-restore so that its
// containers keep running (and keep their addresses) across a dockerd
// restart (not in a swarm lab: swarm refuses it), and its own socket, data,
// exec root and pidfile.
func startDockerd(h *Host, liveRestore bool) error {
	for _, d := range []string{h.LibDir, h.RunDir, filepath.Join(h.LibDir, "docker"), filepath.Join(h.RunDir, "exec")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	pidfile := filepath.Join(h.RunDir, "docker.pid")
	_ = os.Remove(pidfile)
	logf, err := os.OpenFile(filepath.Join(h.LibDir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.NetNS, "--mount="+mountNSFile(h), "--",
		"dockerd", "-H", h.DockerHost, "--data-root", filepath.Join(h.LibDir, "docker"),
		"--exec-root", filepath.Join(h.RunDir, "exec"), "--pidfile", pidfile)
	if liveRestore {
		cmd.Args = append(cmd.Args, "--live-restore")
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "PATH="+hostPath(h))
	if !liveRestore {
		// Swarm: tasks use the hosts' local images (no registry is
		// reachable; without this each task waits for a pull to time out).
		cmd.Env = append(cmd.Env, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1")
	}
	// A session of its own: dockerd outlives `calico lab up`.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	// nsenter execs dockerd: the PID we started is dockerd's.
	h.DockerdPID = cmd.Process.Pid
	go func() { _ = cmd.Wait() }()
	return nil
}

// RestartDockerd stops a host's dockerd and starts it again; with
// live-restore its containers keep running meanwhile.
func RestartDockerd(ctx context.Context, st *State, h *Host) error {
	if err := stopPID(h.DockerdPID, "dockerd", 30*time.Second); err != nil {
		return err
	}
	if err := startDockerd(h, !st.Swarm); err != nil {
		return err
	}
	if err := st.save(); err != nil {
		return err
	}
	return waitDocker(ctx, h)
}

// mountNSFile holds the host's mount namespace (a bind mount of its nsfs
// file), so that it outlives dockerd: a restarted dockerd, `lab exec` and the
// containers all see the same private mounts.
func mountNSFile(h *Host) string { return filepath.Join(RunRoot, labOf(h), "mntns", h.Name) }

func labOf(h *Host) string { return filepath.Base(filepath.Dir(h.RunDir)) }

// ensureMountNS creates the host's persistent mount namespace with the
// host's private directories bind-mounted over the shared paths.
func ensureMountNS(ctx context.Context, r runner, lab string, h *Host) error {
	dir := filepath.Join(RunRoot, lab, "mntns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// A namespace file can only be bind-mounted on a private mount.
	if !isMountPoint(dir) {
		if _, err := r.run(ctx, "mount", "--bind", dir, dir); err != nil {
			return err
		}
		if _, err := r.run(ctx, "mount", "--make-private", dir); err != nil {
			return err
		}
	}
	file := mountNSFile(h)
	if isNSFile(file) {
		return nil
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		return err
	}
	var script strings.Builder
	script.WriteString("set -e; ")
	for _, m := range hostMounts(h) {
		fmt.Fprintf(&script, "mkdir -p %s %s; mount --bind %s %s; ", m[0], m[1], m[0], m[1])
	}
	_, err := r.run(ctx, "unshare", "--mount="+file, "--propagation", "private", "sh", "-c", script.String())
	return err
}

// nsfsMagic is the filesystem type of namespace files (linux/magic.h).
const nsfsMagic = 0x6e736673

// isNSFile reports whether path is a bind-mounted namespace file. One
// statfs is atomic, unlike reading /proc/self/mountinfo, which can miss
// entries while other processes mount and unmount (several labs at once):
// a missed entry once made `lab exec` run in the machine's own mount
// namespace and write the machine's /var/lib/calico.
func isNSFile(path string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(path, &st) == nil && st.Type == nsfsMagic
}

// isMountPoint reports whether path is a mount point in this mount namespace.
func isMountPoint(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == real {
			return true
		}
	}
	return false
}

// DockerCmd returns an exec.Cmd for the docker CLI against a host's dockerd.
func DockerCmd(ctx context.Context, h *Host, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", h.DockerHost}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	return cmd
}

func waitDocker(ctx context.Context, h *Host) error {
	return waitFor(ctx, 60*time.Second, h.Name+" dockerd", func() error {
		if h.DockerdPID != 0 && !dockerdAlive(h) {
			return fmt.Errorf("dockerd (pid %d) exited", h.DockerdPID)
		}
		out, err := DockerCmd(ctx, h, "version", "--format", "{{.Server.Version}}").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	})
}

func imageExists(ctx context.Context, h *Host, image string) bool {
	return DockerCmd(ctx, h, "image", "inspect", image).Run() == nil
}

func (b *builder) images(ctx context.Context, h *Host) error {
	if b.c.TestImage != "" && !imageExists(ctx, h, b.c.TestImage) {
		if err := BuildBusyboxImage(ctx, h, b.c.TestImage); err != nil {
			return err
		}
	}
	if b.c.NodeImage != "" {
		dc, err := nodectl.DockerAt(h.DockerHost)
		if err != nil {
			return err
		}
		defer dc.Close()
		if _, err := nodectl.EnsureImage(ctx, dc, b.c.NodeImage, b.c.CalicoBin); err != nil {
			return err
		}
	}
	return nil
}

// BuildBusyboxImage builds a FROM-scratch busybox image (shell, ping, nc) on
// the host's dockerd from the machine's static busybox.
func BuildBusyboxImage(ctx context.Context, h *Host, image string) error {
	dir, err := os.MkdirTemp("", "calico-lab-busybox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := copyFile("/bin/busybox", filepath.Join(dir, "busybox"), 0o755); err != nil {
		return fmt.Errorf("copy /bin/busybox (package busybox-static): %w", err)
	}
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\nCMD [\"/bin/sh\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	return dockerBuild(ctx, h, image, dir)
}

func dockerBuild(ctx context.Context, h *Host, image, dir string) error {
	out, err := DockerCmd(ctx, h, "build", "-q", "-t", image, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker build %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

func (b *builder) node(ctx context.Context, h *Host, first bool) error {
	var extra []string
	if !first && !hasCreds(h) {
		// Join with a token, as an operator would on a real host.
		tok, err := b.joinToken(ctx)
		if err != nil {
			return err
		}
		extra = append(extra, "--join-url", JoinURL(b.st), "--join-token", tok)
	}
	return StartNode(ctx, b.st, h, b.c.CalicoBin, b.c.NodeImage, first, extra...)
}

// StartNode runs `calico node start` on a host of the lab (the first host
// creates the cluster CA and runs the embedded etcd), as `lab up` does; a
// host that has not joined yet needs extra join flags (--join-url,
// --join-token).
func StartNode(ctx context.Context, st *State, h *Host, calicoBin, image string, first bool, extra ...string) error {
	args := []string{"node", "start", "--name", h.Name, "--ip", h.IP, "--ip6", h.IP6, "--image", image}
	if first {
		args = append(args, "--embedded-etcd")
	} else if len(extra) == 0 && !hasCreds(h) {
		// Not joined yet: a host started with no credentials would become
		// the first host of a datastore of its own. Join with a one-off
		// token from the first host, revoked once used.
		out, err := CalicoOn(ctx, st, &st.Hosts[0], calicoBin, "node", "token", "create", "--description", "calico lab join "+h.Name)
		if err != nil {
			return err
		}
		tok := strings.TrimSpace(out)
		defer func() {
			_, cred, _ := strings.Cut(tok, "::")
			id, _, _ := strings.Cut(cred, ":")
			_, _ = CalicoOn(context.Background(), st, &st.Hosts[0], calicoBin, "node", "token", "revoke", id)
		}()
		extra = []string{"--join-url", JoinURL(st), "--join-token", tok}
	}
	args = append(args, extra...)
	cmd, err := ExecCmd(ctx, st, h, calicoBin, args...)
	if err != nil {
		return err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("calico node start on %s: %w: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// hasCreds reports whether a host already joined the datastore.
func hasCreds(h *Host) bool {
	_, err := os.Stat(filepath.Join(PKIDir(h), "node.crt"))
	return err == nil
}

// PKIDir is where a host's datastore credentials are, seen from the machine.
func PKIDir(h *Host) string { return filepath.Join(h.LibDir, "calico", "pki") }

// EtcdSocket is a host's local etcd socket, seen from the machine.
func EtcdSocket(h *Host) string { return filepath.Join(h.RunDir, "calico", "etcd.sock") }

// JoinURL is where the lab's first host serves joins.
func JoinURL(st *State) string { return "https://" + st.Hosts[0].Addr() + ":2378" }

// joinToken makes one join token for this build of the lab; it is revoked
// once the hosts have joined (revokeToken).
func (b *builder) joinToken(ctx context.Context) (string, error) {
	if b.token != "" {
		return b.token, nil
	}
	out, err := CalicoOn(ctx, b.st, &b.st.Hosts[0], b.c.CalicoBin, "node", "token", "create", "--description", "calico lab up")
	if err != nil {
		return "", err
	}
	b.token = strings.TrimSpace(out)
	return b.token, nil
}

// revokeToken revokes the build's join token (K10<hash>::<id>:<secret>).
func (b *builder) revokeToken(ctx context.Context) error {
	if b.token == "" {
		return nil
	}
	_, cred, _ := strings.Cut(b.token, "::")
	id, _, _ := strings.Cut(cred, ":")
	_, err := CalicoOn(ctx, b.st, &b.st.Hosts[0], b.c.CalicoBin, "node", "token", "revoke", id)
	b.token = ""
	return err
}

// CalicoOn runs the calico binary in a host and returns its stdout.
func CalicoOn(ctx context.Context, st *State, h *Host, bin string, args ...string) (string, error) {
	cmd, err := ExecCmd(ctx, st, h, bin, args...)
	if err != nil {
		return "", err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("calico %s on %s: %w: %s", strings.Join(args, " "), h.Name, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Env returns the environment a command in the host sees. The datastore
// settings come from the host's own /var/lib/calico/calicoctl.cfg, written
// by its node.
func (s *State) Env(h *Host) []string {
	return []string{
		"DOCKER_HOST=" + h.DockerHost,
		"CALICO_LAB=" + s.Name,
		"CALICO_LAB_HOST=" + h.Name,
		"NODENAME=" + h.Name,
	}
}

// checkVoters is nil once the datastore has want voting members and no learner
// that still waits for promotion (with want 1, a learner may stay).
func (s *State) checkVoters(ctx context.Context, want int) error {
	h := &s.Hosts[0]
	cfg := datastore.Config{
		Endpoints:   []string{"unixs://" + EtcdSocket(h)},
		CACertFile:  filepath.Join(PKIDir(h), "ca.crt"),
		CertFile:    filepath.Join(PKIDir(h), "node.crt"),
		KeyFile:     filepath.Join(PKIDir(h), "node.key"),
		DialTimeout: 3 * time.Second,
	}
	m, err := datastore.NewMembers(cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ms, err := m.List(lctx)
	if err != nil {
		return err
	}
	voters := 0
	for _, x := range ms {
		if !x.Learner {
			voters++
		}
	}
	if voters < want {
		return fmt.Errorf("%d of %d voting members", voters, want)
	}
	return nil
}

// MachineEnv is the environment that lets the machine's own shell use a
// host: its dockerd, and the datastore through the local sockets of the
// hosts that run voting etcd members (this host's first), with this
// host's client certificate. No route into the lab is needed.
func (s *State) MachineEnv(ctx context.Context, h *Host) ([]string, error) {
	creds := datastore.Config{
		CACertFile: filepath.Join(PKIDir(h), "ca.crt"),
		CertFile:   filepath.Join(PKIDir(h), "node.crt"),
		KeyFile:    filepath.Join(PKIDir(h), "node.key"),
	}
	if !hasCreds(h) {
		return nil, fmt.Errorf("host %s has no datastore credentials yet (is its node started?)", h.Name)
	}
	sockets := map[string]string{}
	var any []string
	for i := range s.Hosts {
		if _, err := os.Stat(EtcdSocket(&s.Hosts[i])); err == nil {
			sockets[s.Hosts[i].Name] = "unixs://" + EtcdSocket(&s.Hosts[i])
			any = append(any, sockets[s.Hosts[i].Name])
		}
	}
	if len(any) == 0 {
		return nil, fmt.Errorf("lab %s: no host runs an etcd member (are the nodes started?)", s.Name)
	}
	var eps []string
	cfg := creds
	cfg.Endpoints = any
	cfg.DialTimeout = 3 * time.Second
	if m, err := datastore.NewMembers(cfg); err == nil {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ms, err := m.List(lctx)
		cancel()
		m.Close()
		if err == nil {
			slices.SortStableFunc(ms, func(a, b datastore.Member) int {
				switch {
				case a.Name == h.Name:
					return -1
				case b.Name == h.Name:
					return 1
				}
				return 0
			})
			for _, x := range ms {
				if sock, ok := sockets[x.Name]; ok && !x.Learner {
					eps = append(eps, sock)
				}
			}
		}
	}
	if len(eps) == 0 {
		eps = any
	}
	return []string{
		"DOCKER_HOST=" + h.DockerHost,
		"ETCD_ENDPOINTS=" + strings.Join(eps, ","),
		"ETCD_CA_CERT_FILE=" + creds.CACertFile,
		"ETCD_CERT_FILE=" + creds.CertFile,
		"ETCD_KEY_FILE=" + creds.KeyFile,
		"CALICO_LAB=" + s.Name,
		"CALICO_LAB_HOST=" + h.Name,
		"NODENAME=" + h.Name,
	}, nil
}

// ExecCmd returns a command that runs inside the host's network and mount
// namespaces, with the host's environment and the calico binary's directory
// first on PATH.
func ExecCmd(ctx context.Context, st *State, h *Host, name string, args ...string) (*exec.Cmd, error) {
	if !nsExists(h.NetNS) {
		return nil, fmt.Errorf("host %s: network namespace %s is gone", h.Name, h.NetNS)
	}
	nsArgs := []string{"--net=/run/netns/" + h.NetNS}
	if isNSFile(mountNSFile(h)) {
		nsArgs = append(nsArgs, "--mount="+mountNSFile(h))
	}
	cmd := exec.CommandContext(ctx, "nsenter", append(append(nsArgs, "--"), append([]string{name}, args...)...)...)
	// The caller's datastore settings (e.g. from `lab env`) are not the
	// host's: inside it, calico reads the host's calicoctl.cfg.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "ETCD_") })
	path := hostPath(h)
	if self, err := os.Executable(); err == nil {
		path = filepath.Dir(self) + ":" + path
	}
	env = append(env, "PATH="+path)
	cmd.Env = append(env, st.Env(h)...)
	return cmd, nil
}

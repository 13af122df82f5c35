package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Roots of everything a lab writes on the machine.
const (
	LibRoot = "/var/lib/calico-lab"
	RunRoot = "/var/run/calico-lab"
)

// Config describes a lab to build.
type Config struct {
	Name    string
	Hosts   int
	Subnets int
	// CalicoBin is the calico binary copied into the node image and put on
	// PATH for `lab exec`.
	CalicoBin string
	// NodeImage is the node image name; built on each host's dockerd when missing.
	NodeImage string
	// TestImage is the busybox test image name; built on each host when missing.
	TestImage string
	// StartNodes runs `calico node start` on every host (the default for the CLI).
	StartNodes bool
	// IptablesBackend is the iptables back end the hosts' dockerds (and
	// anything run with `lab exec`) get as `iptables`: "nft" or "legacy";
	// "" means whatever the machine's own `iptables` is.
	IptablesBackend string
	// Swarm makes the hosts a Docker swarm (host1 the manager, the others
	// workers) with the managed calico plugin installed on each; their
	// dockerds then run without --live-restore, which swarm refuses.
	Swarm    bool
	Progress io.Writer
	Logger   *slog.Logger
}

// State is what a lab is made of; it is persisted as state.json.
type State struct {
	Name          string   `json:"name"`
	Hosts         []Host   `json:"hosts"`
	Fabric        Fabric   `json:"fabric"`
	Router        string   `json:"router_netns,omitempty"`
	EtcdEndpoints []string `json:"etcd_endpoints"`
	NodeImage     string   `json:"node_image,omitempty"`
	TestImage     string   `json:"test_image,omitempty"`
	// IptablesBackend is "nft" or "legacy" (see Config).
	IptablesBackend string `json:"iptables_backend,omitempty"`
	// Swarm: see Config.
	Swarm bool `json:"swarm,omitempty"`
}

// Host is one lab host.
type Host struct {
	Name       string `json:"name"`
	NetNS      string `json:"netns"`
	IP         string `json:"ip"`
	IP6        string `json:"ip6"`
	Subnet     int    `json:"subnet"`
	Gateway    string `json:"gateway"`
	Gateway6   string `json:"gateway6"`
	DockerHost string `json:"docker_host"`
	DockerdPID int    `json:"dockerd_pid,omitempty"`
	LibDir     string `json:"lib_dir"`
	RunDir     string `json:"run_dir"`
	// BinDir holds the host's iptables symlinks; it comes first on the PATH
	// of the host's dockerd and of `lab exec`.
	BinDir string `json:"bin_dir,omitempty"`
}

// Fabric is the namespace that joins the hosts.
type Fabric struct {
	NetNS   string   `json:"netns"`
	Bridges []Bridge `json:"bridges"`
}

// Bridge is one subnet of the fabric.
type Bridge struct {
	Name    string `json:"name"`
	Subnet  string `json:"subnet"`
	Subnet6 string `json:"subnet6"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

// ValidateName checks a lab name: short, since it goes into namespace names.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid lab name %q: use 1-10 lowercase letters and digits, starting with a letter", name)
	}
	return nil
}

func (c *Config) validate() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if c.Hosts < 1 || c.Hosts > 50 {
		return fmt.Errorf("invalid --hosts %d: want 1 to 50", c.Hosts)
	}
	if c.Subnets < 1 || c.Subnets > 8 || c.Subnets > c.Hosts {
		return fmt.Errorf("invalid --subnets %d: want 1 to 8 and at most --hosts", c.Subnets)
	}
	switch c.IptablesBackend {
	case "", "nft", "legacy":
	default:
		return fmt.Errorf("invalid --iptables-backend %q: want nft or legacy (default: what this machine's iptables is)", c.IptablesBackend)
	}
	return nil
}

// Plan computes the lab's layout without touching the machine.
func Plan(c Config) (*State, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	st := &State{Name: c.Name, Fabric: Fabric{NetNS: nsName(c.Name, "fab")},
		NodeImage: c.NodeImage, TestImage: c.TestImage, IptablesBackend: c.IptablesBackend, Swarm: c.Swarm}
	if c.Subnets > 1 {
		st.Router = nsName(c.Name, "rtr")
	}
	for k := 1; k <= c.Subnets; k++ {
		st.Fabric.Bridges = append(st.Fabric.Bridges, Bridge{
			Name:    fmt.Sprintf("br%d", k),
			Subnet:  fmt.Sprintf("10.99.%d.0/24", k),
			Subnet6: fmt.Sprintf("fd00:99:%d::/64", k),
		})
	}
	for i := 1; i <= c.Hosts; i++ {
		k := (i-1)%c.Subnets + 1
		name := fmt.Sprintf("host%d", i)
		h := Host{
			Name:     name,
			NetNS:    nsName(c.Name, fmt.Sprintf("h%d", i)),
			IP:       fmt.Sprintf("10.99.%d.%d/24", k, 10+i),
			IP6:      fmt.Sprintf("fd00:99:%d::%x/64", k, 0x10+i),
			Subnet:   k,
			Gateway:  fmt.Sprintf("10.99.%d.254", k),
			Gateway6: fmt.Sprintf("fd00:99:%d::fe", k),
			LibDir:   filepath.Join(LibRoot, c.Name, name),
			RunDir:   filepath.Join(RunRoot, c.Name, name),
		}
		h.DockerHost = "unix://" + filepath.Join(h.RunDir, "docker.sock")
		h.BinDir = filepath.Join(h.LibDir, "bin")
		st.Hosts = append(st.Hosts, h)
	}
	// Inside the lab; from the machine, `calico lab env` gives local sockets.
	st.EtcdEndpoints = []string{"https://" + addrOnly(st.Hosts[0].IP) + ":2379"}
	return st, nil
}

func nsName(lab, part string) string { return "calab-" + lab + "-" + part }

func addrOnly(cidr string) string {
	a, _, _ := strings.Cut(cidr, "/")
	return a
}

// HostByName finds a host of the lab.
func (s *State) HostByName(name string) (*Host, error) {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i], nil
		}
	}
	names := make([]string, 0, len(s.Hosts))
	for _, h := range s.Hosts {
		names = append(names, h.Name)
	}
	return nil, fmt.Errorf("lab %s has no host %q (hosts: %s)", s.Name, name, strings.Join(names, ", "))
}

// Addr is the host's fabric IPv4 address without the prefix length.
func (h *Host) Addr() string { return addrOnly(h.IP) }

// Addr6 is the host's fabric IPv6 address without the prefix length.
func (h *Host) Addr6() string { return addrOnly(h.IP6) }

func statePath(name string) string { return filepath.Join(LibRoot, name, "state.json") }

// Load reads a lab's state.
func Load(name string) (*State, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(statePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no lab named %q (create it with `calico lab up --name %s`)", name, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse lab state %s: %w", statePath(name), err)
	}
	return &st, nil
}

func (s *State) save() error {
	if err := os.MkdirAll(filepath.Dir(statePath(s.Name)), 0o755); err != nil {
		return fmt.Errorf("create lab directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(s.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return os.Rename(tmp, statePath(s.Name))
}

// runner runs commands with logging and error context.
type runner struct {
	log *slog.Logger
}

func (r runner) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	r.log.Debug("run", "cmd", name+" "+strings.Join(args, " "), "err", err)
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ip runs `ip [-n ns] args...`.
func (r runner) ip(ctx context.Context, ns string, args ...string) error {
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	_, err := r.run(ctx, "ip", args...)
	return err
}

func (r runner) sysctl(ctx context.Context, ns, key, val string) error {
	_, err := r.run(ctx, "ip", "netns", "exec", ns, "sysctl", "-qw", key+"="+val)
	return err
}

func nsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// pidAlive reports whether pid runs a process whose command name is comm.
func pidAlive(pid int, comm string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return false
	}
	return strings.TrimSpace(string(b)) == comm
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready within %v: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 500*time.Millisecond {
			delay *= 2
		}
	}
}

func stopPID(pid int, comm string, timeout time.Duration) error {
	if !pidAlive(pid, comm) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !pidAlive(pid, comm) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && pidAlive(pid, comm); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if pidAlive(pid, comm) {
		return fmt.Errorf("process %d (%s) did not exit", pid, comm)
	}
	return nil
}

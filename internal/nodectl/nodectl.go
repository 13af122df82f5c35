package nodectl

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	dockerplugin "github.com/calico-docker/calico/internal/plugin/docker"
)

// ContainerName is the node container's name.
const ContainerName = "calico-node"

// XtablesLock is the lock every iptables command takes with -w.
const XtablesLock = "/run/xtables.lock"

// Host paths the node container mounts, at the same path inside.
var hostMounts = []string{"/run/docker/plugins", "/var/lib/calico", "/var/run/calico", "/var/log/calico"}

// BGPSecretDir holds BGP passwords, one file per BGPPeer
// spec.password.secretKeyRef: <dir>/<name>/<key>. The node container mounts
// it read-only; it is created mode 0700.
const BGPSecretDir = "/etc/calico/bgp-secrets"

// Capabilities is everything the node container may do beyond an
// unprivileged process: Docker's defaults are all dropped first (CapDrop
// ALL), then only these are added back. Each one's reason is in
// docs/node-hardening.md ("The node container"):
//   - NET_ADMIN: links (veths, vxlan.calico), routes, neighbours, nftables,
//     the /proc/sys/net settings and large netlink socket buffers.
//   - NET_BIND_SERVICE: the BGP listener on port 179.
//   - CHOWN: give the plugin sockets to the docker group (mode 0660).
//   - NET_RAW: iptables-legacy (the DOCKER-USER rule on hosts whose Docker
//     uses the legacy back end) reads and replaces its tables through a raw
//     socket.
//
// Not needed, and so not given: SYS_ADMIN and SYS_PTRACE (the node works in
// the host network namespace it runs in and never enters another one, so
// it needs neither setns nor /proc/<pid>/ns of other processes), DAC_OVERRIDE (everything it opens is root's).
// --privileged would give everything, and runc refuses it on hosts that
// withhold a capability.
var Capabilities = []string{"NET_ADMIN", "NET_BIND_SERVICE", "CHOWN", "NET_RAW"}

// dockerReadonlyPaths are Docker's default read-only paths (moby's
// oci.DefaultSpec). The node keeps them all except /proc/sys, which it
// replaces by every entry below /proc/sys but net: sysctls under
// /proc/sys/net are the node's job, kernel.*, vm.*, fs.* and the rest stay
// read-only. Docker's default masked paths are kept untouched.
var dockerReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// readonlyPaths returns dockerReadonlyPaths with /proc/sys split as above,
// reading the entries of /proc/sys from procSys (the host's: the node shares
// its kernel). A /proc/sys that cannot be read keeps /proc/sys read-only
// as a whole, and the node then fails its check with a clear message.
func readonlyPaths(procSys string) []string {
	ents, err := os.ReadDir(procSys)
	var out []string
	for _, p := range dockerReadonlyPaths {
		if p != "/proc/sys" || err != nil {
			out = append(out, p)
			continue
		}
		for _, e := range ents {
			if e.Name() != "net" {
				out = append(out, "/proc/sys/"+e.Name())
			}
		}
	}
	return out
}

// SecurityOpts are the node container's security options.
var SecurityOpts = []string{"no-new-privileges"}

// Docker connects to the Docker daemon named by DOCKER_HOST (default socket).
func Docker() (*client.Client, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return c, nil
}

// DockerSocketPath is the unix socket path of DOCKER_HOST, for mounting into the node.
func DockerSocketPath() (string, error) {
	h := os.Getenv("DOCKER_HOST")
	if h == "" {
		h = client.DefaultDockerHost
	}
	p, ok := strings.CutPrefix(h, "unix://")
	if !ok {
		return "", fmt.Errorf("DOCKER_HOST %q: the node needs a local unix socket", h)
	}
	return p, nil
}

// Ping checks that Docker answers within the context's deadline.
func Ping(ctx context.Context, c *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker is not reachable at %s: %w", c.DaemonHost(), err)
	}
	return nil
}

// DockerAt connects to the Docker daemon at host (e.g. unix:///run/x.sock).
func DockerAt(host string) (*client.Client, error) {
	c, err := client.New(client.WithHost(host))
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", host, err)
	}
	return c, nil
}

// binaryLabel records which binary an image holds, so that a rebuilt binary
// gets a rebuilt image even when the version tag is the same.
const binaryLabel = "org.calico-docker.binary-sha256"

// EnsureImage builds the node image from the binary at calicoBin unless an
// image of that name already holds this very binary. The binary must be
// static (CGO_ENABLED=0): the image has nothing else in it.
func EnsureImage(ctx context.Context, c *client.Client, image, calicoBin string) (built bool, err error) {
	bin, err := os.ReadFile(calicoBin)
	if err != nil {
		return false, fmt.Errorf("read calico binary for the node image: %w", err)
	}
	ipt, err := iptablesBundle()
	if err != nil {
		return false, err
	}
	// The label covers the binary and the iptables files the image carries.
	h := sha256.New()
	h.Write(bin)
	for _, p := range sortedKeys(ipt) {
		fmt.Fprintf(h, "\x00%s\x00%s\x00", p, ipt[p].link)
		h.Write(ipt[p].data)
	}
	sum := fmt.Sprintf("%x", h.Sum(nil))
	if img, err := c.ImageInspect(ctx, image); err == nil && img.Config != nil && img.Config.Labels[binaryLabel] == sum {
		return false, nil
	}
	if err := checkStatic(bin); err != nil {
		return false, fmt.Errorf("%s: %w", calicoBin, err)
	}
	files := map[string]fileEntry{"calico": {data: bin, mode: 0o755}}
	copyLine := "COPY calico /calico\n"
	if len(ipt) > 0 {
		for p, f := range ipt {
			files["rootfs"+p] = f
		}
		copyLine += "COPY rootfs/ /\n"
	}
	df := "FROM scratch\n" + copyLine + "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n" +
		"LABEL " + binaryLabel + "=" + sum + "\nENTRYPOINT [\"/calico\"]\nCMD [\"node\", \"run\"]\n"
	files["Dockerfile"] = fileEntry{data: []byte(df), mode: 0o644}
	ctxTar, err := tarContext(files)
	if err != nil {
		return false, err
	}
	res, err := c.ImageBuild(ctx, ctxTar, client.ImageBuildOptions{Tags: []string{image}, Remove: true, ForceRemove: true})
	if err != nil {
		return false, fmt.Errorf("build image %s: %w", image, err)
	}
	defer res.Body.Close()
	if err := readBuildStream(res.Body); err != nil {
		return false, fmt.Errorf("build image %s: %w", image, err)
	}
	return true, nil
}

// checkStatic refuses a dynamically linked ELF binary (one with an
// interpreter), which cannot run in a FROM-scratch image.
func checkStatic(bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("the binary is dynamically linked; build it with CGO_ENABLED=0 (make build)")
		}
	}
	return nil
}

type fileEntry struct {
	data []byte
	mode int64
	link string // a symlink to this target instead of data
}

func sortedKeys(m map[string]fileEntry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func tarContext(files map[string]fileEntry) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range sortedKeys(files) {
		f := files[n]
		if f.link != "" {
			if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeSymlink, Linkname: f.link, Mode: 0o777}); err != nil {
				return nil, err
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// readBuildStream drains a build's JSON message stream and returns its error, if any.
func readBuildStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// Spec is what the node container runs.
type Spec struct {
	Image string
	// Args are the arguments after the entrypoint, e.g. ["node","run","--name","h1"].
	Args []string
	// Env are extra environment variables (ETCD_ENDPOINTS, ...).
	Env []string
	// DockerSocket is the host path of the Docker socket, mounted at /var/run/docker.sock.
	DockerSocket string
	// ReadOnlyFiles are host files (an external etcd's CA, certificate and
	// key) mounted read-only at the same path.
	ReadOnlyFiles []string
}

// hostConfig is how the node container runs: host network, no privileges
// beyond Capabilities, Docker's masked paths, a read-only root filesystem
// and no-new-privileges. It has no host PID namespace: nothing in the node
// looks at other processes.
func hostConfig(binds []string) *container.HostConfig {
	return &container.HostConfig{
		NetworkMode:   "host",
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways},
		CapDrop:       []string{"ALL"},
		CapAdd:        Capabilities,
		SecurityOpt:   SecurityOpts,
		// MaskedPaths nil: Docker's defaults (/proc/kcore, /proc/keys, ...).
		ReadonlyPaths:  readonlyPaths("/proc/sys"),
		ReadonlyRootfs: true,
		Binds:          binds,
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
	}
}

// hostConfigHash identifies the container settings, so that a node started
// by an older calico with other settings is replaced, not left running.
func hostConfigHash(hc *container.HostConfig) string {
	b, _ := json.Marshal(hc)
	return fmt.Sprintf("%x", sha256.Sum256(b))[:16]
}

const specLabel = "org.calico-docker.node.spec"

// Start runs the node container, replacing one that is stopped or configured
// differently. It returns "started", "restarted" or "already running".
func Start(ctx context.Context, c *client.Client, s Spec) (string, error) {
	spec, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	binds := make([]string, 0, len(hostMounts)+3)
	for _, p := range hostMounts {
		binds = append(binds, p+":"+p)
	}
	// iptables' lock, shared with dockerd and every other iptables user on
	// the host; it must exist as a file, or Docker would create a directory.
	lock, err := os.OpenFile(XtablesLock, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", XtablesLock, err)
	}
	lock.Close()
	binds = append(binds, XtablesLock+":"+XtablesLock)
	if err := os.MkdirAll(BGPSecretDir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", BGPSecretDir, err)
	}
	binds = append(binds, BGPSecretDir+":"+BGPSecretDir+":ro")
	if s.DockerSocket != "" {
		binds = append(binds, s.DockerSocket+":/var/run/docker.sock")
	}
	// An external etcd's TLS files, read-only at the same paths.
	for _, f := range s.ReadOnlyFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return "", fmt.Errorf("mount %s: %w", f, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("mount %s into the node: %w", f, err)
		}
		binds = append(binds, abs+":"+abs+":ro")
	}
	hc := hostConfig(binds)
	want := string(spec) + " " + hostConfigHash(hc)
	existing, err := c.ContainerInspect(ctx, ContainerName, client.ContainerInspectOptions{})
	state := "started"
	if err == nil {
		ctr := existing.Container
		running := ctr.State != nil && ctr.State.Running
		if running && ctr.Config != nil && ctr.Config.Labels[specLabel] == want {
			return "already running", nil
		}
		if _, err := c.ContainerRemove(ctx, ctr.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			return "", fmt.Errorf("remove old %s container: %w", ContainerName, err)
		}
		state = "restarted"
	}
	for _, p := range hostMounts {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", p, err)
		}
	}
	// The node image has no group database: tell the plugin the docker
	// group's gid (-1: no such group, sockets mode 0600).
	env := append([]string{"DOCKER_HOST=unix:///var/run/docker.sock",
		"CALICO_PLUGIN_SOCKET_GID=" + strconv.Itoa(dockerplugin.DockerSocketGroup())}, s.Env...)
	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: ContainerName,
		Config: &container.Config{
			Image:  s.Image,
			Cmd:    s.Args,
			Env:    env,
			Labels: map[string]string{specLabel: want},
		},
		HostConfig: hc,
	})
	if err != nil {
		return "", fmt.Errorf("create %s container: %w", ContainerName, err)
	}
	if _, err := c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		_, _ = c.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
		return "", fmt.Errorf("start %s container: %w", ContainerName, err)
	}
	return state, nil
}

// Stop removes the node container. A missing container is success.
func Stop(ctx context.Context, c *client.Client) (bool, error) {
	_, err := c.ContainerRemove(ctx, ContainerName, client.ContainerRemoveOptions{Force: true})
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "no such container") {
			return false, nil
		}
		return false, fmt.Errorf("remove %s container: %w", ContainerName, err)
	}
	return true, nil
}

// ContainerState describes the node container.
type ContainerState struct {
	Exists   bool
	Running  bool
	Status   string
	Started  time.Time
	Restarts int
	Image    string
}

// Inspect reads the node container's state.
func Inspect(ctx context.Context, c *client.Client) (ContainerState, error) {
	res, err := c.ContainerInspect(ctx, ContainerName, client.ContainerInspectOptions{})
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "no such container") {
			return ContainerState{}, nil
		}
		return ContainerState{}, fmt.Errorf("inspect %s: %w", ContainerName, err)
	}
	ctr := res.Container
	st := ContainerState{Exists: true, Restarts: ctr.RestartCount}
	if ctr.Config != nil {
		st.Image = ctr.Config.Image
	}
	if ctr.State != nil {
		st.Running = ctr.State.Running
		st.Status = string(ctr.State.Status)
		st.Started, _ = time.Parse(time.RFC3339Nano, ctr.State.StartedAt)
	}
	return st, nil
}

// Logs returns the last lines of the node container's output.
func Logs(ctx context.Context, c *client.Client, lines int) string {
	res, err := c.ContainerLogs(ctx, ContainerName, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(lines)})
	if err != nil {
		return ""
	}
	defer res.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, res)
	return out.String()
}

// Health is what the node serves on its health port under /status.
type Health struct {
	Ready     bool            `json:"ready"`
	Reason    string          `json:"reason,omitempty"`
	Node      string          `json:"node"`
	Endpoints int             `json:"endpoints"`
	InSync    bool            `json:"datastoreInSync"`
	Peers     json.RawMessage `json:"peers,omitempty"`
	// DockerFirewall says what the node keeps in Docker's iptables firewall.
	DockerFirewall string `json:"dockerFirewall,omitempty"`
	// Forwarding is "ok", or which forwarding sysctl is off.
	Forwarding string `json:"forwarding,omitempty"`
	Version    string `json:"version"`
}

// ReadHealth fetches the node's /status from its health address.
func ReadHealth(ctx context.Context, addr string) (Health, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return Health{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Health{}, fmt.Errorf("node health at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return Health{}, fmt.Errorf("node health at %s: %w", addr, err)
	}
	return h, nil
}

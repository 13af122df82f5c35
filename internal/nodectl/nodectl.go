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
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ContainerName is the node container's name.
const ContainerName = "calico-node"

// Host paths the node container mounts, at the same path inside.
var hostMounts = []string{"/run/docker/plugins", "/var/lib/calico", "/var/run/calico", "/var/log/calico"}

// Capabilities the node needs: NET_ADMIN for links, routes and nftables,
// NET_RAW for raw sockets, SYS_ADMIN for network namespace handles, SYS_PTRACE
// to open other processes' namespaces under --pid=host. --privileged would give
// more than this, and runc refuses it on hosts that withhold a capability.
var capabilities = []string{"NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE"}

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
	sum := fmt.Sprintf("%x", sha256.Sum256(bin))
	if img, err := c.ImageInspect(ctx, image); err == nil && img.Config != nil && img.Config.Labels[binaryLabel] == sum {
		return false, nil
	}
	if err := checkStatic(bin); err != nil {
		return false, fmt.Errorf("%s: %w", calicoBin, err)
	}
	df := "FROM scratch\nCOPY calico /calico\nLABEL " + binaryLabel + "=" + sum + "\nENTRYPOINT [\"/calico\"]\nCMD [\"node\", \"run\"]\n"
	ctxTar, err := tarContext(map[string]fileEntry{
		"Dockerfile": {[]byte(df), 0o644},
		"calico":     {bin, 0o755},
	})
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
}

func tarContext(files map[string]fileEntry) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := files[n]
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

const specLabel = "org.calico-docker.node.spec"

// Start runs the node container, replacing one that is stopped or configured
// differently. It returns "started", "restarted" or "already running".
func Start(ctx context.Context, c *client.Client, s Spec) (string, error) {
	want, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	existing, err := c.ContainerInspect(ctx, ContainerName, client.ContainerInspectOptions{})
	state := "started"
	if err == nil {
		ctr := existing.Container
		running := ctr.State != nil && ctr.State.Running
		if running && ctr.Config != nil && ctr.Config.Labels[specLabel] == string(want) {
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
	binds := make([]string, 0, len(hostMounts)+1)
	for _, p := range hostMounts {
		binds = append(binds, p+":"+p)
	}
	env := append([]string{"DOCKER_HOST=unix:///var/run/docker.sock"}, s.Env...)
	if s.DockerSocket != "" {
		binds = append(binds, s.DockerSocket+":/var/run/docker.sock")
	}
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
	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: ContainerName,
		Config: &container.Config{
			Image:  s.Image,
			Cmd:    s.Args,
			Env:    env,
			Labels: map[string]string{specLabel: string(want)},
		},
		HostConfig: &container.HostConfig{
			NetworkMode:   "host",
			PidMode:       "host",
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways},
			CapAdd:        capabilities,
			// `--security-opt systempaths=unconfined` is a CLI spelling; in the
			// API it is empty masked and read-only path lists, so that the node
			// can write /proc/sys.
			MaskedPaths:   []string{},
			ReadonlyPaths: []string{},
			Binds:         binds,
			LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
		},
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
	Version   string          `json:"version"`
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

package managed

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// DefaultName is the plugin's default reference; its driver name in
// `docker network create --driver` is the same (Docker drops ":latest").
const DefaultName = "calico/calico:latest"

// SocketName is the socket the plugin serves, relative to its
// /run/docker/plugins (Docker's interface.socket).
const SocketName = "calico.sock"

// NodeSocketsDir is where the host's /run/docker/plugins (the node's
// calico.sock and calico-ipam.sock) appears inside the plugin.
const NodeSocketsDir = "/run/calico-node"

// HostSocketsDir is the default source of that mount on the host; settable
// with `docker plugin set <plugin> node-sockets.source=DIR` while disabled.
const HostSocketsDir = "/run/docker/plugins"

// Config is the plugin's config.json ("Plugin Config Version 1 of Plugin
// V2"); only the fields this plugin sets.
type Config struct {
	Description   string    `json:"description"`
	Documentation string    `json:"documentation"`
	Entrypoint    []string  `json:"entrypoint"`
	WorkDir       string    `json:"workdir,omitempty"`
	Interface     Interface `json:"interface"`
	Network       Network   `json:"network"`
	Mounts        []Mount   `json:"mounts"`
	Env           []Env     `json:"env"`
	Linux         Linux     `json:"linux"`
}

// Interface names the plugin's protocols and socket.
type Interface struct {
	Types  []string `json:"types"`
	Socket string   `json:"socket"`
}

// Network is the plugin's network namespace: "" gives it one of its own.
type Network struct {
	Type string `json:"type"`
}

// Mount is one bind mount into the plugin.
type Mount struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Options     []string `json:"options"`
	Settable    []string `json:"settable,omitempty"`
}

// Env is one environment variable of the plugin.
type Env struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Value       string   `json:"value"`
	Settable    []string `json:"settable,omitempty"`
}

// Linux holds the capabilities the plugin adds to Docker's defaults.
type Linux struct {
	Capabilities []string `json:"capabilities"`
}

// PluginConfig is the config.json of the calico plugin.
func PluginConfig() Config {
	return Config{
		Description:   "Calico networking: network and IPAM driver for swarm services (proxies to the calico node on each host)",
		Documentation: "https://github.com/calico-docker/calico/blob/main/docs/docker.md",
		Entrypoint:    []string{"/calico", "plugin", "proxy"},
		Interface: Interface{
			Types:  []string{"docker.networkdriver/1.0", "docker.ipamdriver/1.0"},
			Socket: SocketName,
		},
		// No type: a network namespace of its own with no interfaces but
		// loopback. The proxy speaks only unix sockets.
		Network: Network{},
		Mounts: []Mount{{
			Name:        "node-sockets",
			Description: "the directory where the calico node serves calico.sock and calico-ipam.sock",
			Source:      HostSocketsDir,
			Destination: NodeSocketsDir,
			Type:        "bind",
			Options:     []string{"bind", "ro"},
			Settable:    []string{"source"},
		}},
		Env: []Env{{
			Name:        "CALICO_LOG_LEVEL",
			Description: "the proxy's log level: debug logs every call",
			Value:       "info",
			Settable:    []string{"value"},
		}},
		Linux: Linux{Capabilities: []string{}},
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$`)

// ValidateName checks a plugin reference such as calico/calico:v1.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid plugin name %q: want a Docker reference such as %s (lower case, optional :TAG)", name, DefaultName)
	}
	return nil
}

// Build writes the plugin directory dir: config.json and rootfs/calico, a
// copy of the static binary bin. dir must not exist or be empty.
func Build(dir, bin string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("plugin directory %s is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read plugin directory: %w", err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{rootfs, filepath.Join(rootfs, "run", "docker", "plugins"), filepath.Join(rootfs, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := copyFile(bin, filepath.Join(rootfs, "calico"), 0o755); err != nil {
		return fmt.Errorf("copy the calico binary into the plugin: %w", err)
	}
	b, err := json.MarshalIndent(PluginConfig(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

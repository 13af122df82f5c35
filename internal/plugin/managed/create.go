package managed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// CreateOptions says how to install the plugin on one dockerd.
type CreateOptions struct {
	// Name is the plugin reference (DefaultName when empty).
	Name string
	// Bin is the static calico binary copied into the plugin.
	Bin string
	// Docker is the docker CLI and its leading arguments, e.g.
	// ["docker", "-H", "unix:///run/h1/docker.sock"]; default ["docker"].
	Docker []string
	// Enable enables the plugin once created.
	Enable bool
	// Replace removes an existing plugin of that name first (it must not
	// be in use by a network).
	Replace bool
	// NodeSockets overrides the mount source of the node's sockets.
	NodeSockets string
}

// Exists reports whether a plugin of that name is installed.
func Exists(ctx context.Context, docker []string, name string) (bool, error) {
	out, err := run(ctx, docker, "plugin", "ls", "--format", "{{.Name}}")
	if err != nil {
		return false, err
	}
	want := strings.TrimSuffix(name, ":latest")
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSuffix(strings.TrimSpace(l), ":latest") == want {
			return true, nil
		}
	}
	return false, nil
}

// Create builds the plugin directory in a temporary place and runs
// `docker plugin create` (then `docker plugin enable` with Enable). An
// existing plugin of the same name is an error unless Replace.
func Create(ctx context.Context, o CreateOptions) error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if err := ValidateName(o.Name); err != nil {
		return err
	}
	if len(o.Docker) == 0 {
		o.Docker = []string{"docker"}
	}
	exists, err := Exists(ctx, o.Docker, o.Name)
	if err != nil {
		return err
	}
	if exists {
		if !o.Replace {
			return fmt.Errorf("plugin %s is already installed: use --replace to rebuild it (networks using it must be removed first), or `docker plugin enable %s`", o.Name, o.Name)
		}
		if _, err := run(ctx, o.Docker, "plugin", "disable", "--force", o.Name); err != nil && !strings.Contains(err.Error(), "already disabled") {
			return err
		}
		if _, err := run(ctx, o.Docker, "plugin", "rm", o.Name); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "calico-plugin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := Build(dir, o.Bin); err != nil {
		return err
	}
	if _, err := run(ctx, o.Docker, "plugin", "create", o.Name, dir); err != nil {
		return err
	}
	if o.NodeSockets != "" {
		if _, err := run(ctx, o.Docker, "plugin", "set", o.Name, "node-sockets.source="+o.NodeSockets); err != nil {
			return err
		}
	}
	if o.Enable {
		if _, err := run(ctx, o.Docker, "plugin", "enable", o.Name); err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, docker []string, args ...string) (string, error) {
	all := append(append([]string{}, docker[1:]...), args...)
	out, err := exec.CommandContext(ctx, docker[0], all...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", docker[0], strings.Join(all, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Down removes everything the lab made: its containers, the dockerds it
// started (by recorded PID), its network namespaces and its directories.
// Taking down a lab that does not exist is success.
func Down(ctx context.Context, name string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if err := ValidateName(name); err != nil {
		return err
	}
	st, err := Load(name)
	if err != nil {
		// No state: still remove namespaces and directories named after the lab.
		st = &State{Name: name}
	}
	var errs []error
	// First the workload containers of every host, while every node still
	// serves its network plugin (Docker waits ~30 s for a missing plugin on
	// each endpoint it tears down) and the first host's etcd still answers
	// the other hosts' plugins.
	nodeIDs := make([][]string, len(st.Hosts))
	for i := range st.Hosts {
		h := &st.Hosts[i]
		if !dockerdAlive(h) {
			continue
		}
		fmt.Fprintf(progress, "lab %s: removing the containers of %s\n", name, h.Name)
		out, err := DockerCmd(ctx, h, "ps", "-aq", "--filter", "name=calico-node").Output()
		if err != nil {
			continue
		}
		nodeIDs[i] = strings.Fields(string(out))
		if out, err := DockerCmd(ctx, h, "ps", "-aq").Output(); err == nil {
			var ids []string
			for _, id := range strings.Fields(string(out)) {
				if !slices.Contains(nodeIDs[i], id) {
					ids = append(ids, id)
				}
			}
			if len(ids) > 0 {
				_ = DockerCmd(ctx, h, append([]string{"rm", "-f"}, ids...)...).Run()
			}
		}
	}
	// Then the nodes and dockerds, the first host (the datastore) last.
	for i := len(st.Hosts) - 1; i >= 0; i-- {
		h := &st.Hosts[i]
		fmt.Fprintf(progress, "lab %s: stopping %s ... ", name, h.Name)
		if dockerdAlive(h) {
			if len(nodeIDs[i]) > 0 {
				_ = DockerCmd(ctx, h, append([]string{"rm", "-f"}, nodeIDs[i]...)...).Run()
			}
			if err := stopPID(h.DockerdPID, "dockerd", 30*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		fmt.Fprintln(progress, "ok")
	}
	// The hosts' mount namespaces, then the private mount holding them.
	nsDir := filepath.Join(RunRoot, name, "mntns")
	if entries, err := os.ReadDir(nsDir); err == nil {
		for _, e := range entries {
			_ = exec.Command("umount", filepath.Join(nsDir, e.Name())).Run()
		}
	}
	_ = exec.Command("umount", nsDir).Run()
	// Namespaces named after the lab, whether or not the state lists them.
	entries, _ := os.ReadDir("/run/netns")
	prefix := "calab-" + name + "-"
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", e.Name(), err, out))
			}
		}
	}
	for _, dir := range []string{filepath.Join(RunRoot, name), filepath.Join(LibRoot, name)} {
		if err := removeAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		fmt.Fprintf(progress, "lab %s: removed\n", name)
	}
	return errors.Join(errs...)
}

// removeAll removes a directory tree, first unmounting anything still mounted
// below it in this mount namespace (dockerd's overlay mounts normally vanish
// with its private mount namespace).
func removeAll(dir string) error {
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
				mounts = append(mounts, f[1])
			}
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = exec.Command("umount", "-l", mounts[i]).Run()
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// HostStatus is a host's state as seen now.
type HostStatus struct {
	Host
	DockerdRunning bool `json:"dockerd_running"`
}

// Status is a lab's state as seen now.
type Status struct {
	Name          string       `json:"name"`
	Hosts         []HostStatus `json:"hosts"`
	Fabric        Fabric       `json:"fabric"`
	Router        string       `json:"router_netns,omitempty"`
	EtcdEndpoints []string     `json:"etcd_endpoints"`
	// IptablesBackend is the back end of the hosts' dockerds.
	IptablesBackend string `json:"iptables_backend,omitempty"`
}

// GetStatus loads the lab and checks its processes.
func GetStatus(name string) (*Status, error) {
	st, err := Load(name)
	if err != nil {
		return nil, err
	}
	s := &Status{Name: st.Name, Fabric: st.Fabric, Router: st.Router, EtcdEndpoints: st.EtcdEndpoints, IptablesBackend: st.IptablesBackend}
	for _, h := range st.Hosts {
		s.Hosts = append(s.Hosts, HostStatus{Host: h, DockerdRunning: dockerdAlive(&h)})
	}
	return s, nil
}

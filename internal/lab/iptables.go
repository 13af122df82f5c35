package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MachineIptablesBackend says which back end this machine's `iptables`
// runs: "nft" or "legacy" (from `iptables --version`).
func MachineIptablesBackend() (string, error) {
	out, err := exec.Command("iptables", "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("iptables --version: %w: %s (run hack/deps.sh)", err, strings.TrimSpace(string(out)))
	}
	switch s := string(out); {
	case strings.Contains(s, "nf_tables"):
		return "nft", nil
	case strings.Contains(s, "legacy"):
		return "legacy", nil
	default:
		return "", fmt.Errorf("iptables --version: unknown back end in %q", strings.TrimSpace(s))
	}
}

// iptablesNames are the commands a host's bin directory points at the
// chosen back end, as `update-alternatives --set iptables` does.
var iptablesNames = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// ensureBinDir makes h.BinDir hold iptables, ip6tables and their -save and
// -restore commands as symlinks to the back end's binaries (e.g. iptables ->
// /usr/sbin/iptables-legacy).
func ensureBinDir(h *Host, backend string) error {
	if err := os.MkdirAll(h.BinDir, 0o755); err != nil {
		return err
	}
	for _, name := range iptablesNames {
		base, suffix, _ := strings.Cut(name, "-")
		target := base + "-" + backend
		if suffix != "" {
			target += "-" + suffix
		}
		path, err := exec.LookPath(target)
		if err != nil {
			return fmt.Errorf("iptables back end %s needs %s: %w (Debian package iptables)", backend, target, err)
		}
		link := filepath.Join(h.BinDir, name)
		if cur, err := os.Readlink(link); err == nil && cur == path {
			continue
		}
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Symlink(path, link); err != nil {
			return err
		}
	}
	return nil
}

// hostPath is PATH for processes of the host: its bin directory first.
func hostPath(h *Host) string {
	p := os.Getenv("PATH")
	if p == "" {
		p = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	if h.BinDir == "" {
		return p
	}
	return h.BinDir + ":" + p
}

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const (
	unitName       = "calico-node.service"
	defaultUnitDir = "/etc/systemd/system"
	unitMarker     = "# Written by `calico node install-systemd`"
)

func unitPath(dir string) string { return filepath.Join(dir, unitName) }

// Environment variables `node start` reads, carried into the unit when set
// and not overridden by a flag.
var unitEnv = []string{"ETCD_ENDPOINTS", "ETCD_CA_CERT_FILE", "ETCD_CERT_FILE", "ETCD_KEY_FILE", "NODENAME", "IP", "IP6",
	"CALICO_NETWORKING_BACKEND", "CALICO_LOG_LEVEL", "DOCKER_HOST"}

func newNodeInstallSystemdCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install-systemd [node start flags]",
		Short: "Write a systemd unit that runs `calico node start` with these flags at boot, after docker.service",
		Long: `Write /etc/systemd/system/calico-node.service, a oneshot unit that runs
"calico node start" with the given flags after docker.service has started.

The node container already has Docker's restart policy "always", so dockerd
restarts it at boot on its own; the unit adds what the restart policy cannot:
the host checks at every boot, a node image rebuilt when this binary changed,
the same settings re-applied (start is idempotent: a running node with the same
settings is left alone), and a boot that shows the node's readiness in
"systemctl status calico-node". Stopping the unit does not stop the node
(use "calico node stop"). Enable it with:
  systemctl daemon-reload && systemctl enable calico-node`,
		Args: cobra.NoArgs,
	}
	addNodeFlags(cmd)
	cmd.Flags().String("image", NodeImage(), "node image (built from this binary when missing)")
	cmd.Flags().Duration("timeout", 90*time.Second, "how long node start waits for the node to become ready")
	var print bool
	var dir string
	cmd.Flags().BoolVar(&print, "print", false, "print the unit instead of writing it")
	cmd.Flags().StringVar(&dir, "unit-dir", defaultUnitDir, "directory to write the unit to")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		if self, err = filepath.Abs(self); err != nil {
			return err
		}
		var args []string
		changed := map[string]bool{}
		cmd.Flags().Visit(func(fl *pflag.Flag) {
			if fl.Name == "print" || fl.Name == "unit-dir" {
				return
			}
			changed[fl.Name] = true
			v := fl.Value.String()
			if sv, ok := fl.Value.(pflag.SliceValue); ok {
				v = strings.Join(sv.GetSlice(), ",")
			}
			args = append(args, "--"+fl.Name+"="+v)
		})
		var env []string
		flagOf := map[string]string{"ETCD_ENDPOINTS": "etcd-endpoints", "ETCD_CA_CERT_FILE": "etcd-ca-cert-file",
			"ETCD_CERT_FILE": "etcd-cert-file", "ETCD_KEY_FILE": "etcd-key-file", "NODENAME": "name", "IP": "ip", "IP6": "ip6"}
		for _, k := range unitEnv {
			if v := os.Getenv(k); v != "" && !changed[flagOf[k]] {
				env = append(env, k+"="+v)
			}
		}
		timeout, _ := cmd.Flags().GetDuration("timeout")
		unit := unitFile(self, args, env, timeout)
		if print {
			_, err := fmt.Fprint(cmd.OutOrStdout(), unit)
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		p := unitPath(dir)
		if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nenable it with: systemctl daemon-reload && systemctl enable calico-node\n", p)
		return nil
	}
	return cmd
}

// unitFile renders the unit.
func unitFile(bin string, args, env []string, timeout time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; `calico node remove` deletes it.\n", unitMarker)
	b.WriteString(`[Unit]
Description=Calico node: runs the calico-node container (Docker also restarts it by its restart policy)
After=network-online.target docker.service
Wants=network-online.target
Requires=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
`)
	slices.Sort(env)
	for _, e := range env {
		fmt.Fprintf(&b, "Environment=%s\n", systemdQuote(e))
	}
	words := append([]string{bin, "node", "start"}, args...)
	for i, w := range words {
		words[i] = systemdQuote(w)
	}
	fmt.Fprintf(&b, "ExecStart=%s\n", strings.Join(words, " "))
	fmt.Fprintf(&b, "TimeoutStartSec=%d\nRestart=on-failure\nRestartSec=15\n", int((timeout + time.Minute).Seconds()))
	b.WriteString(`
[Install]
WantedBy=multi-user.target
`)
	return b.String()
}

// systemdQuote quotes one word of a systemd command line or assignment:
// specifiers (%) and variables ($) are escaped, and a word with spaces,
// quotes or backslashes is double-quoted with C-style escapes.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

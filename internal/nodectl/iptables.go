package nodectl

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The node manages one rule in Docker's iptables firewall (package
// dockerfw), in whichever back end Docker uses. The image is FROM scratch,
// so it carries the host's own iptables: both multi-call binaries, the
// shared libraries they and their extensions load (found with ldd), and the
// extension directory, at the same paths as on the host; the usual command
// names are symlinks to the multi-call binaries, as Debian installs them.
// Using the host's build means the rules the node writes are exactly what
// the host's `iptables-save` reads back.

// iptablesMulti are the multi-call binaries and the names that run them.
var iptablesMulti = map[string][]string{
	"xtables-nft-multi":    {"iptables-nft", "ip6tables-nft", "iptables-nft-save", "ip6tables-nft-save"},
	"xtables-legacy-multi": {"iptables-legacy", "ip6tables-legacy", "iptables-legacy-save", "ip6tables-legacy-save"},
}

// xtablesDirs are where distributions put iptables extensions.
var xtablesDirs = []string{"/usr/lib/x86_64-linux-gnu/xtables", "/usr/lib/aarch64-linux-gnu/xtables", "/usr/lib64/xtables", "/usr/lib/xtables", "/usr/libexec/xtables"}

// iptablesBundle collects the host's iptables for the node image. A host
// without iptables gives an empty bundle (the node then reports, if Docker's
// firewall is in use, that it cannot manage it).
func iptablesBundle() (map[string]fileEntry, error) {
	files := map[string]fileEntry{}
	var elfs []string
	for multi, names := range iptablesMulti {
		path, err := exec.LookPath(multi)
		if err != nil {
			for _, d := range []string{"/usr/sbin", "/sbin"} {
				if _, serr := os.Stat(filepath.Join(d, multi)); serr == nil {
					path, err = filepath.Join(d, multi), nil
				}
			}
		}
		if err != nil {
			continue
		}
		if err := addHostFile(files, path, path); err != nil {
			return nil, err
		}
		elfs = append(elfs, path)
		for _, n := range names {
			files[filepath.Join(filepath.Dir(path), n)] = fileEntry{link: multi}
		}
	}
	if len(elfs) == 0 {
		return files, nil
	}
	for _, dir := range xtablesDirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".so") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if err := addHostFile(files, p, p); err != nil {
				return nil, err
			}
			elfs = append(elfs, p)
		}
		break
	}
	libs, err := sharedLibs(elfs)
	if err != nil {
		return nil, err
	}
	for _, l := range libs {
		if err := addHostFile(files, l, l); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// addHostFile reads src (following symlinks) into the bundle at dst.
func addHostFile(files map[string]fileEntry, src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s for the node image: %w", src, err)
	}
	files[dst] = fileEntry{data: b, mode: 0o755}
	return nil
}

// sharedLibs lists the libraries (and the loader) the ELF files load, as
// ldd resolves them on this host.
func sharedLibs(elfs []string) ([]string, error) {
	out, err := exec.Command("ldd", elfs...).Output()
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("ldd (package libc-bin) on the host's iptables: %w", err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var p string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			p = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/") && !strings.HasSuffix(f[0], ":"):
			p = f[0] // the loader
		}
		if p != "" && !slices.Contains(libs, p) {
			libs = append(libs, p)
		}
	}
	slices.Sort(libs)
	return libs, nil
}

package checksystem

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/nsexec"
)

// Options say what Gather inspects.
type Options struct {
	// NetNS is the path of the network namespace to inspect ("" = the
	// current one). Feature probes always run in a throwaway namespace of
	// their own, whatever this is.
	NetNS string
	// Root is the filesystem root for configuration files (/etc/default/ufw,
	// ...); "" means "/". Tests point it at a directory they fill.
	Root string
	// SkipProbes leaves out the feature probes (Features stays empty).
	SkipProbes bool
}

// Sysctl keys Gather reads.
const (
	SysctlIPForward   = "net.ipv4.ip_forward"
	SysctlIPv6Forward = "net.ipv6.conf.all.forwarding"
	SysctlRPFilterAll = "net.ipv4.conf.all.rp_filter"
)

var sysctlKeys = []string{SysctlIPForward, SysctlIPv6Forward, SysctlRPFilterAll}

// Gather inspects the host. It changes nothing in the inspected namespace:
// it reads sysctls, links, the nftables ruleset and iptables-legacy-save
// output, and runs the feature probes in a throwaway namespace that
// disappears when they end. Errors are recorded in the Facts, not returned:
// a host we cannot inspect is a finding too.
func Gather(ctx context.Context, o Options) Facts {
	if o.Root == "" {
		o.Root = "/"
	}
	f := Facts{Root: os.Geteuid() == 0, Sysctls: map[string]SysctlFact{}}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		f.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	if !o.SkipProbes {
		feats, err := probeFeatures(ctx)
		if err != nil {
			f.FeaturesErr = err.Error()
		}
		f.Features = feats
	}
	gatherSysctls(o.NetNS, &f)
	gatherLinks(o.NetNS, &f)
	gatherNFT(o.NetNS, &f)
	gatherIPTables(ctx, o.NetNS, &f)
	gatherFirewalls(o, &f)
	return f
}

func gatherSysctls(ns string, f *Facts) {
	_ = nsexec.Do(ns, func() error {
		for _, k := range sysctlKeys {
			p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			b, err := os.ReadFile(p)
			if err != nil {
				f.Sysctls[k] = SysctlFact{Missing: true, WriteErr: err.Error()}
				continue
			}
			s := SysctlFact{Value: strings.TrimSpace(string(b))}
			// Opening for writing changes nothing but proves the node could.
			if w, err := os.OpenFile(p, os.O_WRONLY, 0); err != nil {
				s.WriteErr = err.Error()
			} else {
				w.Close()
			}
			f.Sysctls[k] = s
		}
		return nil
	})
}

func gatherLinks(ns string, f *Facts) {
	h, err := nsexec.Handle(ns)
	if err != nil {
		f.LinksErr = err.Error()
		return
	}
	defer h.Close()
	links, err := nsexec.RetryValue(h.LinkList)
	if err != nil {
		f.LinksErr = err.Error()
		return
	}
	for _, l := range links {
		a := l.Attrs()
		f.Links = append(f.Links, Link{Name: a.Name, Kind: l.Type(), Up: a.Flags&unix.IFF_UP != 0})
	}
}

var hookNames = map[nftables.ChainHook]string{
	*nftables.ChainHookPrerouting:  "prerouting",
	*nftables.ChainHookInput:       "input",
	*nftables.ChainHookForward:     "forward",
	*nftables.ChainHookOutput:      "output",
	*nftables.ChainHookPostrouting: "postrouting",
}

var familyNames = map[nftables.TableFamily]string{
	nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6", nftables.TableFamilyINet: "inet",
	nftables.TableFamilyARP: "arp", nftables.TableFamilyBridge: "bridge", nftables.TableFamilyNetdev: "netdev",
}

func gatherNFT(ns string, f *Facts) {
	var opts []nftables.ConnOption
	if ns != "" {
		fd, err := os.Open(ns)
		if err != nil {
			f.NFTErr = err.Error()
			return
		}
		defer fd.Close()
		opts = append(opts, nftables.WithNetNSFd(int(fd.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		f.NFTErr = err.Error()
		return
	}
	tables, err := c.ListTables()
	if err != nil {
		f.NFTErr = fmt.Sprintf("list nftables tables: %v", err)
		return
	}
	chains, err := c.ListChains()
	if err != nil {
		f.NFTErr = fmt.Sprintf("list nftables chains: %v", err)
		return
	}
	for _, t := range tables {
		tab := Table{Family: familyNames[t.Family], Name: t.Name}
		for _, ch := range chains {
			if ch.Table.Name != t.Name || ch.Table.Family != t.Family {
				continue
			}
			out := Chain{Name: ch.Name}
			if ch.Hooknum != nil {
				out.Hook = hookNames[*ch.Hooknum]
				out.Type = string(ch.Type)
				if ch.Priority != nil {
					out.Priority = int(int32(*ch.Priority))
				}
				out.Policy = "accept"
				if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
					out.Policy = "drop"
				}
				// Only forward-hook chains decide whether routed container
				// traffic passes; their rules are worth reading.
				if out.Hook == "forward" && t.Name != "calico" {
					summariseRules(c, t, ch, &out)
				}
			}
			tab.Chains = append(tab.Chains, out)
		}
		f.NFT = append(f.NFT, tab)
	}
}

func summariseRules(c *nftables.Conn, t *nftables.Table, ch *nftables.Chain, out *Chain) {
	rules, err := c.GetRules(t, ch)
	if err != nil {
		return
	}
	out.Rules = len(rules)
	for _, r := range rules {
		for _, e := range r.Exprs {
			if cmp, ok := e.(*expr.Cmp); ok && bytes.HasPrefix(cmp.Data, []byte("cali")) {
				out.MentionsCali = true
			}
		}
	}
	if len(rules) > 0 {
		out.EndsInDrop = unconditionalDrop(rules[len(rules)-1].Exprs)
	}
}

// unconditionalDrop reports whether a rule drops or rejects every packet:
// only counters before a drop verdict or a reject.
func unconditionalDrop(es []expr.Any) bool {
	for i, e := range es {
		last := i == len(es)-1
		switch e := e.(type) {
		case *expr.Counter, *expr.Log:
		case *expr.Verdict:
			return last && e.Kind == expr.VerdictDrop
		case *expr.Reject:
			return true
		default:
			return false
		}
	}
	return false
}

func gatherIPTables(ctx context.Context, ns string, f *Facts) {
	if out, err := exec.CommandContext(ctx, "iptables", "-V").Output(); err == nil {
		f.IPTables.Version = strings.TrimSpace(string(out))
		switch {
		case strings.Contains(f.IPTables.Version, "nf_tables"):
			f.IPTables.Default = "nf_tables"
		default:
			f.IPTables.Default = "legacy"
		}
	}
	// Which legacy tables are loaded, read in the inspected namespace.
	loaded := map[string]bool{}
	err := nsexec.Do(ns, func() error {
		for fam, file := range map[string]string{"ip": "ip_tables_names", "ip6": "ip6_tables_names"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + file)
			if err != nil {
				continue // module not loaded: no legacy tables
			}
			for _, name := range strings.Fields(string(b)) {
				if name == "filter" {
					loaded[fam] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		f.IPTables.LegacyErr = err.Error()
		return
	}
	for _, fam := range []string{"ip", "ip6"} {
		if !loaded[fam] {
			continue
		}
		bin := map[string]string{"ip": "iptables-legacy-save", "ip6": "ip6tables-legacy-save"}[fam]
		args := []string{"-t", "filter"}
		name := bin
		if ns != "" {
			name, args = "nsenter", append([]string{"--net=" + ns, "--", bin}, args...)
		}
		out, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			f.IPTables.LegacyErr = fmt.Sprintf("legacy %s filter table is loaded but %s failed: %v", fam, bin, err)
			continue
		}
		f.IPTables.Legacy = append(f.IPTables.Legacy, parseSave(fam, out))
	}
}

// parseSave reads iptables-save output of one filter table.
func parseSave(fam string, out []byte) LegacyFilter {
	lf := LegacyFilter{Family: fam}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			fields := strings.Fields(line[1:])
			if len(fields) < 2 {
				continue
			}
			lf.Chains = append(lf.Chains, fields[0])
			if fields[0] == "FORWARD" {
				lf.ForwardPolicy = strings.ToLower(fields[1])
			}
		case strings.HasPrefix(line, "-A "):
			lf.Rules = append(lf.Rules, line)
		}
	}
	return lf
}

func gatherFirewalls(o Options, f *Facts) {
	for _, t := range f.NFT {
		if t.Name == "firewalld" {
			f.Firewalld = Firewalld{Running: true, How: "nftables table " + t.Family + " firewalld"}
		}
	}
	if !f.Firewalld.Running && o.NetNS == "" && processRunning("firewalld") {
		f.Firewalld = Firewalld{Running: true, How: "firewalld process"}
	}
	conf := readKV(filepath.Join(o.Root, "etc/ufw/ufw.conf"))
	if strings.EqualFold(conf["ENABLED"], "yes") {
		f.UFW.Enabled = true
	}
	def := readKV(filepath.Join(o.Root, "etc/default/ufw"))
	f.UFW.ForwardPolicy = strings.ToUpper(def["DEFAULT_FORWARD_POLICY"])
}

// readKV reads a shell-style KEY=value file; a missing file is empty.
func readKV(path string) map[string]string {
	out := map[string]string{}
	fh, err := os.Open(path)
	if err != nil {
		return out
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return out
}

// processRunning reports whether a process whose comm is name runs.
func processRunning(name string) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && strings.TrimSpace(string(b)) == name {
			return true
		}
	}
	return false
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

package checksystem

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Status is a check's verdict.
type Status string

const (
	OK   Status = "OK"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Result is one line of the report.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to do; empty when Status is OK.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of all checks, in a fixed order.
type Report struct {
	Results []Result `json:"results"`
}

// Failed reports whether any check failed: the node cannot work on this host.
func (r Report) Failed() bool { return len(r.With(Fail)) > 0 }

// With returns the results with status s.
func (r Report) With(s Status) []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Status == s {
			out = append(out, x)
		}
	}
	return out
}

// Policy says what the node does about the host, which changes some verdicts.
type Policy struct {
	// DockerUser is true when the node admits forwarded traffic of calico
	// interfaces through Docker's DOCKER-USER chain (after its own policy
	// has judged it), so a FORWARD policy of DROP does not stop it.
	DockerUser bool
	// Mark is the mark bit the node's forward chain sets on workload
	// traffic its policy accepted (named in fixes).
	Mark uint32
}

// MinKernel is the oldest kernel the feature set is known to need:
// concatenated interval sets (set_pipapo) arrived in 5.6.
var MinKernel = [2]int{5, 6}

// TestedKernel is the oldest kernel the project is tested on.
var TestedKernel = [2]int{5, 10}

// Interface names other container networks create.
var foreignLinks = map[string]string{
	"cni0": "a CNI bridge plugin (flannel, kubenet)", "cbr0": "kubenet", "flannel.1": "flannel",
	"flannel-v6.1": "flannel", "flannel-wg": "flannel", "weave": "Weave Net", "datapath": "Weave Net",
	"cilium_host": "Cilium", "cilium_net": "Cilium", "cilium_vxlan": "Cilium", "kube-bridge": "kube-router",
	"kube-dummy-if": "kube-router", "genev_sys_6081": "OVN/Antrea", "antrea-gw0": "Antrea", "tunl0": "Calico IPIP (another Calico)",
}

// Evaluate turns facts into a report. It is pure.
func Evaluate(f Facts, p Policy) Report {
	var r Report
	add := func(check string, s Status, detail, fix string) {
		r.Results = append(r.Results, Result{Check: check, Status: s, Detail: detail, Fix: fix})
	}

	if f.Root {
		add("root", OK, "running as root", "")
	} else {
		add("root", Fail, "not running as root: links, routes, nftables and sysctls need it", "run as root (sudo calico ...)")
	}

	evalKernel(f.Kernel, add)

	if f.FeaturesErr != "" {
		st := Warn
		if !f.Root {
			st = Fail
		}
		add("kernel features", st, "not probed: "+f.FeaturesErr, "run as root with CAP_SYS_ADMIN so the probes can use a throwaway network namespace")
	}
	for _, ft := range f.Features {
		if ft.Err == "" {
			add(ft.Name, OK, ft.What, "")
			continue
		}
		st, cost := Fail, "the node cannot work without it"
		if ft.Need == NeedOptional {
			st, cost = Warn, "only this function is affected"
		}
		add(ft.Name, st, fmt.Sprintf("%s failed: %s (%s)", ft.What, ft.Err, cost),
			fmt.Sprintf("load the kernel support (%s): modprobe the module or use a kernel built with it", ft.Modules))
	}

	if f.NFTErr != "" {
		add("nftables ruleset", Warn, "cannot read the ruleset, so firewall conflicts are not checked: "+f.NFTErr, "run as root")
	}
	evalSysctls(f.Sysctls, add)
	evalIPTables(f, p, add)
	evalFirewalls(f, p, add)
	evalForeign(f, add)
	return r
}

type addFunc func(check string, s Status, detail, fix string)

// parseKernel reads "6.1.0-18-amd64" as (6, 1).
func parseKernel(rel string) (int, int, bool) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	maj, err1 := strconv.Atoi(parts[0])
	minStr := parts[1]
	if i := strings.IndexFunc(minStr, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minStr = minStr[:i]
	}
	mnr, err2 := strconv.Atoi(minStr)
	return maj, mnr, err1 == nil && err2 == nil
}

func older(maj, mnr int, v [2]int) bool { return maj < v[0] || (maj == v[0] && mnr < v[1]) }

func evalKernel(rel string, add addFunc) {
	maj, mnr, ok := parseKernel(rel)
	switch {
	case !ok:
		add("kernel", Warn, fmt.Sprintf("cannot read the kernel version %q; the feature probes decide", rel), "")
	case older(maj, mnr, MinKernel):
		add("kernel", Fail, fmt.Sprintf("%s is older than %d.%d (concatenated interval sets)", rel, MinKernel[0], MinKernel[1]),
			fmt.Sprintf("upgrade the kernel to %d.%d or later (Debian 11 and 12 ship 5.10 and 6.1)", TestedKernel[0], TestedKernel[1]))
	case older(maj, mnr, TestedKernel):
		add("kernel", Warn, fmt.Sprintf("%s is older than the oldest tested kernel %d.%d", rel, TestedKernel[0], TestedKernel[1]),
			fmt.Sprintf("upgrade the kernel to %d.%d or later if the feature probes below fail", TestedKernel[0], TestedKernel[1]))
	default:
		add("kernel", OK, rel, "")
	}
}

func evalSysctls(s map[string]SysctlFact, add addFunc) {
	persist := func(k string) string {
		return fmt.Sprintf("to keep it across reboots: echo %s=1 > /etc/sysctl.d/90-calico.conf", k)
	}
	v4 := s[SysctlIPForward]
	switch {
	case v4.Missing:
		add(SysctlIPForward, Fail, "not present: "+v4.WriteErr, "the kernel needs IPv4 forwarding (CONFIG_INET)")
	case v4.WriteErr != "" && v4.Value != "1":
		add(SysctlIPForward, Fail, fmt.Sprintf("is %s and cannot be changed: %s", v4.Value, v4.WriteErr),
			"set it to 1 (sysctl -w "+SysctlIPForward+"=1) or make /proc/sys writable; "+persist(SysctlIPForward))
	case v4.Value != "1":
		add(SysctlIPForward, Warn, "is "+v4.Value+"; the node sets it to 1 when it starts (so does Docker with iptables on)", persist(SysctlIPForward))
	case v4.WriteErr != "":
		add(SysctlIPForward, Warn, "is 1 but /proc/sys is not writable: the node cannot set per-interface settings: "+v4.WriteErr,
			"run the node where /proc/sys is writable (calico node start does this)")
	default:
		add(SysctlIPForward, OK, "1", "")
	}
	v6 := s[SysctlIPv6Forward]
	switch {
	case v6.Missing:
		add(SysctlIPv6Forward, Warn, "IPv6 is disabled on this host: IPv6 pools cannot work", "enable IPv6 if you need IPv6 pools")
	case v6.Value != "1" && v6.WriteErr != "":
		add(SysctlIPv6Forward, Warn, fmt.Sprintf("is %s and cannot be changed: IPv6 pools cannot work: %s", v6.Value, v6.WriteErr), persist(SysctlIPv6Forward))
	case v6.Value != "1":
		add(SysctlIPv6Forward, OK, "is "+v6.Value+"; the node sets it to 1 when it has IPv6 workloads", "")
	default:
		add(SysctlIPv6Forward, OK, "1", "")
	}
	rp := s[SysctlRPFilterAll]
	switch rp.Value {
	case "0", "1":
		add(SysctlRPFilterAll, OK, rp.Value+"; the node sets rp_filter=1 (strict) on each calico interface", "")
	case "2":
		add(SysctlRPFilterAll, Warn, "2 (loose) overrides the strict reverse-path check the node sets on calico interfaces (the kernel uses the larger value); the node's own anti-spoofing rules still apply",
			"sysctl -w "+SysctlRPFilterAll+"=1 (or 0), and persist it in /etc/sysctl.d")
	default:
		if !rp.Missing {
			add(SysctlRPFilterAll, Warn, "unexpected value "+rp.Value, "set it to 0 or 1")
		}
	}
}

// filterForward is one iptables filter table's FORWARD chain, from either back end.
type filterForward struct {
	backend, family string
	policyDrop      bool
	dockerUser      bool
	docker          bool
	ufw             bool
	felix           bool
	// active: the table holds more than the built-in chains with accept
	// policies (an empty table is left by any iptables call).
	active bool
}

var builtinChains = map[string]bool{"INPUT": true, "FORWARD": true, "OUTPUT": true}

func (ff filterForward) check() string {
	fam := "iptables"
	if ff.family == "ip6" {
		fam = "ip6tables"
	}
	return fmt.Sprintf("%s FORWARD (%s)", fam, ff.backend)
}

func forwardChains(f Facts) []filterForward {
	var out []filterForward
	for _, t := range f.NFT {
		if t.Name != "filter" || (t.Family != "ip" && t.Family != "ip6") {
			continue
		}
		ff := filterForward{backend: "nf_tables", family: t.Family}
		found := false
		for _, c := range t.Chains {
			if !builtinChains[c.Name] {
				ff.active = true
			}
			switch {
			case c.Name == "FORWARD" && c.Hook == "forward":
				found = true
				ff.policyDrop = c.Policy == "drop" || c.EndsInDrop
				ff.active = ff.active || ff.policyDrop || c.Rules > 0
			case c.Name == "DOCKER-USER":
				ff.dockerUser = true
			case c.Name == "DOCKER" || c.Name == "DOCKER-FORWARD" || strings.HasPrefix(c.Name, "DOCKER-ISOLATION"):
				ff.docker = true
			case strings.HasPrefix(c.Name, "ufw-"):
				ff.ufw = true
			case strings.HasPrefix(c.Name, "cali-"):
				ff.felix = true
			}
		}
		if found {
			out = append(out, ff)
		}
	}
	for _, l := range f.IPTables.Legacy {
		ff := filterForward{backend: "legacy", family: l.Family, policyDrop: l.ForwardPolicy == "drop"}
		ff.active = ff.policyDrop || len(l.Rules) > 0
		for _, c := range l.Chains {
			if !builtinChains[c] {
				ff.active = true
			}
			switch {
			case c == "DOCKER-USER":
				ff.dockerUser = true
			case c == "DOCKER" || c == "DOCKER-FORWARD" || strings.HasPrefix(c, "DOCKER-ISOLATION"):
				ff.docker = true
			case strings.HasPrefix(c, "ufw-"):
				ff.ufw = true
			case strings.HasPrefix(c, "cali-"):
				ff.felix = true
			}
		}
		out = append(out, ff)
	}
	return out
}

func evalIPTables(f Facts, p Policy, add addFunc) {
	chains := forwardChains(f)
	backends := map[string]bool{}
	for _, c := range chains {
		if c.active {
			backends[c.backend] = true
		}
	}
	switch {
	case f.IPTables.Default == "":
		add("iptables", OK, "iptables is not installed; Docker cannot use it either", "")
	case len(backends) > 1:
		add("iptables", Warn, fmt.Sprintf("%s; both the nf_tables and the legacy back end hold filter tables: rules in either can drop forwarded traffic", f.IPTables.Version),
			"use one back end (update-alternatives --config iptables) and remove the other's rules")
	default:
		add("iptables", OK, f.IPTables.Version, "")
	}
	if f.IPTables.LegacyErr != "" {
		add("iptables (legacy)", Warn, f.IPTables.LegacyErr, "install iptables (it ships iptables-legacy-save) so the legacy rules can be checked")
	}

	docker := "Docker's firewall: no Docker chains in iptables (dockerd not started, or --iptables=false)"
	for _, t := range f.NFT {
		if t.Name == "docker-bridges" {
			docker = "Docker's firewall: nftables back end (table " + t.Family + " docker-bridges)"
		}
	}
	for _, c := range chains {
		if c.docker || c.dockerUser {
			docker = fmt.Sprintf("Docker's firewall: iptables on (%s back end)", c.backend)
			break
		}
	}
	add("docker firewall", OK, docker, "")

	for _, c := range chains {
		name := c.check()
		bin := map[string]string{"ip/nf_tables": "iptables", "ip6/nf_tables": "ip6tables", "ip/legacy": "iptables-legacy", "ip6/legacy": "ip6tables-legacy"}[c.family+"/"+c.backend]
		if c.felix {
			add("other Calico ("+c.backend+")", Fail, "chains named cali-* found: Calico's own Felix seems to run on this host, and two dataplanes would fight over cali* interfaces",
				"remove the other Calico installation first")
		}
		if !c.policyDrop {
			add(name, OK, "forwarded traffic is accepted by default", "")
			continue
		}
		who := "the FORWARD chain drops forwarded traffic by default"
		if c.docker {
			who += " (Docker's default with iptables on)"
		}
		if c.ufw {
			who += " (ufw's chains are there)"
		}
		// The node's forward chain marks the workload traffic its policy
		// accepted; an accept for that mark lets it past the DROP.
		markRule := fmt.Sprintf("-m mark --mark 0x%x/0x%x -j ACCEPT", p.Mark, p.Mark)
		manual := fmt.Sprintf("%s -I DOCKER-USER %s (traffic the node's policy accepted carries that mark)", bin, markRule)
		if !c.dockerUser {
			manual = fmt.Sprintf("%s -I FORWARD %s (traffic the node's policy accepted carries that mark), or set the FORWARD policy to ACCEPT", bin, markRule)
		}
		switch {
		case p.DockerUser && c.dockerUser:
			add(name, OK, who+"; the node keeps a rule in DOCKER-USER that accepts the traffic its own policy accepted", "")
		case p.DockerUser && c.docker:
			add(name, Warn, who+" and has no DOCKER-USER chain; the node creates it, and dockerd adds the jump to it from FORWARD when it (re)starts",
				"restart dockerd so that FORWARD jumps to DOCKER-USER first")
		case c.family == "ip6":
			add(name, Warn, who+", and not by Docker (no Docker chains there): IPv6 traffic between calico containers dies there", manual)
		case p.DockerUser:
			add(name, Fail, who+", and not by Docker (no Docker chains, so no DOCKER-USER for the node to use): traffic between calico containers dies there", manual)
		default:
			add(name, Fail, who+": traffic between calico containers dies there", manual)
		}
	}
}

func evalFirewalls(f Facts, p Policy, add addFunc) {
	// Other nftables tables with a forward-hook base chain that drops.
	for _, t := range f.NFT {
		if t.Name == "calico" && t.Family == "inet" {
			continue
		}
		if t.Name == "filter" && (t.Family == "ip" || t.Family == "ip6") {
			continue // iptables' FORWARD: judged above
		}
		for _, c := range t.Chains {
			if c.Hook != "forward" || (c.Policy != "drop" && !c.EndsInDrop) {
				continue
			}
			name := fmt.Sprintf("nft %s %s", t.Family, t.Name)
			how := "policy drop"
			if c.Policy != "drop" {
				how = "a final rule that drops or rejects"
			}
			detail := fmt.Sprintf("chain %s (forward hook, priority %d) has %s", c.Name, c.Priority, how)
			fix := fmt.Sprintf("let forwarded traffic of cali* interfaces through table %s %s (e.g. a rule 'iifname \"cali*\" accept' and 'oifname \"cali*\" accept' before the drop; the node's own table still applies policy), or remove the table", t.Family, t.Name)
			if t.Name == "firewalld" {
				fix = "allow forwarding to and from cali* interfaces in firewalld (a zone with target ACCEPT holding them, or a policy), or stop firewalld; the node's own table still applies policy"
			}
			switch {
			case c.MentionsCali:
				add(name, Warn, detail+"; some of its rules match cali* interfaces: check they accept calico traffic", fix)
			case t.Name == "firewalld":
				add(name, Fail, detail+" and no rule for cali* interfaces: traffic between calico containers dies there", fix)
			default:
				add(name, Warn, detail+" and no rule for cali* interfaces: traffic between calico containers dies there unless another of its rules accepts it", fix)
			}
		}
	}
	if f.Firewalld.Running {
		add("firewalld", OK, "running ("+f.Firewalld.How+"); its forward rules are judged above", "")
	} else {
		add("firewalld", OK, "not running", "")
	}
	switch {
	case !f.UFW.Enabled:
		add("ufw", OK, "not enabled", "")
	case f.UFW.ForwardPolicy == "DROP" || f.UFW.ForwardPolicy == "REJECT":
		detail := "enabled with DEFAULT_FORWARD_POLICY=" + f.UFW.ForwardPolicy + ": forwarded traffic no ufw rule allows is dropped"
		fix := `set DEFAULT_FORWARD_POLICY="ACCEPT" in /etc/default/ufw and run ufw reload (the node's own table still applies policy to calico traffic)`
		if p.DockerUser {
			add("ufw", Warn, detail+"; the node's DOCKER-USER rules run before ufw's chains as long as Docker keeps DOCKER-USER first in FORWARD", fix)
		} else {
			add("ufw", Fail, detail+": traffic between calico containers dies there", fix)
		}
	default:
		add("ufw", OK, "enabled, DEFAULT_FORWARD_POLICY="+f.UFW.ForwardPolicy, "")
	}
}

func evalForeign(f Facts, add addFunc) {
	if f.LinksErr != "" {
		add("other container networks", Warn, "cannot list interfaces: "+f.LinksErr, "")
		return
	}
	var found []string
	for _, l := range f.Links {
		owner, ok := foreignLinks[l.Name]
		if !ok {
			continue
		}
		if l.Name == "tunl0" && !l.Up {
			continue // the ipip module creates tunl0 down; only a used one matters
		}
		found = append(found, fmt.Sprintf("%s (%s)", l.Name, owner))
	}
	slices.Sort(found)
	if len(found) == 0 {
		add("other container networks", OK, "no interfaces of other CNI plugins", "")
		return
	}
	add("other container networks", Warn, "found "+strings.Join(found, ", ")+": another container network runs here",
		"make sure its address ranges do not overlap the IPPools and that it leaves cali* interfaces and routes with protocol 80 alone, or remove it")
}

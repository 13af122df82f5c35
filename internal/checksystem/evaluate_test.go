package checksystem

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
)

// cleanHost is a host with everything the node needs and nothing in its way.
func cleanHost() Facts {
	return Facts{
		Root:   true,
		Kernel: "6.1.0-18-amd64",
		Features: []Feature{
			{Name: "nftables", Modules: "nf_tables", Need: NeedRequired, What: "x"},
			{Name: "vxlan", Modules: "vxlan", Need: NeedOptional, What: "y"},
		},
		Sysctls: map[string]SysctlFact{
			SysctlIPForward: {Value: "1"}, SysctlIPv6Forward: {Value: "1"}, SysctlRPFilterAll: {Value: "1"},
		},
		Links:    []Link{{Name: "lo", Up: true}, {Name: "eth0", Up: true}, {Name: "docker0", Kind: "bridge"}},
		IPTables: IPTables{Default: "nf_tables", Version: "iptables v1.8.9 (nf_tables)"},
	}
}

// dockerNFT is the ip filter table dockerd (iptables on, nf_tables back end) leaves.
func dockerNFT(policy string) Table {
	return Table{Family: "ip", Name: "filter", Chains: []Chain{
		{Name: "FORWARD", Hook: "forward", Type: "filter", Policy: policy, Rules: 6},
		{Name: "DOCKER"}, {Name: "DOCKER-USER"}, {Name: "DOCKER-ISOLATION-STAGE-1"},
	}}
}

func TestEvaluate(t *testing.T) {
	type want map[string]Status // check name -> status; "" means absent
	cases := []struct {
		name   string
		mutate func(*Facts)
		policy Policy
		want   want
		fixHas map[string]string // check -> substring of its fix
		failed bool
	}{
		{name: "clean host", mutate: func(*Facts) {}, want: want{"root": OK, "kernel": OK, "nftables": OK, "vxlan": OK,
			SysctlIPForward: OK, "iptables": OK, "docker firewall": OK, "other container networks": OK, "ufw": OK, "firewalld": OK}},
		{name: "not root", mutate: func(f *Facts) { f.Root = false }, want: want{"root": Fail}, failed: true},
		{name: "old kernel", mutate: func(f *Facts) { f.Kernel = "5.4.0-150-generic" }, want: want{"kernel": Fail}, failed: true,
			fixHas: map[string]string{"kernel": "upgrade"}},
		{name: "untested kernel", mutate: func(f *Facts) { f.Kernel = "5.8.1" }, want: want{"kernel": Warn}},
		{name: "unreadable kernel", mutate: func(f *Facts) { f.Kernel = "weird" }, want: want{"kernel": Warn}},
		{name: "required feature missing", mutate: func(f *Facts) { f.Features[0].Err = "no such file or directory" },
			want: want{"nftables": Fail}, failed: true, fixHas: map[string]string{"nftables": "nf_tables"}},
		{name: "optional feature missing", mutate: func(f *Facts) { f.Features[1].Err = "operation not supported" },
			want: want{"vxlan": Warn}, fixHas: map[string]string{"vxlan": "vxlan"}},
		{name: "probes could not run", mutate: func(f *Facts) { f.Features = nil; f.FeaturesErr = "operation not permitted" },
			want: want{"kernel features": Warn}},
		{name: "ruleset unreadable", mutate: func(f *Facts) { f.NFTErr = "operation not permitted" },
			want: want{"nftables ruleset": Warn}},
		{name: "ip_forward off but writable", mutate: func(f *Facts) { f.Sysctls[SysctlIPForward] = SysctlFact{Value: "0"} },
			want: want{SysctlIPForward: Warn}, fixHas: map[string]string{SysctlIPForward: "sysctl.d"}},
		{name: "ip_forward off and read-only", mutate: func(f *Facts) {
			f.Sysctls[SysctlIPForward] = SysctlFact{Value: "0", WriteErr: "read-only file system"}
		}, want: want{SysctlIPForward: Fail}, failed: true},
		{name: "ipv6 disabled", mutate: func(f *Facts) { f.Sysctls[SysctlIPv6Forward] = SysctlFact{Missing: true} },
			want: want{SysctlIPv6Forward: Warn}},
		{name: "loose rp_filter", mutate: func(f *Facts) { f.Sysctls[SysctlRPFilterAll] = SysctlFact{Value: "2"} },
			want: want{SysctlRPFilterAll: Warn}},
		{name: "docker defaults, node without DOCKER-USER support", mutate: func(f *Facts) { f.NFT = []Table{dockerNFT("drop")} },
			policy: Policy{Mark: 0x40000}, want: want{"iptables FORWARD (nf_tables)": Fail}, failed: true,
			fixHas: map[string]string{"iptables FORWARD (nf_tables)": "iptables -I DOCKER-USER -m mark --mark 0x40000/0x40000 -j ACCEPT"}},
		{name: "docker defaults, node admits through DOCKER-USER", mutate: func(f *Facts) { f.NFT = []Table{dockerNFT("drop")} },
			policy: Policy{DockerUser: true}, want: want{"iptables FORWARD (nf_tables)": OK}},
		{name: "FORWARD drop not by Docker: no DOCKER-USER to use", policy: Policy{DockerUser: true, Mark: 0x40000}, mutate: func(f *Facts) {
			f.NFT = []Table{{Family: "ip", Name: "filter", Chains: []Chain{{Name: "FORWARD", Hook: "forward", Policy: "drop"}}}}
		}, want: want{"iptables FORWARD (nf_tables)": Fail}, failed: true,
			fixHas: map[string]string{"iptables FORWARD (nf_tables)": "iptables -I FORWARD -m mark --mark 0x40000/0x40000 -j ACCEPT"}},
		{name: "Docker's chains without DOCKER-USER: the node creates it", policy: Policy{DockerUser: true}, mutate: func(f *Facts) {
			f.NFT = []Table{{Family: "ip", Name: "filter", Chains: []Chain{{Name: "FORWARD", Hook: "forward", Policy: "drop"}, {Name: "DOCKER"}}}}
		}, want: want{"iptables FORWARD (nf_tables)": Warn}},
		{name: "FORWARD accept", mutate: func(f *Facts) { f.NFT = []Table{dockerNFT("accept")} },
			want: want{"iptables FORWARD (nf_tables)": OK}},
		{name: "ip6 FORWARD drop is a warning", mutate: func(f *Facts) {
			t := dockerNFT("drop")
			t.Family = "ip6"
			f.NFT = []Table{t}
		}, want: want{"ip6tables FORWARD (nf_tables)": Warn}},
		{name: "legacy back end with docker", mutate: func(f *Facts) {
			f.IPTables = IPTables{Default: "legacy", Version: "iptables v1.8.9 (legacy)", Legacy: []LegacyFilter{
				{Family: "ip", ForwardPolicy: "drop", Chains: []string{"INPUT", "FORWARD", "OUTPUT", "DOCKER", "DOCKER-USER"}}}}
		}, want: want{"iptables FORWARD (legacy)": Fail, "iptables": OK}, failed: true,
			fixHas: map[string]string{"iptables FORWARD (legacy)": "iptables-legacy -I DOCKER-USER"}},
		{name: "both back ends hold rules", mutate: func(f *Facts) {
			f.NFT = []Table{dockerNFT("accept")}
			f.IPTables.Legacy = []LegacyFilter{{Family: "ip", ForwardPolicy: "accept", Chains: []string{"INPUT", "FORWARD", "OUTPUT"},
				Rules: []string{"-A FORWARD -i eth1 -j DROP"}}}
		}, want: want{"iptables": Warn}},
		{name: "an empty legacy table beside Docker's is not a conflict", mutate: func(f *Facts) {
			f.NFT = []Table{dockerNFT("drop")}
			f.IPTables.Legacy = []LegacyFilter{{Family: "ip", ForwardPolicy: "accept", Chains: []string{"INPUT", "FORWARD", "OUTPUT"}}}
		}, policy: Policy{DockerUser: true}, want: want{"iptables": OK, "iptables FORWARD (legacy)": OK, "iptables FORWARD (nf_tables)": OK}},
		{name: "felix runs here", mutate: func(f *Facts) {
			f.NFT = []Table{{Family: "ip", Name: "filter", Chains: []Chain{{Name: "FORWARD", Hook: "forward", Policy: "accept"}, {Name: "cali-FORWARD"}}}}
		}, want: want{"other Calico (nf_tables)": Fail, "iptables FORWARD (nf_tables)": OK}, failed: true},
		{name: "firewalld rejects forwarded traffic", mutate: func(f *Facts) {
			f.NFT = []Table{{Family: "inet", Name: "firewalld", Chains: []Chain{{Name: "filter_FORWARD", Hook: "forward", Policy: "accept", EndsInDrop: true, Rules: 9}}}}
			f.Firewalld = Firewalld{Running: true, How: "nftables table inet firewalld"}
		}, want: want{"nft inet firewalld": Fail, "firewalld": OK}, failed: true, fixHas: map[string]string{"nft inet firewalld": "firewalld"}},
		{name: "firewalld with rules for cali", mutate: func(f *Facts) {
			f.NFT = []Table{{Family: "inet", Name: "firewalld", Chains: []Chain{{Name: "filter_FORWARD", Hook: "forward", Policy: "accept", EndsInDrop: true, MentionsCali: true}}}}
		}, want: want{"nft inet firewalld": Warn}},
		{name: "another table drops forwarded traffic", mutate: func(f *Facts) {
			f.NFT = []Table{{Family: "inet", Name: "mine", Chains: []Chain{{Name: "fwd", Hook: "forward", Policy: "drop"}}}}
		}, want: want{"nft inet mine": Warn}},
		{name: "our own table is not a conflict", mutate: func(f *Facts) {
			f.NFT = []Table{{Family: "inet", Name: "calico", Chains: []Chain{{Name: "forward", Hook: "forward", Policy: "accept", EndsInDrop: true}}}}
		}, want: want{"nft inet calico": ""}},
		{name: "input-hook drop is not a forward conflict", mutate: func(f *Facts) {
			f.NFT = []Table{{Family: "inet", Name: "mine", Chains: []Chain{{Name: "in", Hook: "input", Policy: "drop"}}}}
		}, want: want{"nft inet mine": ""}},
		{name: "ufw drops forwarded traffic", mutate: func(f *Facts) { f.UFW = UFW{Enabled: true, ForwardPolicy: "DROP"} },
			want: want{"ufw": Fail}, failed: true, fixHas: map[string]string{"ufw": "DEFAULT_FORWARD_POLICY"}},
		{name: "ufw drops, node admits through DOCKER-USER", mutate: func(f *Facts) { f.UFW = UFW{Enabled: true, ForwardPolicy: "DROP"} },
			policy: Policy{DockerUser: true}, want: want{"ufw": Warn}},
		{name: "ufw accepts forwarded traffic", mutate: func(f *Facts) { f.UFW = UFW{Enabled: true, ForwardPolicy: "ACCEPT"} },
			want: want{"ufw": OK}},
		{name: "flannel present", mutate: func(f *Facts) {
			f.Links = append(f.Links, Link{Name: "flannel.1", Kind: "vxlan", Up: true}, Link{Name: "cni0", Kind: "bridge"})
		}, want: want{"other container networks": Warn}},
		{name: "idle tunl0 is fine", mutate: func(f *Facts) { f.Links = append(f.Links, Link{Name: "tunl0", Kind: "ipip"}) },
			want: want{"other container networks": OK}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := cleanHost()
			c.mutate(&f)
			rep := Evaluate(f, c.policy)
			got := map[string]Result{}
			for _, r := range rep.Results {
				if _, dup := got[r.Check]; dup {
					t.Errorf("check %q reported twice", r.Check)
				}
				got[r.Check] = r
				if r.Status != OK && r.Fix == "" && r.Check != "kernel" {
					t.Errorf("%s is %s without a fix: %s", r.Check, r.Status, r.Detail)
				}
			}
			for check, st := range c.want {
				r, ok := got[check]
				switch {
				case st == "" && ok:
					t.Errorf("%s reported (%s: %s), want absent", check, r.Status, r.Detail)
				case st != "" && !ok:
					t.Errorf("%s not reported; got %v", check, rep.Results)
				case st != "" && r.Status != st:
					t.Errorf("%s = %s (%s), want %s", check, r.Status, r.Detail, st)
				}
			}
			for check, sub := range c.fixHas {
				if !strings.Contains(got[check].Fix, sub) {
					t.Errorf("%s fix %q lacks %q", check, got[check].Fix, sub)
				}
			}
			if rep.Failed() != c.failed {
				t.Errorf("Failed() = %v, want %v: %v", rep.Failed(), c.failed, rep.With(Fail))
			}
			if c.name == "clean host" && len(rep.With(Warn)) > 0 {
				t.Errorf("clean host has warnings: %v", rep.With(Warn))
			}
		})
	}
}

func TestWriteTableShowsFixesAndVerdict(t *testing.T) {
	f := cleanHost()
	f.NFT = []Table{dockerNFT("drop")}
	f.Sysctls[SysctlIPForward] = SysctlFact{Value: "0"}
	var buf bytes.Buffer
	rep := Evaluate(f, Policy{})
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"CHECK", "STATUS", "DETAIL", "iptables FORWARD (nf_tables)  FAIL", "To fix:", "DOCKER-USER",
		"cannot run the calico node: 1 check(s) FAIL, 1 WARN"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := rep.WriteJSON(&buf, f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"failed": true`) || !strings.Contains(buf.String(), `"status": "FAIL"`) {
		t.Errorf("json lacks the verdict:\n%s", buf.String())
	}
}

func TestParseSave(t *testing.T) {
	out := `# Generated by iptables-save v1.8.9
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [12:1008]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
`
	lf := parseSave("ip", []byte(out))
	if lf.ForwardPolicy != "drop" || len(lf.Chains) != 5 || lf.Chains[4] != "DOCKER-USER" || len(lf.Rules) != 2 {
		t.Fatalf("parseSave = %+v", lf)
	}
}

func TestUnconditionalDrop(t *testing.T) {
	cases := []struct {
		es   []expr.Any
		want bool
	}{
		{[]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, true},
		{[]expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}, true},
		{[]expr.Any{&expr.Reject{}}, true},
		{[]expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, false},
		{[]expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Register: 1, Data: []byte("eth0")}, &expr.Verdict{Kind: expr.VerdictDrop}}, false},
		{nil, false},
	}
	for i, c := range cases {
		if got := unconditionalDrop(c.es); got != c.want {
			t.Errorf("case %d: got %v want %v", i, got, c.want)
		}
	}
}

func TestParseKernel(t *testing.T) {
	for rel, want := range map[string][2]int{"6.18.44-fc-v1272": {6, 18}, "5.10.0-28-amd64": {5, 10}, "4.19": {4, 19}, "5.6rc1": {5, 6}} {
		maj, mnr, ok := parseKernel(rel)
		if !ok || maj != want[0] || mnr != want[1] {
			t.Errorf("parseKernel(%q) = %d.%d %v", rel, maj, mnr, ok)
		}
	}
	if _, _, ok := parseKernel("x"); ok {
		t.Error("parseKernel(x) ok")
	}
}

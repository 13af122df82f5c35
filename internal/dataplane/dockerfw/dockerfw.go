package dockerfw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"

	"github.com/calico-docker/calico/internal/nsexec"
)

// Marker starts the comment of every iptables rule we own.
const Marker = "calico-docker:"

// Comment is the full comment of the DOCKER-USER rule.
const Comment = Marker + " forwarded traffic calico policy judged"

// Chain is Docker's chain for users' rules.
const Chain = "DOCKER-USER"

// dockerChains name Docker's firewall: any of them in a filter table means
// dockerd manages that back end and family.
var dockerChains = []string{"DOCKER-USER", "DOCKER", "DOCKER-FORWARD"}

// Backend is an iptables back end.
type Backend string

// The two back ends Debian ships.
const (
	NFT    Backend = "nft"
	Legacy Backend = "legacy"
)

// Target is one back end and address family.
type Target struct {
	Backend Backend
	IPv6    bool
}

// Bin is the iptables binary of the target, e.g. "ip6tables-legacy".
func (t Target) Bin() string {
	if t.IPv6 {
		return "ip6tables-" + string(t.Backend)
	}
	return "iptables-" + string(t.Backend)
}

func (t Target) String() string { return t.Bin() }

// AllTargets are the four back end and family combinations, in the order
// the driver visits them.
var AllTargets = []Target{{NFT, false}, {NFT, true}, {Legacy, false}, {Legacy, true}}

// Runner runs an iptables binary and returns its standard output.
type Runner interface {
	Run(ctx context.Context, bin string, args ...string) (string, error)
}

// Desired is what the driver keeps in place.
type Desired struct {
	// Mark is the mark bit (nft.MarkForwardAllowed) our forward chain sets
	// on workload traffic it judged. Zero means: no rule (remove ours).
	Mark uint32
}

// Options configure a Driver.
type Options struct {
	// NetNS is the path of the network namespace to program ("" = current).
	NetNS string
	// Runner runs iptables; nil runs the binaries found on PATH (inside
	// NetNS through nsenter when NetNS is set).
	Runner Runner
	Logger *slog.Logger
}

// Driver keeps our DOCKER-USER rule in place. It is not safe for concurrent use.
type Driver struct {
	opts    Options
	desired Desired
	status  Status
}

// TargetStatus is what Apply found and did in one target.
type TargetStatus struct {
	Target Target `json:"-"`
	Name   string `json:"target"`
	// Docker reports that Docker's chains exist there.
	Docker bool `json:"docker"`
	// RulePresent reports that our rule is in DOCKER-USER after Apply.
	RulePresent bool `json:"rulePresent"`
	// Inserted, Deleted count rule changes Apply made.
	Inserted int `json:"inserted,omitempty"`
	Deleted  int `json:"deleted,omitempty"`
}

// Status is the outcome of the last Apply.
type Status struct {
	Targets []TargetStatus `json:"targets,omitempty"`
	At      time.Time      `json:"at"`
}

// Summary is a one-line description for logs and readiness.
func (s Status) Summary() string {
	var on []string
	for _, t := range s.Targets {
		if t.Docker && t.RulePresent {
			on = append(on, t.Name)
		}
	}
	if len(on) == 0 {
		return "no Docker firewall found"
	}
	return "DOCKER-USER rule in place (" + strings.Join(on, ", ") + ")"
}

// Changes counts the rules Apply inserted or deleted.
func (s Status) Changes() int {
	n := 0
	for _, t := range s.Targets {
		n += t.Inserted + t.Deleted
	}
	return n
}

// New makes a driver. It touches nothing.
func New(opts Options) *Driver {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(nopWriter{}, nil))
	}
	if opts.Runner == nil {
		opts.Runner = ExecRunner{NetNS: opts.NetNS}
	}
	return &Driver{opts: opts}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// SetDesired records what Apply should program.
func (d *Driver) SetDesired(des Desired) { d.desired = des }

// Status returns the outcome of the last Apply.
func (d *Driver) Status() Status { return d.status }

// Apply reads every back end and family, and where Docker's firewall is
// present makes DOCKER-USER hold exactly our one rule (first when it is
// inserted); elsewhere, and when the desired mark is zero, it deletes rules
// of ours it finds. Errors of one target do not stop the others.
func (d *Driver) Apply(ctx context.Context) (Status, error) {
	st := Status{At: time.Now()}
	var errs []error
	for _, t := range AllTargets {
		ts, err := d.applyTarget(ctx, t)
		st.Targets = append(st.Targets, ts)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Bin(), err))
		}
	}
	d.status = st
	if n := st.Changes(); n > 0 {
		d.opts.Logger.Info("docker firewall rule repaired", "changes", n, "state", st.Summary())
	}
	return st, errors.Join(errs...)
}

// Remove deletes every rule of ours in every back end and family and
// returns how many it deleted. Docker's chains and rules stay as they are.
func (d *Driver) Remove(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	for _, t := range AllTargets {
		ok, err := d.tablePresent(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Bin(), err))
			continue
		}
		if !ok {
			continue
		}
		tab, err := d.list(ctx, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Bin(), err))
			continue
		}
		for _, r := range tab.ours {
			if err := d.del(ctx, t, r); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", t.Bin(), err))
				continue
			}
			n++
		}
	}
	if n > 0 {
		d.opts.Logger.Info("docker firewall rules removed", "rules", n)
	}
	return n, errors.Join(errs...)
}

// WantedRule is the spec of our rule for a mark (after -A/-I DOCKER-USER).
func WantedRule(mark uint32) []string {
	m := fmt.Sprintf("0x%x/0x%x", mark, mark)
	return []string{"-m", "mark", "--mark", m, "-m", "comment", "--comment", Comment, "-j", "ACCEPT"}
}

func (d *Driver) applyTarget(ctx context.Context, t Target) (TargetStatus, error) {
	ts := TargetStatus{Target: t, Name: t.Bin()}
	ok, err := d.tablePresent(t)
	if err != nil || !ok {
		return ts, err
	}
	tab, err := d.list(ctx, t)
	if err != nil {
		return ts, err
	}
	for _, c := range dockerChains {
		if tab.chains[c] {
			ts.Docker = true
		}
	}
	var want []string
	if ts.Docker && d.desired.Mark != 0 {
		want = WantedRule(d.desired.Mark)
	}
	copies := 0
	var stale []ourRule
	for _, r := range tab.ours {
		if want != nil && r.chain == Chain && slices.Equal(r.spec, want) {
			copies++
		} else {
			stale = append(stale, r)
		}
	}
	if copies > 1 {
		// Copies cannot be told apart, and -D deletes the first one, which
		// may be the only one in a useful place. So: a bridge rule at the
		// top, every copy out, one copy in at the top, the bridge out. The
		// accept is in place at every moment.
		bridge := slices.Clone(want)
		bridge[slices.Index(bridge, Comment)] = Comment + " (repair)"
		if _, err := d.run(ctx, t, append([]string{"-I", Chain, "1"}, bridge...)...); err != nil {
			return ts, fmt.Errorf("insert bridge rule into %s: %w", Chain, err)
		}
		defer func() {
			if err := d.del(ctx, t, ourRule{chain: Chain, spec: bridge}); err != nil {
				d.opts.Logger.Warn("delete bridge rule; the next Apply removes it", "target", t.Bin(), "err", err)
			}
		}()
		for range copies {
			if err := d.del(ctx, t, ourRule{chain: Chain, spec: want}); err != nil {
				return ts, err
			}
		}
		ts.Deleted += copies - 1
		ts.Inserted--
		copies = 0
	}
	if want != nil && copies == 0 {
		if !tab.chains[Chain] {
			if _, err := d.run(ctx, t, "-N", Chain); err != nil && !strings.Contains(err.Error(), "already exists") {
				return ts, fmt.Errorf("create chain %s: %w", Chain, err)
			}
		}
		if _, err := d.run(ctx, t, append([]string{"-I", Chain, "1"}, want...)...); err != nil {
			return ts, fmt.Errorf("insert our rule into %s: %w", Chain, err)
		}
		ts.Inserted++
	}
	// Stale rules of ours go only after the wanted one is in place.
	for _, r := range stale {
		if err := d.del(ctx, t, r); err != nil {
			return ts, err
		}
		ts.Deleted++
	}
	if want == nil {
		return ts, nil
	}
	ts.RulePresent = true
	return ts, nil
}

// ourRule is a rule of ours found in a listing.
type ourRule struct {
	chain string
	spec  []string
}

type table struct {
	chains map[string]bool
	ours   []ourRule
}

// list runs `-S` on the filter table and parses chains and our rules.
func (d *Driver) list(ctx context.Context, t Target) (*table, error) {
	out, err := d.run(ctx, t, "-S")
	if err != nil {
		return nil, fmt.Errorf("list filter table: %w", err)
	}
	return parseListing(out)
}

func parseListing(out string) (*table, error) {
	tab := &table{chains: map[string]bool{}}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "-N "):
			tab.chains[strings.TrimSpace(line[3:])] = true
		case strings.HasPrefix(line, "-A ") && strings.Contains(line, Marker):
			words, err := splitWords(line)
			if err != nil {
				return nil, fmt.Errorf("parse rule %q: %w", line, err)
			}
			if len(words) < 2 {
				continue
			}
			// Only a comment that starts with the marker makes a rule ours.
			if i := slices.Index(words, "--comment"); i < 0 || i+1 >= len(words) || !strings.HasPrefix(words[i+1], Marker) {
				continue
			}
			tab.ours = append(tab.ours, ourRule{chain: words[1], spec: words[2:]})
		}
	}
	return tab, nil
}

// splitWords splits an iptables -S line into words the way a shell would:
// iptables quotes words with spaces in double quotes and escapes `"` and `\`
// inside them with a backslash.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case inQuote && c == '"':
			inQuote = false
		case inQuote:
			cur.WriteByte(c)
		case c == '"':
			inQuote, inWord = true, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func (d *Driver) del(ctx context.Context, t Target, r ourRule) error {
	_, err := d.run(ctx, t, append([]string{"-D", r.chain}, r.spec...)...)
	if err != nil && (strings.Contains(err.Error(), "does a matching rule exist") || strings.Contains(err.Error(), "No chain/target/match")) {
		return nil // already gone
	}
	if err != nil {
		return fmt.Errorf("delete our rule from %s: %w", r.chain, err)
	}
	return nil
}

// run runs the target's binary on the filter table, waiting for the xtables lock.
func (d *Driver) run(ctx context.Context, t Target, args ...string) (string, error) {
	return d.opts.Runner.Run(ctx, t.Bin(), append([]string{"-w", "10", "-t", "filter"}, args...)...)
}

// tablePresent reports whether the target's filter table exists, without
// creating it.
func (d *Driver) tablePresent(t Target) (bool, error) {
	if t.Backend == Legacy {
		name := "ip_tables_names"
		if t.IPv6 {
			name = "ip6_tables_names"
		}
		var b []byte
		err := nsexec.Do(d.opts.NetNS, func() error {
			var err error
			b, err = os.ReadFile("/proc/thread-self/net/" + name)
			return err
		})
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // no legacy iptables in this kernel
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", name, err)
		}
		return slices.Contains(strings.Fields(string(b)), "filter"), nil
	}
	var opts []nftables.ConnOption
	if d.opts.NetNS != "" {
		f, err := os.Open(d.opts.NetNS)
		if err != nil {
			return false, fmt.Errorf("open netns: %w", err)
		}
		defer f.Close()
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	fam := nftables.TableFamilyIPv4
	if t.IPv6 {
		fam = nftables.TableFamilyIPv6
	}
	tables, err := conn.ListTablesOfFamily(fam)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, tb := range tables {
		if tb.Name == "filter" {
			return true, nil
		}
	}
	return false, nil
}

// ExecRunner runs binaries from PATH, inside NetNS through nsenter when set.
type ExecRunner struct {
	NetNS string
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, bin string, args ...string) (string, error) {
	name, argv := bin, args
	if r.NetNS != "" {
		name, argv = "nsenter", append([]string{"--net=" + r.NetNS, "--", bin}, args...)
	}
	if _, err := exec.LookPath(bin); err != nil {
		return "", fmt.Errorf("%s is not available to the node: %w", bin, err)
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

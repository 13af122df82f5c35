package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/nsexec"
)

const (
	// DefaultProtocol is the route protocol number that marks our routes.
	DefaultProtocol = 80
	// VXLANDevice and VXLANDeviceV6 are the VXLAN tunnel devices (IPv4 and
	// IPv6 overlay).
	VXLANDevice   = dataplane.VXLANDevice
	VXLANDeviceV6 = dataplane.VXLANDeviceV6
	// HostMAC is the MAC of the host side of every workload veth.
	HostMAC = "ee:ee:ee:ee:ee:ee"
	// DefaultInterfacePrefix is the workload interface prefix.
	DefaultInterfacePrefix = "cali"
)

var hostMAC, _ = net.ParseMAC(HostMAC)

// Options configure a Driver.
type Options struct {
	// NetNS is the path of the network namespace to program ("" = the current
	// one), e.g. /run/netns/x or /proc/<pid>/ns/net.
	NetNS string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Protocol is our route protocol number; 0 means DefaultProtocol.
	Protocol int
	// InterfacePrefix of workload interfaces; "" means "cali". A non-empty
	// Desired.Host.InterfacePrefix takes precedence in Apply.
	InterfacePrefix string
}

// ApplyStats say what one Apply did.
type ApplyStats struct {
	RoutesAdded    int
	RoutesReplaced int
	RoutesDeleted  int
	// RoutesPending are desired routes whose interface does not exist yet.
	RoutesPending int
	// PendingIfaces are the missing interfaces (of routes and endpoints), sorted.
	PendingIfaces []string
	// RouteConflicts are desired destinations held by a route of another
	// protocol, which the driver leaves alone.
	RouteConflicts int
	// LinksChanged counts link changes: MAC set, brought up, created, deleted.
	LinksChanged int
	// SysctlsWritten counts /proc/sys values that were changed.
	SysctlsWritten int
	// NeighborsChanged counts VXLAN neighbour and FDB entries added, replaced or deleted.
	NeighborsChanged int
	Duration         time.Duration
}

// Changes is the number of kernel changes Apply made.
func (s ApplyStats) Changes() int {
	return s.RoutesAdded + s.RoutesReplaced + s.RoutesDeleted + s.LinksChanged + s.SysctlsWritten + s.NeighborsChanged
}

// Driver programs routes, workload interfaces and the VXLAN device of one
// network namespace. SetDesired records; Apply does the kernel work.
type Driver struct {
	opts  Options
	log   *slog.Logger
	proto netlink.RouteProtocol
	h     *netlink.Handle
	dump  *dumper

	mu      sync.Mutex
	desired *dataplane.Desired

	// applyMu serialises Apply; it guards configured.
	applyMu sync.Mutex
	// configured maps an interface name to what its sysctls were set for.
	configured map[string]ifaceConfig
	// programmed are the routes of ours as last applied (incremental.go);
	// nil: unknown, the next Apply reads the kernel's routes. gen counts
	// the Applies that walked them.
	programmed map[netip.Prefix]progRoute
	gen        uint64
	// stale is set by WatchRoutes when a route of ours was deleted by
	// someone else: the next Apply forgets programmed and reads the kernel.
	stale atomic.Bool
	// links caches what Apply saw of links while WatchLinks runs
	// (linkcache.go); guarded by applyMu, lc by linkMu.
	links  map[string]cachedLink
	linkMu sync.Mutex
	lc     linkCache
}

// ifaceConfig identifies the interface settings applied: a new index (the
// interface was re-created) or IPv6 arriving on the endpoint needs a redo.
type ifaceConfig struct {
	index int
	v6    bool
}

// New opens a netlink handle in opts.NetNS.
func New(opts Options) (*Driver, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Protocol == 0 {
		opts.Protocol = DefaultProtocol
	}
	if opts.Protocol < 0 || opts.Protocol > 255 {
		return nil, fmt.Errorf("routes: protocol %d out of range 1-255", opts.Protocol)
	}
	if opts.InterfacePrefix == "" {
		opts.InterfacePrefix = DefaultInterfacePrefix
	}
	h, err := openHandle(opts.NetNS)
	if err != nil {
		return nil, err
	}
	dm, err := newDumper(opts.NetNS)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &Driver{
		opts:       opts,
		log:        opts.Logger.With("component", "routes"),
		proto:      netlink.RouteProtocol(opts.Protocol),
		h:          h,
		dump:       dm,
		configured: make(map[string]ifaceConfig),
	}, nil
}

// openHandle opens a netlink handle in the namespace at path ("" = current)
// with a socket timeout.
func openHandle(path string) (*netlink.Handle, error) {
	h, err := nsexec.Handle(path)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	// A dump of a large table takes well under this; a kernel that never
	// answers must not hang the agent.
	if err := h.SetSocketTimeout(30 * time.Second); err != nil {
		h.Close()
		return nil, fmt.Errorf("routes: netlink socket timeout: %w", err)
	}
	return h, nil
}

// Close releases the netlink handle. The dataplane is left as it is.
func (d *Driver) Close() {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.h.Close()
	d.dump.close()
}

// Protocol is the route protocol number the driver owns.
func (d *Driver) Protocol() int { return int(d.proto) }

// SetDesired records the state the next Apply programs. d must not be changed
// by the caller afterwards.
func (d *Driver) SetDesired(des *dataplane.Desired) {
	d.mu.Lock()
	d.desired = des
	d.mu.Unlock()
}

// Resync forgets which interfaces were already configured, so the next Apply
// re-reads (and repairs) every workload interface's sysctls, then applies.
func (d *Driver) Resync(ctx context.Context) (ApplyStats, error) {
	d.applyMu.Lock()
	clear(d.configured)
	d.programmed = nil
	d.applyMu.Unlock()
	return d.Apply(ctx)
}

// Apply makes the kernel match the desired state: host sysctls, the VXLAN
// device and its neighbours, workload interfaces, then routes. It keeps going
// past individual failures and returns them joined.
func (d *Driver) Apply(ctx context.Context) (ApplyStats, error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	start := time.Now()
	var st ApplyStats

	d.mu.Lock()
	des := d.desired
	d.mu.Unlock()
	if des == nil {
		// Never treat "nothing recorded yet" as "nothing wanted".
		return st, errors.New("routes: Apply called before SetDesired")
	}
	prefix := d.opts.InterfacePrefix
	if des.Host.InterfacePrefix != "" {
		prefix = des.Host.InterfacePrefix
	}

	if d.stale.Swap(false) {
		d.programmed = nil
	}
	byName, err := d.linksFor(des, d.programmed == nil)
	if err != nil {
		return st, fmt.Errorf("routes: list links: %w", err)
	}
	for name, c := range d.configured {
		if l, ok := byName[name]; !ok || l.Attrs().Index != c.index {
			delete(d.configured, name)
		}
	}

	var ec errCollector
	pending := map[string]bool{}

	n, err := nsexec.Ensure(d.opts.NetNS, hostSysctls(des))
	st.SysctlsWritten += n
	ec.add(err)

	if err := ctx.Err(); err != nil {
		return st, err
	}
	d.applyVXLAN(VXLANDevice, des.VXLAN, byName, &st, &ec)
	d.applyVXLAN(VXLANDeviceV6, des.VXLANV6, byName, &st, &ec)

	if err := ctx.Err(); err != nil {
		return st, err
	}
	d.configureInterfaces(des.Endpoints, prefix, byName, pending, &st, &ec)

	if err := ctx.Err(); err != nil {
		return st, err
	}
	d.applyRoutes(ctx, des.Routes, byName, pending, &st, &ec)

	for name := range pending {
		st.PendingIfaces = append(st.PendingIfaces, name)
	}
	slices.Sort(st.PendingIfaces)
	st.Duration = time.Since(start)
	if st.Changes() > 0 || st.RoutesPending > 0 || st.RouteConflicts > 0 {
		d.log.Debug("applied", "added", st.RoutesAdded, "replaced", st.RoutesReplaced,
			"deleted", st.RoutesDeleted, "pending", st.RoutesPending, "conflicts", st.RouteConflicts,
			"links", st.LinksChanged, "sysctls", st.SysctlsWritten, "neighbors", st.NeighborsChanged,
			"took", st.Duration)
	}
	return st, ec.err()
}

// hostSysctls are the host-wide settings: IPv4 forwarding always, IPv6
// forwarding when anything desired is IPv6.
func hostSysctls(des *dataplane.Desired) []nsexec.Sysctl {
	s := []nsexec.Sysctl{{Key: "net/ipv4/ip_forward", Value: "1"}}
	if desiredHasIPv6(des) {
		s = append(s, nsexec.Sysctl{Key: "net/ipv6/conf/all/forwarding", Value: "1", Optional: true})
	}
	return s
}

func desiredHasIPv6(des *dataplane.Desired) bool {
	for _, r := range des.Routes {
		if r.Dst.Addr().Is6() {
			return true
		}
	}
	for _, e := range des.Endpoints {
		for _, a := range e.Addrs {
			if a.Addr().Is6() {
				return true
			}
		}
	}
	return false
}

// configureInterfaces gives each existing workload interface the host MAC,
// brings it up, and sets its sysctls the first time its index is seen.
func (d *Driver) configureInterfaces(eps []dataplane.Endpoint, prefix string, byName map[string]netlink.Link,
	pending map[string]bool, st *ApplyStats, ec *errCollector) {
	type todo struct {
		name string
		cfg  ifaceConfig
		s    []nsexec.Sysctl
	}
	var work []todo
	for _, ep := range eps {
		name := ep.Iface
		if name == "" {
			continue
		}
		if !strings.HasPrefix(name, prefix) {
			d.log.Warn("endpoint interface lacks the workload prefix; not configuring it",
				"endpoint", ep.ID, "iface", name, "prefix", prefix)
			continue
		}
		l, ok := byName[name]
		if !ok {
			pending[name] = true
			continue
		}
		a := l.Attrs()
		if !slices.Equal(a.HardwareAddr, hostMAC) {
			if err := d.h.LinkSetHardwareAddr(l, hostMAC); err != nil {
				ec.add(fmt.Errorf("set MAC of %s: %w", name, err))
			} else {
				st.LinksChanged++
			}
			d.linkChangedLocally(name)
		}
		if a.Flags&net.FlagUp == 0 {
			if err := d.h.LinkSetUp(l); err != nil {
				ec.add(fmt.Errorf("set %s up: %w", name, err))
			} else {
				st.LinksChanged++
			}
			d.linkChangedLocally(name)
		}
		want := ifaceConfig{index: a.Index, v6: endpointHasIPv6(ep)}
		if d.configured[name] == want {
			continue
		}
		work = append(work, todo{name: name, cfg: want, s: ifaceSysctls(name, want.v6)})
	}
	if len(work) == 0 {
		return
	}
	// One namespace entry for all new interfaces.
	err := nsexec.Do(d.opts.NetNS, func() error {
		for _, w := range work {
			n, err := nsexec.EnsureHere(w.s)
			st.SysctlsWritten += n
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					// The interface went away after the link dump.
					d.log.Debug("interface vanished while configuring it", "iface", w.name)
					continue
				}
				ec.add(fmt.Errorf("sysctls of %s: %w", w.name, err))
				continue
			}
			d.configured[w.name] = w.cfg
		}
		return nil
	})
	ec.add(err)
}

func endpointHasIPv6(ep dataplane.Endpoint) bool {
	for _, a := range ep.Addrs {
		if a.Addr().Is6() {
			return true
		}
	}
	return false
}

// ifaceSysctls are a workload interface's settings (see doc.go). Keys use
// the slash form so interface names with dots stay intact.
func ifaceSysctls(name string, v6 bool) []nsexec.Sysctl {
	s := []nsexec.Sysctl{
		{Key: "net/ipv4/conf/" + name + "/proxy_arp", Value: "1"},
		{Key: "net/ipv4/neigh/" + name + "/proxy_delay", Value: "0"},
		{Key: "net/ipv4/conf/" + name + "/forwarding", Value: "1"},
		{Key: "net/ipv4/conf/" + name + "/rp_filter", Value: "1"},
		// Even without IPv6 in use, a workload must not be able to
		// configure the host with router advertisements.
		{Key: "net/ipv6/conf/" + name + "/accept_ra", Value: "0", Optional: true},
	}
	if v6 {
		s = append(s,
			nsexec.Sysctl{Key: "net/ipv6/conf/" + name + "/proxy_ndp", Value: "1"},
			nsexec.Sysctl{Key: "net/ipv6/conf/" + name + "/forwarding", Value: "1"},
		)
	}
	return s
}

// dump retries a netlink dump the kernel interrupted (the table changed
// while it was read), so callers never act on a partial view; the policy
// (which errors, how often, how long) is nsexec.RetryValue's.
func dump[T any](f func() (T, error)) (T, error) {
	return nsexec.RetryValue(f)
}

// errCollector keeps the first few errors of an Apply and counts the rest.
type errCollector struct {
	errs  []error
	extra int
}

func (c *errCollector) add(err error) {
	if err == nil {
		return
	}
	if len(c.errs) < 10 {
		c.errs = append(c.errs, err)
		return
	}
	c.extra++
}

func (c *errCollector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	errs := c.errs
	if c.extra > 0 {
		errs = append(slices.Clone(errs), fmt.Errorf("and %d more errors", c.extra))
	}
	return fmt.Errorf("routes: %w", errors.Join(errs...))
}

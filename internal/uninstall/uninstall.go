package uninstall

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane/routes"
	"github.com/calico-docker/calico/internal/nsexec"
)

// TableName is the nftables table the node owns (family inet).
const TableName = "calico"

// PluginSockets are the Docker plugin sockets the node serves.
var PluginSockets = []string{"calico.sock", "calico-ipam.sock"}

// Removed says what a removal found and deleted.
type Removed struct {
	Table   bool     `json:"table"`
	Routes  int      `json:"routes"`
	Links   []string `json:"links,omitempty"`
	Sockets []string `json:"sockets,omitempty"`
}

// Dataplane deletes the node's links, routes and nftables table in the
// network namespace at netnsPath ("" = the current one). Links go first
// (their routes go with them), then the remaining routes with our protocol
// (blackholes, routes learned over BGP), then the table.
func Dataplane(netnsPath string) (Removed, error) {
	var out Removed
	h, err := nsexec.Handle(netnsPath)
	if err != nil {
		return out, err
	}
	defer h.Close()
	var errs []error

	links, err := nsexec.RetryValue(h.LinkList)
	if err != nil {
		return out, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if !strings.HasPrefix(name, routes.DefaultInterfacePrefix) && name != routes.VXLANDevice && name != routes.VXLANDeviceV6 {
			continue
		}
		if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete link %s: %w", name, err))
			continue
		}
		out.Links = append(out.Links, name)
	}

	filter := &netlink.Route{Protocol: routes.DefaultProtocol, Table: unix.RT_TABLE_UNSPEC}
	rs, err := nsexec.RetryValue(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("list routes with protocol %d: %w", routes.DefaultProtocol, err))
	}
	for i := range rs {
		r := rs[i]
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", r.Dst, err))
			continue
		}
		out.Routes++
	}

	removed, err := deleteTable(netnsPath)
	if err != nil {
		errs = append(errs, err)
	}
	out.Table = removed
	return out, errors.Join(errs...)
}

func deleteTable(netnsPath string) (bool, error) {
	var opts []nftables.ConnOption
	if netnsPath != "" {
		f, err := os.Open(netnsPath)
		if err != nil {
			return false, fmt.Errorf("open netns %s: %w", netnsPath, err)
		}
		defer f.Close()
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name != TableName {
			continue
		}
		c.DelTable(t)
		if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			return false, fmt.Errorf("delete table inet %s: %w", TableName, err)
		}
		return true, nil
	}
	return false, nil
}

// Sockets deletes the plugin sockets in dir (e.g. /run/docker/plugins).
// Call it only after the node has stopped: a running node serves them.
func Sockets(dir string) ([]string, error) {
	var out []string
	var errs []error
	for _, s := range PluginSockets {
		p := filepath.Join(dir, s)
		err := os.Remove(p)
		switch {
		case err == nil:
			out = append(out, p)
		case errors.Is(err, os.ErrNotExist):
		default:
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	return out, errors.Join(errs...)
}

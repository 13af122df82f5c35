package routes

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/calico-docker/calico/internal/dataplane"
)

// While WatchLinks is subscribed, Apply does not dump every link of the
// host: it keeps what it last saw of the links it uses (index, MAC, up) and
// asks the kernel by name only for links it has not seen, links the watch
// reported as added, changed or removed since, and interfaces still
// missing. Without a watch (or after the subscription broke, or on the
// Apply after a Resync), Apply dumps all links as before and refills the
// cache. The cost of an Apply then follows the change, not the number of
// interfaces on the host.

// cachedLink is what Apply needs of a link.
type cachedLink struct {
	index int
	flags net.Flags
	mac   net.HardwareAddr
}

// linkCache is guarded by Driver.linkMu: the watch goroutine marks names
// dirty while an Apply may run.
type linkCache struct {
	watching bool            // a subscription is open: dirty marks are complete
	allDirty bool            // the cache cannot be trusted (no full dump since)
	dirty    map[string]bool // names the watch reported since the last Apply
}

func (d *Driver) setWatching(on bool) {
	d.linkMu.Lock()
	d.lc.watching = on
	d.lc.allDirty = true
	d.linkMu.Unlock()
}

func (d *Driver) markLinkDirty(name string) {
	d.linkMu.Lock()
	if d.lc.dirty == nil {
		d.lc.dirty = map[string]bool{}
	}
	d.lc.dirty[name] = true
	d.linkMu.Unlock()
}

// linksFor returns the links Apply needs by name: all of them from a dump,
// or, while the watch keeps the cache honest, only those des uses. It is
// called with applyMu held.
func (d *Driver) linksFor(des *dataplane.Desired, full bool) (map[string]netlink.Link, error) {
	d.linkMu.Lock()
	fast := !full && d.lc.watching && !d.lc.allDirty && d.links != nil
	dirty := d.lc.dirty
	d.lc.dirty = nil
	if !fast {
		d.lc.allDirty = false
	}
	d.linkMu.Unlock()
	if !fast {
		links, err := dump(d.dump.links)
		if err != nil {
			d.links = nil
			return nil, err
		}
		byName := make(map[string]netlink.Link, len(links))
		cache := make(map[string]cachedLink, len(des.Endpoints)+1)
		for _, l := range links {
			a := l.Attrs()
			byName[a.Name] = l
			cache[a.Name] = cachedLink{index: a.Index, flags: a.Flags, mac: a.HardwareAddr}
		}
		d.links = cache
		return byName, nil
	}
	byName := make(map[string]netlink.Link)
	need := func(name string) error {
		if name == "" {
			return nil
		}
		if _, done := byName[name]; done {
			return nil
		}
		if c, ok := d.links[name]; ok && !dirty[name] {
			byName[name] = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name, Index: c.index, Flags: c.flags, HardwareAddr: c.mac}}
			return nil
		}
		l, err := d.h.LinkByName(name)
		var nf netlink.LinkNotFoundError
		switch {
		case errors.As(err, &nf):
			delete(d.links, name)
			return nil
		case err != nil:
			return fmt.Errorf("link %s: %w", name, err)
		}
		a := l.Attrs()
		d.links[name] = cachedLink{index: a.Index, flags: a.Flags, mac: a.HardwareAddr}
		byName[name] = l
		return nil
	}
	for _, ep := range des.Endpoints {
		if err := need(ep.Iface); err != nil {
			return nil, err
		}
	}
	for _, r := range des.Routes {
		switch r.Type {
		case dataplane.RouteLocal:
			if err := need(r.Iface); err != nil {
				return nil, err
			}
		case dataplane.RouteVXLAN:
			iface := r.Iface
			if iface == "" {
				iface = VXLANDevice
			}
			if err := need(iface); err != nil {
				return nil, err
			}
		}
	}
	// The VXLAN devices are asked for every time: applyVXLAN creates and
	// removes them.
	if dirty == nil {
		dirty = map[string]bool{}
	}
	for _, dev := range []string{VXLANDevice, VXLANDeviceV6} {
		dirty[dev] = true
		if err := need(dev); err != nil {
			return nil, err
		}
	}
	// Links the watch reported that des does not use: forget them.
	for name := range dirty {
		if _, used := byName[name]; !used {
			delete(d.links, name)
		}
	}
	return byName, nil
}

// linkChangedLocally records a change Apply itself made to a link (MAC,
// up), so the cache stays what the kernel has.
func (d *Driver) linkChangedLocally(name string) {
	if d.links != nil {
		delete(d.links, name)
	}
	d.markLinkDirty(name)
}

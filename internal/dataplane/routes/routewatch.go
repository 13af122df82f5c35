package routes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/nsexec"
)

// WatchRoutes reports, as soon as the kernel announces it, that a route we
// own and still want was deleted by someone else (`ip route del`, `ip route
// flush proto 80`, a network manager): without it the workload behind it
// is unreachable, and the incremental Apply trusts its memory, so only the
// periodic Resync would have found the gap. On such a deletion the driver
// forgets what it programmed, so the next Apply reads the kernel's routes
// and puts the route back; the caller is told to Apply now.
//
// Deletions of routes no longer desired are our own Apply's (or follow an
// interface going away) and are ignored, so our own churn costs no extra
// kernel read. Only the fixed header and the destination of route
// deletions with our protocol are decoded. If events were lost (the socket
// overflowed) one of them may have been such a deletion, so that is reported
// too. The channel closes when ctx ends or the subscription fails (the
// periodic Resync still repairs then).
func (d *Driver) WatchRoutes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	s, err := d.subscribeRoutes()
	if err != nil {
		d.log.Warn("watch routes: no subscription; the periodic resync repairs a deleted route", "err", err)
		close(out)
		return out
	}
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	go func() {
		defer close(out)
		var w wantedDsts
		for {
			msgs, from, err := s.Receive()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, unix.ENOBUFS) {
					d.routesDrifted(out, "route events were lost")
					continue
				}
				d.log.Warn("watch routes ended; the periodic resync repairs a deleted route", "err", err)
				return
			}
			if from.Pid != nl.PidKernel {
				continue
			}
			for _, m := range msgs {
				if m.Header.Type != unix.RTM_DELROUTE {
					continue
				}
				dst, ok := d.ourDeletedDst(m.Data)
				if !ok {
					continue
				}
				if w.has(d, dst) {
					d.routesDrifted(out, "a route of ours was deleted by someone: programming it again now", "dst", dst)
				}
			}
		}
	}()
	return out
}

func (d *Driver) subscribeRoutes() (*nl.NetlinkSocket, error) {
	var s *nl.NetlinkSocket
	// The socket is opened in the target namespace by switching the calling
	// thread briefly: do that on a guarded thread.
	err := nsexec.Guard(func() error {
		ns := netns.None()
		if d.opts.NetNS != "" {
			h, err := netns.GetFromPath(d.opts.NetNS)
			if err != nil {
				return fmt.Errorf("open netns %s: %w", d.opts.NetNS, err)
			}
			defer h.Close()
			ns = h
		}
		var err error
		s, err = nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE)
		return err
	})
	return s, err
}

// ourDeletedDst is the destination of a route deletion message if the
// route was one of ours: our protocol, the main table.
func (d *Driver) ourDeletedDst(data []byte) (netip.Prefix, bool) {
	if len(data) < unix.SizeofRtMsg {
		return netip.Prefix{}, false
	}
	rtm := nl.DeserializeRtMsg(data)
	if rtm.Protocol != uint8(d.proto) || rtm.Flags&unix.RTM_F_CLONED != 0 {
		return netip.Prefix{}, false
	}
	table := int(rtm.Table)
	var addr netip.Addr
	walkAttrs(data[unix.SizeofRtMsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.RTA_DST:
			addr, _ = netip.AddrFromSlice(v)
		case unix.RTA_TABLE:
			if len(v) >= 4 {
				table = int(binary.NativeEndian.Uint32(v))
			}
		}
	})
	if table != unix.RT_TABLE_MAIN {
		return netip.Prefix{}, false
	}
	if !addr.IsValid() {
		// A default route has no destination attribute.
		switch rtm.Family {
		case unix.AF_INET:
			addr = netip.IPv4Unspecified()
		case unix.AF_INET6:
			addr = netip.IPv6Unspecified()
		default:
			return netip.Prefix{}, false
		}
	}
	p, err := addr.Unmap().Prefix(int(rtm.Dst_len))
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}

// routesDrifted makes the next Apply read the kernel's routes and asks the
// caller for one.
func (d *Driver) routesDrifted(out chan struct{}, msg string, args ...any) {
	d.stale.Store(true)
	d.log.Warn(msg, append(args, "netns", nsLabel(d.opts.NetNS))...)
	select {
	case out <- struct{}{}:
	default:
	}
}

func nsLabel(path string) string {
	if path == "" {
		return "current"
	}
	return path
}

// wantedDsts is the set of destinations of the desired routes, rebuilt
// only when a deletion arrives after the desired state changed.
type wantedDsts struct {
	of  any // the desired state the set was built from
	set map[netip.Prefix]bool
}

func (w *wantedDsts) has(d *Driver, dst netip.Prefix) bool {
	d.mu.Lock()
	des := d.desired
	d.mu.Unlock()
	if des == nil {
		return false
	}
	if w.of != any(des) {
		w.of = des
		w.set = make(map[netip.Prefix]bool, len(des.Routes))
		for _, r := range des.Routes {
			if r.Dst.IsValid() {
				w.set[r.Dst.Masked()] = true
			}
		}
	}
	return w.set[dst]
}

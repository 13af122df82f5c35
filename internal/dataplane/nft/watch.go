package nft

import (
	"context"
	"errors"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"
)

// WatchTable reports, as soon as the kernel announces it, that our table
// was deleted by someone (`nft delete table inet calico`, `nft flush
// ruleset`, a firewall manager starting): while it is gone nothing of our
// policy is programmed, so the caller resyncs at once instead of at the
// next periodic resync. It subscribes to the nftables multicast group and
// reads only message headers and the table name of table deletions, so our
// own large applies cost it little. The channel closes when ctx ends or the
// subscription fails (the periodic resync still repairs then).
func (d *Driver) WatchTable(ctx context.Context) <-chan struct{} {
	delTable := netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELTABLE)
	return d.watch(ctx, unix.NETLINK_NETFILTER, []uint32{unix.NFNLGRP_NFTABLES}, watchLogs{
		noSub: "watch nftables: no subscription; the periodic resync repairs a deleted table",
		ended: "watch nftables ended; the periodic resync repairs a deleted table",
		// One of the lost events may have been the deletion: ask the
		// kernel whether the table is there (one small request), where a
		// resync reads every set element of the table (tens of MB of
		// garbage at 10,000 endpoints).
		lost: func() bool {
			d.overflows.Add(1)
			return d.tableMissing()
		},
	}, func(m netlink.Message) bool {
		if m.Header.Type != delTable || len(m.Data) < 4 || m.Data[0] != unix.NFPROTO_INET {
			return false
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return false
		}
		for ad.Next() {
			if ad.Type() == unix.NFTA_TABLE_NAME && nlenc.String(ad.Bytes()) == tableName {
				d.log.Warn("our nftables table was deleted by someone; programming it again now", "netns", d.nsName())
				return true
			}
		}
		return false
	})
}

// watchLogs are a watch's warnings (no subscription, and the end of one)
// and what lost events mean: lost, when set, says whether to report them
// (nil: always).
type watchLogs struct {
	noSub, ended string
	lost         func() bool
}

// watch subscribes to multicast groups of a netlink protocol in the
// driver's namespace and reports on the returned channel (coalesced) every
// message for which report is true, and lost events (ENOBUFS: a burst, e.g.
// our own large apply, may have hidden one). The channel closes when ctx
// ends or the subscription fails.
func (d *Driver) watch(ctx context.Context, proto int, groups []uint32, logs watchLogs, report func(netlink.Message) bool) <-chan struct{} {
	out := make(chan struct{}, 1)
	c, err := netlink.Dial(proto, &netlink.Config{NetNS: d.nsFd()})
	if err == nil {
		for _, g := range groups {
			if err = c.JoinGroup(g); err != nil {
				c.Close()
				break
			}
		}
	}
	if err != nil {
		d.log.Warn(logs.noSub, "err", err)
		close(out)
		return out
	}
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	go func() {
		defer close(out)
		for {
			msgs, err := c.Receive()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, unix.ENOBUFS) {
					// Events were lost (a burst: our own large apply
					// overflows the socket every time), and one of them
					// may have been the one we watch for.
					if logs.lost == nil || logs.lost() {
						d.signal(out)
					}
					continue
				}
				d.log.Warn(logs.ended, "err", err)
				return
			}
			for _, m := range msgs {
				if report(m) {
					d.signal(out)
				}
			}
		}
	}()
	return out
}

// tableMissing reports whether our table is not in the kernel; a failed
// check counts as missing (a resync is then the safe answer).
func (d *Driver) tableMissing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lib == nil {
		return true
	}
	_, err := d.lib.ListTableOfFamily(tableName, nftables.TableFamilyINet)
	return err != nil
}

func (d *Driver) signal(out chan struct{}) {
	select {
	case out <- struct{}{}:
	default:
	}
}

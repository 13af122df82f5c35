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
	out := make(chan struct{}, 1)
	fail := func(err error) <-chan struct{} {
		d.log.Warn("watch nftables: no subscription; the periodic resync repairs a deleted table", "err", err)
		close(out)
		return out
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: d.nsFd()})
	if err != nil {
		return fail(err)
	}
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		c.Close()
		return fail(err)
	}
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	go func() {
		defer close(out)
		delTable := netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELTABLE)
		for {
			msgs, err := c.Receive()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, unix.ENOBUFS) {
					// Events were lost (a burst: our own large apply
					// overflows the socket every time). One of them may
					// have been the deletion, so ask the kernel whether
					// the table is there: one small request, where a
					// resync reads every set element of the table (tens
					// of MB of garbage at 10,000 endpoints).
					d.overflows.Add(1)
					if d.tableMissing() {
						d.signal(out)
					}
					continue
				}
				d.log.Warn("watch nftables ended; the periodic resync repairs a deleted table", "err", err)
				return
			}
			for _, m := range msgs {
				if m.Header.Type != delTable || len(m.Data) < 4 || m.Data[0] != unix.NFPROTO_INET {
					continue
				}
				ad, err := netlink.NewAttributeDecoder(m.Data[4:])
				if err != nil {
					continue
				}
				for ad.Next() {
					if ad.Type() == unix.NFTA_TABLE_NAME && nlenc.String(ad.Bytes()) == tableName {
						d.log.Warn("our nftables table was deleted by someone; programming it again now", "netns", d.nsName())
						d.signal(out)
					}
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

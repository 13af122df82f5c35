package routes

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/nsexec"
)

// linkState is what of a link matters to Apply: a change in any of these
// needs a re-apply (a new index means routes and sysctls are gone).
type linkState struct {
	index int
	up    bool
	mac   string
}

// WatchLinks reports, by name, workload interfaces (the interface prefix)
// and vxlan.calico when they appear or change index, admin state or MAC, so
// the caller re-applies when an endpoint's interface shows up rather than on
// a timer. Names are coalesced while the reader is busy; the channel is
// closed when ctx is done. If the subscription breaks (e.g. the socket
// overflowed), it is re-opened and every existing link re-examined; links
// that changed meanwhile are reported then.
func (d *Driver) WatchLinks(ctx context.Context) <-chan string {
	out := make(chan string, 16)
	go d.watchLinks(ctx, out)
	return out
}

func (d *Driver) watchLinks(ctx context.Context, out chan<- string) {
	defer close(out)
	known := map[string]linkState{}
	var queue []string
	queued := map[string]bool{}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		updates := make(chan netlink.LinkUpdate, 256)
		done := make(chan struct{})
		failed := make(chan error, 1)
		err := d.subscribe(updates, done, func(err error) {
			select {
			case failed <- err:
			default:
			}
		})
		if err != nil {
			d.setWatching(false)
			d.log.Warn("link subscription failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		d.setWatching(true) // from now on every change of a link is marked
		open := true
		for open {
			var send chan<- string
			var next string
			if len(queue) > 0 {
				send, next = out, queue[0]
			}
			select {
			case <-ctx.Done():
				d.setWatching(false)
				close(done)
				drain(updates)
				return
			case err := <-failed:
				d.log.Warn("link subscription error; re-subscribing", "err", err)
				open = false
			case u, ok := <-updates:
				if !ok {
					open = false
					break
				}
				if name, changed := d.linkChanged(known, u); changed && !queued[name] {
					queued[name] = true
					queue = append(queue, name)
				}
			case send <- next:
				delete(queued, next)
				queue = queue[1:]
			}
		}
		d.setWatching(false)
		close(done)
		drain(updates)
	}
}

// drain consumes updates until the subscription's reader closes the channel,
// so that reader never blocks on a send after we stop listening.
func drain(ch <-chan netlink.LinkUpdate) {
	go func() {
		for range ch {
		}
	}()
}

func (d *Driver) subscribe(ch chan netlink.LinkUpdate, done chan struct{}, onErr func(error)) error {
	// The subscription socket is opened in the target namespace by switching
	// the calling thread briefly: do that on a guarded thread.
	return nsexec.Guard(func() error {
		opts := netlink.LinkSubscribeOptions{ErrorCallback: onErr, ListExisting: true}
		if d.opts.NetNS != "" {
			ns, err := netns.GetFromPath(d.opts.NetNS)
			if err != nil {
				return fmt.Errorf("open netns %s: %w", d.opts.NetNS, err)
			}
			defer ns.Close()
			opts.Namespace = &ns
		}
		return netlink.LinkSubscribeWithOptions(ch, done, opts)
	})
}

// linkChanged records u in known and says whether it is a watched link that
// appeared or changed.
func (d *Driver) linkChanged(known map[string]linkState, u netlink.LinkUpdate) (string, bool) {
	a := u.Link.Attrs()
	name := a.Name
	if !strings.HasPrefix(name, d.prefix()) && !isVXLANDevice(name) {
		return name, false
	}
	d.markLinkDirty(name)
	if u.Header.Type == unix.RTM_DELLINK {
		delete(known, name)
		return name, false
	}
	s := linkState{index: a.Index, up: a.Flags&net.FlagUp != 0, mac: a.HardwareAddr.String()}
	old, seen := known[name]
	known[name] = s
	return name, !seen || old != s
}

func (d *Driver) prefix() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.desired != nil && d.desired.Host.InterfacePrefix != "" {
		return d.desired.Host.InterfacePrefix
	}
	return d.opts.InterfacePrefix
}

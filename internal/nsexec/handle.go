package nsexec

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Handle opens a netlink handle in the namespace at path ("" = the current
// one). netlink.NewHandleAt switches the calling thread briefly, so it runs
// under Guard: a thread that fails to switch back is discarded.
func Handle(path string) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := Guard(func() error {
		var err error
		if path == "" {
			h, err = netlink.NewHandle()
			return err
		}
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", path, err)
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns)
		return err
	})
	if err != nil {
		if h != nil {
			h.Close()
		}
		return nil, fmt.Errorf("netlink handle for netns %q: %w", path, err)
	}
	return h, nil
}

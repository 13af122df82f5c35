package agent

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/nftables"
)

// CheckHost verifies that this host's kernel has what the node needs:
// nftables over netlink, IPv4 forwarding control, and /proc/sys writable.
func CheckHost() error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("must run as root"))
	}
	conn, err := nftables.New()
	if err == nil {
		_, err = conn.ListTablesOfFamily(nftables.TableFamilyINet)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("nftables is not usable: %w", err))
	}
	for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot write %s: %w", p, err))
			continue
		}
		f.Close()
	}
	return errors.Join(errs...)
}

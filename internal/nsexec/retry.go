package nsexec

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// retryBackoff is the pause before each retry of a transient netlink failure:
// bounded in count and in total (about 85 ms), so a caller that keeps failing
// reports the error promptly instead of hiding a stuck kernel behind retries.
var retryBackoff = []time.Duration{time.Millisecond, 4 * time.Millisecond, 16 * time.Millisecond, 64 * time.Millisecond}

// sleep is replaced by tests of the retry policy.
var sleep = time.Sleep

// Transient reports whether a netlink error is worth retrying as it is: the
// kernel interrupted a dump because the table changed while it was read
// (the result is partial and must not be used), a call was interrupted by a
// signal (EINTR), or a resource was momentarily busy (EBUSY, e.g. a link
// being changed by another writer).
func Transient(err error) bool {
	return errors.Is(err, netlink.ErrDumpInterrupted) ||
		errors.Is(err, syscall.EINTR) ||
		errors.Is(err, syscall.EBUSY)
}

// Retry runs op again while it fails with a Transient error, up to
// 1+len(retryBackoff) attempts. A permanent error is returned at once; after
// the last attempt the error says how often it was tried and wraps the
// kernel's error.
func Retry(op func() error) error {
	_, err := RetryValue(func() (struct{}, error) { return struct{}{}, op() })
	return err
}

// RetryValue is Retry for netlink calls that return a value, typically dumps
// (LinkList, AddrList, RouteListFiltered). Only a complete result is ever
// returned: on failure the value is the zero value, never a partial dump.
func RetryValue[T any](op func() (T, error)) (T, error) {
	var zero T
	for i := 0; ; i++ {
		v, err := op()
		if err == nil {
			return v, nil
		}
		if !Transient(err) {
			return zero, err
		}
		if i == len(retryBackoff) {
			return zero, fmt.Errorf("netlink: still failing after %d attempts: %w", i+1, err)
		}
		sleep(retryBackoff[i])
	}
}

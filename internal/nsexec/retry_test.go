package nsexec

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// noSleep records the pauses instead of taking them.
func noSleep(t *testing.T) *[]time.Duration {
	t.Helper()
	var got []time.Duration
	old := sleep
	sleep = func(d time.Duration) { got = append(got, d) }
	t.Cleanup(func() { sleep = old })
	return &got
}

func TestRetryTransientThenSuccess(t *testing.T) {
	for _, transient := range []error{
		netlink.ErrDumpInterrupted,
		syscall.EINTR,
		fmt.Errorf("link set up: %w", syscall.EBUSY),
	} {
		pauses := noSleep(t)
		calls := 0
		v, err := RetryValue(func() (int, error) {
			calls++
			if calls < 3 {
				return 7, transient // a partial result that must not leak out
			}
			return 42, nil
		})
		if err != nil || v != 42 || calls != 3 {
			t.Fatalf("%v: got v=%d err=%v after %d calls, want 42, nil, 3", transient, v, err, calls)
		}
		if len(*pauses) != 2 || (*pauses)[0] >= (*pauses)[1] {
			t.Fatalf("%v: pauses %v, want two growing ones", transient, *pauses)
		}
	}
}

func TestRetryPermanentErrorAtOnce(t *testing.T) {
	noSleep(t)
	calls := 0
	err := Retry(func() error { calls++; return syscall.EPERM })
	if !errors.Is(err, syscall.EPERM) || calls != 1 {
		t.Fatalf("got %v after %d calls, want EPERM after 1", err, calls)
	}
}

func TestRetryGivesUpBounded(t *testing.T) {
	pauses := noSleep(t)
	calls := 0
	v, err := RetryValue(func() ([]string, error) {
		calls++
		return []string{"partial"}, netlink.ErrDumpInterrupted
	})
	if calls != len(retryBackoff)+1 {
		t.Fatalf("%d calls, want %d", calls, len(retryBackoff)+1)
	}
	if v != nil {
		t.Fatalf("a partial dump was returned: %v", v)
	}
	if !errors.Is(err, netlink.ErrDumpInterrupted) {
		t.Fatalf("error %v does not wrap the kernel's", err)
	}
	var total time.Duration
	for _, p := range *pauses {
		total += p
	}
	if total > 100*time.Millisecond {
		t.Fatalf("backoff totals %v, want a bounded wait", total)
	}
}

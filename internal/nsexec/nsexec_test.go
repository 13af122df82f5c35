package nsexec

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/calico-docker/calico/internal/testutil"
)

// Keep the main goroutine on the main thread for the whole test binary, so
// no test goroutine ever runs there. A goroutine that exits while locked is
// destroyed with its thread, except on the main thread, which the runtime can
// only wedge (never reused, but still present in /proc/self/task). The Guard
// test checks that a discarded thread disappears; this keeps that check exact.
func init() { runtime.LockOSThread() }

// threadNamespaces returns the distinct network namespaces of this process's threads.
func threadNamespaces(t *testing.T) map[string]bool {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range tasks {
		l, err := os.Readlink(p)
		if err != nil {
			continue // the thread exited meanwhile
		}
		out[l] = true
	}
	return out
}

func TestDoWritesInTargetNamespaceOnly(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t, "nsx")
	before := threadNamespaces(t)
	// A new namespace inherits IPv4 forwarding from the initial one: clear it.
	ns.MustExec(t, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")

	n, err := Ensure(ns.Path(), []Sysctl{
		{Key: "net.ipv4.ip_forward", Value: "1"},
		{Key: "net/ipv4/conf/lo/forwarding", Value: "1"},
		{Key: "net/ipv6/conf/nosuch/accept_ra", Value: "0", Optional: true},
	})
	if err != nil || n != 1 { // lo's forwarding follows ip_forward
		t.Fatalf("ensure: %d %v", n, err)
	}
	if got := strings.TrimSpace(ns.MustExec(t, "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Fatalf("ip_forward in netns = %s", got)
	}
	// Idempotent.
	if n, err := Ensure(ns.Path(), []Sysctl{{Key: "net.ipv4.ip_forward", Value: "1"}}); n != 0 || err != nil {
		t.Fatalf("second ensure: %d %v", n, err)
	}
	vals, err := Read(ns.Path(), "net/ipv4/ip_forward")
	if err != nil || vals[0] != "1" {
		t.Fatalf("read: %v %v", vals, err)
	}
	// A missing non-optional key is an error naming it.
	if _, err := Ensure(ns.Path(), []Sysctl{{Key: "net/ipv4/conf/nosuch/proxy_arp", Value: "1"}}); err == nil ||
		!strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("missing key: %v", err)
	}

	// Many concurrent entries leave no thread of this process elsewhere.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Read(ns.Path(), "net/ipv4/ip_forward"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	after := threadNamespaces(t)
	for n := range after {
		if !before[n] {
			t.Fatalf("a thread of this process is in %s after Do (before: %v)", n, before)
		}
	}
}

func TestDoPropagatesErrorsAndRejectsBadPaths(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t, "nsx")
	boom := errors.New("boom")
	if err := Do(ns.Path(), func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("error not propagated: %v", err)
	}
	if err := Do("/nonexistent/netns", func() error { return nil }); err == nil {
		t.Fatal("bad path accepted")
	}
	// Inside Do the thread really is in the target namespace.
	target, err := netns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	err = Do(ns.Path(), func() error {
		cur, err := netns.Get()
		if err != nil {
			return err
		}
		defer cur.Close()
		if !cur.Equal(target) {
			return errors.New("not in target netns")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGuardDiscardsAThreadLeftElsewhere(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t, "nsx")
	before := threadNamespaces(t)
	// A careless call that switches and never returns.
	err := Guard(func() error {
		h, err := netns.GetFromPath(ns.Path())
		if err != nil {
			return err
		}
		defer h.Close()
		return netns.Set(h)
	})
	if err == nil || !strings.Contains(err.Error(), "discarded") {
		t.Fatalf("guard did not notice: %v", err)
	}
	// The thread is gone, not parked in the scheduler: poll until the
	// runtime has destroyed it.
	testutil.Eventually(t, 5*time.Second, func() error {
		for n := range threadNamespaces(t) {
			if !before[n] {
				return errors.New("a thread still sits in " + n)
			}
		}
		return nil
	})
	// A well-behaved call passes.
	if err := Guard(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}

package agenttest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Faults a driver returns, shaped like the kernel's.
var (
	// ErrBusy is a netlink call refused with EBUSY.
	ErrBusy = fmt.Errorf("netlink: route replace: %w", syscall.EBUSY)
	// ErrInterrupted is a netlink call interrupted by a signal.
	ErrInterrupted = fmt.Errorf("netlink: link list: %w", syscall.EINTR)
	// ErrTxnRefused is an nftables transaction the kernel refused as a whole.
	ErrTxnRefused = fmt.Errorf("nftables: transaction refused: %w", syscall.EPERM)
)

// Driver is the part both fake drivers share: it keeps the desired state,
// "programs" it on Apply (Applied returns it) unless a fault is set, and
// counts calls.
type Driver struct {
	mu       sync.Mutex
	desired  *dataplane.Desired
	applied  *dataplane.Desired
	fail     error
	failN    int // with fail: fail this many more calls, then clear (-1: until cleared)
	applies  int
	failures int
	resyncs  int
}

// FailWith makes every later Apply and Resync fail with err, until
// FailWith(nil).
func (d *Driver) FailWith(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail, d.failN = err, -1
}

// FailNext makes the next n Apply or Resync calls fail with err.
func (d *Driver) FailNext(n int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail, d.failN = err, n
}

// fault returns the error this call fails with, nil for none.
func (d *Driver) fault() error {
	if d.fail == nil || d.failN == 0 {
		return nil
	}
	if d.failN > 0 {
		d.failN--
	}
	err := d.fail
	if d.failN == 0 {
		d.fail = nil
	}
	d.failures++
	return err
}

// SetDesired records the state the next Apply programs.
func (d *Driver) SetDesired(want *dataplane.Desired) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.desired = want
}

// Apply programs the desired state, or fails with the fault set.
func (d *Driver) Apply(ctx context.Context) error { return d.program(ctx, &d.applies) }

// Resync counts the call and, unless a fault is set, programs the desired
// state as Apply does.
func (d *Driver) Resync(ctx context.Context) error { return d.program(ctx, &d.resyncs) }

// program counts the call in *calls and programs the desired state unless
// a fault is set.
func (d *Driver) program(ctx context.Context, calls *int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	*calls++
	if err := d.fault(); err != nil {
		return err
	}
	if d.desired == nil {
		return errors.New("apply before SetDesired")
	}
	d.applied = d.desired
	return nil
}

// Applied is the state last programmed successfully (nil before the first).
func (d *Driver) Applied() *dataplane.Desired {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applied
}

// Counts reports the Apply calls (failed ones included), the calls that
// failed by a fault, and the Resync calls.
func (d *Driver) Counts() (applies, failures, resyncs int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applies, d.failures, d.resyncs
}

// NFT is a fake nftables driver (agent.NFTDriver).
type NFT struct{ Driver }

// Routes is a fake routes driver (agent.RoutesDriver) on a host whose
// network the test describes.
type Routes struct {
	Driver
	// Host is what the host-facing reads answer; set it before the agent runs.
	Host Host
	// Links delivers workload link events to the agent (buffered).
	Links chan string
}

// Host is the fake host's network as the routes driver would read it.
type Host struct {
	IPv4    netip.Prefix
	MTU     int
	Learned []dataplane.Route // BGP routes a previous agent left behind
	Routes  []netip.Prefix    // the host's own routes
	// Forwarding is what ForwardingProblem reports ("" = forwarding on).
	Forwarding string
}

// NewRoutes returns a fake routes driver for a host with address ipv4.
func NewRoutes(ipv4 netip.Prefix) *Routes {
	return &Routes{Host: Host{IPv4: ipv4, MTU: 1500}, Links: make(chan string, 16)}
}

// LinkEvents delivers what the test sends on Links until ctx ends, then
// closes, as the real driver's link watch does.
func (r *Routes) LinkEvents(ctx context.Context) <-chan string {
	out := make(chan string)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case name := <-r.Links:
				select {
				case out <- name:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// HostIPv4 is Host.IPv4, or an error when it is not set.
func (r *Routes) HostIPv4() (netip.Prefix, error) {
	if !r.Host.IPv4.IsValid() {
		return netip.Prefix{}, errors.New("autodetect IPv4: no default route with a global address; set --ip")
	}
	return r.Host.IPv4, nil
}

// HostMTU is Host.MTU for the host's address, 0 for any other.
func (r *Routes) HostMTU(addr netip.Addr) int {
	if addr == r.Host.IPv4.Addr() {
		return r.Host.MTU
	}
	return 0
}

// LearnedRoutes is Host.Learned.
func (r *Routes) LearnedRoutes() ([]dataplane.Route, error) { return r.Host.Learned, nil }

// HostRoutes is Host.Routes.
func (r *Routes) HostRoutes() ([]netip.Prefix, error) { return r.Host.Routes, nil }

// ForwardingProblem is Host.Forwarding.
func (r *Routes) ForwardingProblem(bool) string { return r.Host.Forwarding }

// Package nsexec is the one place the code enters network namespaces and
// retries netlink: it runs short pieces of work inside another network
// namespace without ever leaving a long-lived goroutine's OS thread in the
// wrong namespace, reads and writes /proc/sys values there, opens netlink
// handles in a namespace, and retries netlink calls that failed transiently
// (Retry, RetryValue: dump interrupted, EINTR, EBUSY, with a short bounded
// backoff) so no caller acts on a partial dump or gives up on a busy kernel.
//
// Why a thread is needed at all: netlink work can target a namespace through a
// handle (netlink.NewHandleAt) and needs no switching, but /proc/sys/net shows
// the values of the namespace of the thread that opens the file, and there is
// no /proc/<pid>/sys. So sysctls of another namespace are read and written from
// a thread that has joined it.
//
// Invariants (why this is safe in a Go program):
//   - Work runs in a fresh goroutine that locks its OS thread first, so no other
//     goroutine can be scheduled on that thread while it is in the target
//     namespace, and the caller's goroutine never changes namespace.
//   - After the work the thread is moved back to the namespace it started in and
//     checked; only then is it unlocked and returned to the scheduler. If
//     moving back fails, or the thread is not where it started, the goroutine
//     exits still locked and the Go runtime destroys that thread instead of
//     reusing it. (If that thread happens to be the process's main thread, the
//     runtime cannot destroy it and wedges it instead: it still never runs
//     another goroutine, but /proc/self/ns/net, which follows the main thread,
//     would then name the other namespace; so callers resolve namespaces per
//     thread, as netns.Get does, never through /proc/self.)
//   - The Go runtime starts new threads from a clean template thread when the
//     creating thread is locked, so a thread that is inside another namespace
//     never passes that namespace on.
//   - Work passed in must not start goroutines that expect to be in the target
//     namespace: only the locked thread is there.
//
// Guard applies the same check to library calls (such as netlink.NewHandleAt
// or netlink.LinkSubscribeWithOptions) that switch the calling thread briefly
// and restore it without checking.
package nsexec

package nsexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Do runs fn on a locked OS thread inside the network namespace at nsPath
// (a bind-mounted netns file such as /run/netns/x, or /proc/<pid>/ns/net).
// With nsPath "" fn runs on the caller's goroutine, in the current namespace.
func Do(nsPath string, fn func() error) error {
	if nsPath == "" {
		return fn()
	}
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			// The thread has not moved: it is safe to give back.
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("read current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			// setns failed, so the thread is still where it was.
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the goroutine ends and the runtime drops the thread.
			errc <- errors.Join(ferr, fmt.Errorf("return from netns %s (thread discarded): %w", nsPath, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Guard runs fn on a fresh locked OS thread and gives the thread back to the
// scheduler only if it ends in the namespace it started in. Use it around
// library calls that switch the calling thread's namespace themselves.
func Guard(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		before, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("read current netns: %w", err)
			return
		}
		defer before.Close()
		ferr := fn()
		after, err := netns.Get()
		if err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("read netns after call (thread discarded): %w", err))
			return
		}
		defer after.Close()
		if !after.Equal(before) {
			errc <- errors.Join(ferr, errors.New("call left its thread in another netns (thread discarded)"))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Sysctl is one /proc/sys value. Key is the path below /proc/sys with dots or
// slashes ("net.ipv4.ip_forward" or "net/ipv4/ip_forward"); interface names
// that contain dots must use the slash form.
type Sysctl struct {
	Key   string
	Value string
	// Optional settings are skipped when the file does not exist (IPv6
	// disabled, interface gone).
	Optional bool
}

func sysctlPath(key string) string {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", key)
}

// ReadSysctl returns the trimmed value of one sysctl in the current namespace.
func ReadSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(key, value string) error {
	f, err := os.OpenFile(sysctlPath(key), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	return errors.Join(werr, cerr)
}

// Ensure sets each sysctl in the namespace at nsPath ("" = current) whose
// value differs, and returns how many it wrote. All settings are tried; the
// errors of those that failed are joined.
func Ensure(nsPath string, settings []Sysctl) (written int, err error) {
	if len(settings) == 0 {
		return 0, nil
	}
	err = Do(nsPath, func() error {
		var err error
		written, err = EnsureHere(settings)
		return err
	})
	return written, err
}

// EnsureHere is Ensure in the namespace of the calling thread; use it inside
// Do to batch several groups of settings in one namespace entry.
func EnsureHere(settings []Sysctl) (written int, err error) {
	var errs []error
	for _, s := range settings {
		cur, rerr := ReadSysctl(s.Key)
		if rerr != nil {
			if s.Optional && errors.Is(rerr, os.ErrNotExist) {
				continue
			}
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", s.Key, rerr))
			continue
		}
		if cur == s.Value {
			continue
		}
		if werr := writeSysctl(s.Key, s.Value); werr != nil {
			if s.Optional && errors.Is(werr, os.ErrNotExist) {
				continue
			}
			errs = append(errs, fmt.Errorf("write sysctl %s=%s: %w", s.Key, s.Value, werr))
			continue
		}
		written++
	}
	return written, errors.Join(errs...)
}

// Read returns the values of keys in the namespace at nsPath ("" = current).
func Read(nsPath string, keys ...string) ([]string, error) {
	out := make([]string, len(keys))
	err := Do(nsPath, func() error {
		for i, k := range keys {
			v, err := ReadSysctl(k)
			if err != nil {
				return fmt.Errorf("read sysctl %s: %w", k, err)
			}
			out[i] = v
		}
		return nil
	})
	return out, err
}

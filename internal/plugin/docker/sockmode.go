package docker

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// NoSocketGroup means the plugin sockets get no group access (mode 0600).
const NoSocketGroup = -1

// DockerSocketGroup is the gid of the host's "docker" group, or
// NoSocketGroup when it has none (or /etc/group cannot be read, as in the
// FROM-scratch node image: `calico node start` looks the group up on the
// host and passes it in).
func DockerSocketGroup() int {
	g, err := user.LookupGroup("docker")
	if err != nil {
		return NoSocketGroup
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return NoSocketGroup
	}
	return gid
}

// socketMode is the mode of a plugin socket: 0660 with a group, else 0600.
func socketMode(gid int) os.FileMode {
	if gid >= 0 {
		return 0o660
	}
	return 0o600
}

// listenPrivate creates the unix socket path with owner root, group gid
// (NoSocketGroup: the process's) and socketMode(gid), whatever the umask:
// the socket is made inside a fresh 0700 directory next to path, given
// its owner and mode there, and renamed into place, so it is never
// reachable with looser permissions, not even for a moment.
func listenPrivate(path string, gid int) (*net.UnixListener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".calico-sock-")
	if err != nil {
		return nil, fmt.Errorf("private directory for %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, filepath.Base(path))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		_ = ln.Close()
		return nil, err
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("give %s to group %d: %w", path, gid, err))
		}
	}
	if err := os.Chmod(tmp, socketMode(gid)); err != nil {
		return fail(fmt.Errorf("chmod %s: %w", path, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("move socket into place at %s: %w", path, err))
	}
	return ln, nil
}

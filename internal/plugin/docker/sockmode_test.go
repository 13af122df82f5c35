package docker

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The plugin sockets are 0660 with a group (0600 without) under any umask,
// and nothing is left behind next to them.
func TestSocketModeIgnoresUmask(t *testing.T) {
	groups := []int{NoSocketGroup}
	if os.Geteuid() == 0 {
		groups = append(groups, 65534) // chown to a group we are not in needs root (CAP_CHOWN)
	} else {
		t.Log("not root: only the no-group case is tested")
	}
	for _, umask := range []int{0, 0o077, 0o022} {
		for _, gid := range groups {
			dir := t.TempDir()
			path := filepath.Join(dir, "calico.sock")
			old := syscall.Umask(umask)
			so, err := listenSocket(path, gid)
			syscall.Umask(old)
			if err != nil {
				t.Fatalf("umask %o gid %d: %v", umask, gid, err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("%s is not a socket: %v", path, fi.Mode())
			}
			want := os.FileMode(0o600)
			if gid >= 0 {
				want = 0o660
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("umask %o gid %d: mode %o, want %o", umask, gid, got, want)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != uint32(os.Geteuid()) || (gid >= 0 && st.Gid != uint32(gid)) {
				t.Errorf("umask %o gid %d: owner %d:%d", umask, gid, st.Uid, st.Gid)
			}
			if so.ino != st.Ino {
				t.Errorf("socket identity %d, file %d", so.ino, st.Ino)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("left behind next to the socket: %v", ents)
			}
			so.close()
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket not removed on close: %v", err)
			}
		}
	}
}

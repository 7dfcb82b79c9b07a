//go:build linux

package exporter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imagefs/imagefs/pkg/fsinfo"
)

// HostRoot is an fsinfo.System that resolves every path inside root, the
// host's "/" mounted into imagefs's container (node_exporter's
// --path.rootfs): stat, statfs and existence of /var/lib/kubelet are those
// of root/var/lib/kubelet. Paths are resolved with openat2(RESOLVE_IN_ROOT),
// so an absolute symlink on the host (/var/lib/kubelet -> /data/kubelet)
// stays inside root as it would on the host; without openat2 (kernels
// before 5.6, or a seccomp profile that denies it) the paths are joined.
//
// Without it a container sees its own "/" (an overlay on the runtime's
// disk) where the host's mount table says "/": nodefs would be reported
// with the image disk's numbers on a node with a dedicated image disk.
type HostRoot struct {
	root   string
	rootFd int
}

var _ fsinfo.System = (*HostRoot)(nil)

// NewHostRoot opens root (a directory) for resolving paths in it.
func NewHostRoot(root string) (*HostRoot, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("host root %s: %w", root, err)
	}
	return &HostRoot{root: root, rootFd: fd}, nil
}

// Root returns the directory paths are resolved in.
func (h *HostRoot) Root() string { return h.root }

// open returns an O_PATH descriptor of path resolved inside the root.
func (h *HostRoot) open(path string) (int, error) {
	fd, err := unix.Openat2(h.rootFd, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		// No openat2 (kernel < 5.6, or a seccomp profile that denies it).
		fd, err = unix.Open(filepath.Join(h.root, path), unix.O_PATH|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: filepath.Join(h.root, path), Err: err}
	}
	return fd, nil
}

// Stat is stat(2) of path inside the root.
func (h *HostRoot) Stat(path string) (fsinfo.Stat, error) {
	fd, err := h.open(path)
	if err != nil {
		return fsinfo.Stat{}, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fsinfo.Stat{}, err
	}
	return fsinfo.Stat{Dev: st.Dev, Mode: st.Mode}, nil
}

// Statfs is statfs(2) of path inside the root, given up after timeout
// (the call may go on in the background).
func (h *HostRoot) Statfs(path string, timeout time.Duration) (fsinfo.Statfs, error) {
	type result struct {
		s   unix.Statfs_t
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		fd, err := h.open(path)
		if err != nil {
			r.err = err
		} else {
			r.err = unix.Fstatfs(fd, &r.s)
			unix.Close(fd)
		}
		done <- r
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return fsinfo.Statfs{}, r.err
		}
		s := r.s
		return fsinfo.Statfs{Type: int64(s.Type), Bsize: int64(s.Bsize), Frsize: int64(s.Frsize), Blocks: s.Blocks, Bfree: s.Bfree, Bavail: s.Bavail, Files: s.Files, Ffree: s.Ffree}, nil
	case <-t.C:
		return fsinfo.Statfs{}, fmt.Errorf("statfs %s: %w after %s", filepath.Join(h.root, path), fsinfo.ErrStatfsTimeout, timeout)
	}
}

// Exists reports whether path exists inside the root.
func (h *HostRoot) Exists(path string) bool {
	fd, err := h.open(path)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

//go:build linux

package gentree

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// writeFile creates path with data, without the os package's poller
// registration (two syscalls fewer per file).
func writeFile(path string, data []byte, mode uint32) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("write %s: %w", path, err)
		}
		data = data[n:]
	}
	return unix.Close(fd)
}

// writeSparse makes a size-byte file with data only at its start, middle
// and last 4 KiB.
func writeSparse(path string, size int64, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, size); err != nil {
		return fmt.Errorf("truncate %s: %w", path, err)
	}
	for _, at := range []struct {
		off int64
		n   int
	}{{0, len(data)}, {size / 2, len(data)}, {size - 4096, 4096}} {
		if _, err := unix.Pwrite(fd, data[:at.n], at.off); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// mknodWhiteout makes an overlayfs whiteout: a character device 0:0.
func mknodWhiteout(path string) error {
	if err := unix.Mknod(path, unix.S_IFCHR|0o000, 0); err != nil {
		return fmt.Errorf("mknod whiteout %s (needs CAP_MKNOD): %w", path, err)
	}
	return nil
}

// setOpaque marks a directory opaque as overlayfs does, or, unprivileged,
// as overlayfs with the userxattr mount option does.
func setOpaque(path string, unprivileged bool) error {
	name := "trusted.overlay.opaque"
	if unprivileged {
		name = "user.overlay.opaque"
	}
	return unix.Lsetxattr(path, name, []byte("y"), 0)
}

func mkfifo(path string) error { return unix.Mkfifo(path, 0o644) }

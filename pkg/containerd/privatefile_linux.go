//go:build linux

package containerd

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// privateFile returns an in-memory file (memfd) holding data: nothing is
// written to any disk, which matters on a node that is out of space.
func privateFile(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("imagefs-snapshot-db", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:imagefs-snapshot-db")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

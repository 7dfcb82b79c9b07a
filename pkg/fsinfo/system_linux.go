//go:build linux

package fsinfo

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

type osSystem struct{}

// OS returns the System backed by the running kernel.
func OS() System { return osSystem{} }

func (osSystem) Stat(path string) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Stat{}, err
	}
	return Stat{Dev: st.Dev, Mode: st.Mode}, nil
}

func (osSystem) Statfs(path string, timeout time.Duration) (Statfs, error) {
	type result struct {
		s   unix.Statfs_t
		err error
	}
	// Buffered: a statfs stuck on a dead mount finishes (or not) on its own
	// without blocking anyone, as in cadvisor's vfs.GetVfsStats.
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = unix.Statfs(path, &r.s)
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return Statfs{}, r.err
		}
		s := r.s
		return Statfs{Type: int64(s.Type), Bsize: int64(s.Bsize), Frsize: int64(s.Frsize), Blocks: s.Blocks, Bfree: s.Bfree, Bavail: s.Bavail, Files: s.Files, Ffree: s.Ffree}, nil
	case <-time.After(timeout):
		return Statfs{}, fmt.Errorf("statfs %s: %w after %s", path, ErrStatfsTimeout, timeout)
	}
}

func (osSystem) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

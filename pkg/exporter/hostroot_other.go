//go:build !linux

package exporter

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/imagefs/imagefs/pkg/fsinfo"
)

// HostRoot resolves paths inside a host root; Linux only.
type HostRoot struct{ root string }

var _ fsinfo.System = (*HostRoot)(nil)

// NewHostRoot fails: resolving paths in a host root is Linux-only.
func NewHostRoot(root string) (*HostRoot, error) {
	return nil, fmt.Errorf("host root is not implemented on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// Root returns the directory paths are resolved in.
func (h *HostRoot) Root() string { return h.root }

func (h *HostRoot) Stat(string) (fsinfo.Stat, error) { return fsinfo.Stat{}, errors.ErrUnsupported }
func (h *HostRoot) Statfs(string, time.Duration) (fsinfo.Statfs, error) {
	return fsinfo.Statfs{}, errors.ErrUnsupported
}
func (h *HostRoot) Exists(string) bool { return false }

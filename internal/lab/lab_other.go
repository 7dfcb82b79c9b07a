//go:build !linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// errUnsupported says the lab needs Linux (loop mounts, overlayfs, runc).
var errUnsupported = fmt.Errorf("imagefs lab needs linux (loop mounts, overlayfs, runc), not %s/%s: %w",
	runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)

func MountFS(fstype, imgDir, mountDir string, sizeBytes int64) (*Mount, error) {
	return nil, errUnsupported
}

func (m *Mount) Unmount() error { return errUnsupported }

func MountsUnder(dir string) ([]string, error) { return nil, errUnsupported }

func ShimPIDs(socket string) ([]int, error) { return nil, errUnsupported }

func StartContainerd(ctx context.Context, cfg Config) (*Containerd, error) {
	return nil, errUnsupported
}

func (c *Containerd) Stop() error { return errUnsupported }

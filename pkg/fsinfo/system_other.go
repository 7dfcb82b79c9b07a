//go:build !linux

package fsinfo

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

type osSystem struct{}

// OS returns a System that fails: the kubelet's filesystem lookup is
// Linux-only.
func OS() System { return osSystem{} }

func unsupported() error {
	return fmt.Errorf("filesystem lookup is not implemented on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

func (osSystem) Stat(string) (Stat, error)                    { return Stat{}, unsupported() }
func (osSystem) Statfs(string, time.Duration) (Statfs, error) { return Statfs{}, unsupported() }
func (osSystem) Exists(string) bool                           { return false }

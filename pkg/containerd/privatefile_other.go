//go:build !linux

package containerd

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// privateFile needs memfd_create; containerd's overlay snapshotter is Linux-only.
func privateFile([]byte) (*os.File, error) {
	return nil, fmt.Errorf("reading a snapshotter metadata.db on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

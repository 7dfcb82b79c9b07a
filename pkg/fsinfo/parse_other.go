//go:build !linux

package fsinfo

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/moby/sys/mountinfo"
)

// parseMountinfo fails: mountinfo files exist only on Linux.
func parseMountinfo(io.Reader) ([]*mountinfo.Info, error) {
	return nil, fmt.Errorf("mountinfo parsing is not implemented on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

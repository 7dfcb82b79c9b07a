//go:build !linux

package cli

import (
	"errors"
	"fmt"
	"runtime"
)

// dirUsage is not implemented off Linux.
func dirUsage(string) (uint64, uint64, error) {
	return 0, 0, fmt.Errorf("directory usage is not implemented on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

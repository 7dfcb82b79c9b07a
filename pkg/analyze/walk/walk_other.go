//go:build !linux

package walk

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

func walk(context.Context, []string, Options) (map[string]Totals, error) {
	return nil, fmt.Errorf("disk-usage walk not implemented on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

//go:build !linux

package gentree

import (
	"errors"
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("gentree: whiteouts and overlay xattrs not implemented on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)

func writeFile(string, []byte, uint32) error  { return errUnsupported }
func writeSparse(string, int64, []byte) error { return errUnsupported }
func mknodWhiteout(string) error              { return errUnsupported }
func setOpaque(string, bool) error            { return errUnsupported }
func mkfifo(string) error                     { return errUnsupported }

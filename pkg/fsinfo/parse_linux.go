//go:build linux

package fsinfo

import (
	"io"

	"github.com/moby/sys/mountinfo"
)

// parseMountinfo parses /proc/PID/mountinfo text with the parser cadvisor uses.
func parseMountinfo(r io.Reader) ([]*mountinfo.Info, error) {
	return mountinfo.GetMountsFromReader(r, nil)
}

//go:build linux

package fsinfo_test

import (
	"testing"

	"golang.org/x/sys/unix"

	. "github.com/imagefs/imagefs/pkg/fsinfo"
)

func TestDevDecoding(t *testing.T) {
	for _, c := range []struct{ major, minor uint32 }{{8, 1}, {0, 41}, {7, 300}, {254, 0}, {259, 1048575}} {
		d := unix.Mkdev(c.major, c.minor)
		if DevMajor(d) != uint(c.major) || DevMinor(d) != uint(c.minor) {
			t.Errorf("Mkdev(%d,%d) decodes to %d:%d", c.major, c.minor, DevMajor(d), DevMinor(d))
		}
	}
	// majors beyond 12 bits: cadvisor's helpers truncate, unix.Major does not.
	d := unix.Mkdev(4097, 1)
	if DevMajor(d) != 1 {
		t.Errorf("DevMajor(4097:1) = %d, want 1 (cadvisor's 12-bit major)", DevMajor(d))
	}
}

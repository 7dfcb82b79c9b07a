package fsinfo

import (
	"errors"
	"time"
)

// StatfsTimeout is how long cadvisor waits for one statfs (vfs.GetVfsStats)
// before dropping the partition from its sample.
const StatfsTimeout = 2 * time.Second

// ErrEmptyMountTable means a mountinfo file parsed to no mounts at all.
var ErrEmptyMountTable = errors.New("no mounts in mount table")

// Stat is the part of stat(2) the lookup needs.
type Stat struct {
	Dev  uint64 `json:"dev"`
	Mode uint32 `json:"mode"`
}

// S_IFMT bits, spelled out so the type is portable.
const (
	modeTypeMask = 0o170000
	modeBlockDev = 0o060000
)

// IsBlockDevice reports whether the stat describes a block device.
func (s Stat) IsBlockDevice() bool { return s.Mode&modeTypeMask == modeBlockDev }

// Statfs holds the raw statfs(2) fields imagefs reports and explains.
type Statfs struct {
	Type   int64  `json:"type"`
	Bsize  int64  `json:"bsize"`
	Frsize int64  `json:"frsize"`
	Blocks uint64 `json:"blocks"`
	Bfree  uint64 `json:"bfree"`
	Bavail uint64 `json:"bavail"`
	Files  uint64 `json:"files"`
	Ffree  uint64 `json:"ffree"`
}

// System is the kernel interface fsinfo uses; OS() is the real one, tests
// supply fixtures.
type System interface {
	Stat(path string) (Stat, error)
	// Statfs must give up after timeout with an error wrapping
	// ErrStatfsTimeout; the call may go on in the background.
	Statfs(path string, timeout time.Duration) (Statfs, error)
	// Exists reports whether path exists (cadvisor's utils.FileExists).
	Exists(path string) bool
}

// ErrStatfsTimeout means statfs did not return in time (a hung mount).
var ErrStatfsTimeout = errors.New("statfs did not return in time")

// DevMajor decodes st_dev the way cadvisor's fs.go does: the old glibc
// encoding, 12 bits of major. It differs from unix.Major for majors >= 4096.
func DevMajor(dev uint64) uint { return uint((dev >> 8) & 0xfff) }

// DevMinor decodes st_dev the way cadvisor's fs.go does.
func DevMinor(dev uint64) uint { return uint((dev & 0xff) | ((dev >> 12) & 0xfff00)) }

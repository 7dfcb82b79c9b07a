// Package fsinfotest provides a fixture-backed fsinfo.System, so lookups and
// everything built on them can be tested with mount tables from other nodes.
package fsinfotest

import (
	"fmt"
	"syscall"
	"time"

	"github.com/imagefs/imagefs/pkg/fsinfo"
)

// BlockDevice is a stat mode for a block device node.
const BlockDevice = 0o060644

// Dev encodes major:minor in the old glibc layout cadvisor decodes.
func Dev(major, minor uint64) uint64 { return major<<8 | minor&0xff | (minor&^0xff)<<12 }

// System answers stat and statfs from maps.
type System struct {
	Stats   map[string]fsinfo.Stat
	Statfs_ map[string]fsinfo.Statfs
	// Hang lists paths whose statfs never returns in time.
	Hang map[string]bool
	// Missing lists paths Exists denies although Stat may answer.
	Missing map[string]bool
}

var _ fsinfo.System = (*System)(nil)

func (f *System) Stat(path string) (fsinfo.Stat, error) {
	if s, ok := f.Stats[path]; ok {
		return s, nil
	}
	return fsinfo.Stat{}, syscall.ENOENT
}

func (f *System) Statfs(path string, timeout time.Duration) (fsinfo.Statfs, error) {
	if f.Hang[path] {
		return fsinfo.Statfs{}, fmt.Errorf("statfs %s: %w after %s", path, fsinfo.ErrStatfsTimeout, timeout)
	}
	if s, ok := f.Statfs_[path]; ok {
		return s, nil
	}
	return fsinfo.Statfs{}, syscall.ENOENT
}

func (f *System) Exists(path string) bool {
	if f.Missing[path] {
		return false
	}
	_, ok := f.Stats[path]
	return ok
}

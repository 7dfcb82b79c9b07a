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
	Stats   map[string]fsinfo.Stat   `json:"stats"`
	Statfs_ map[string]fsinfo.Statfs `json:"statfs"`
	// Hang lists paths whose statfs never returns in time.
	Hang map[string]bool `json:"hang,omitempty"`
	// Missing lists paths Exists denies although Stat may answer.
	Missing map[string]bool `json:"missing,omitempty"`
}

// Recorder wraps a real System and remembers every answer, so a lookup on
// a live node can be replayed later from a System fixture.
type Recorder struct {
	fsinfo.System
	Recorded System
}

// Record starts recording sys.
func Record(sys fsinfo.System) *Recorder {
	return &Recorder{System: sys, Recorded: System{Stats: map[string]fsinfo.Stat{}, Statfs_: map[string]fsinfo.Statfs{}, Missing: map[string]bool{}}}
}

func (r *Recorder) Stat(path string) (fsinfo.Stat, error) {
	s, err := r.System.Stat(path)
	if err == nil {
		r.Recorded.Stats[path] = s
	}
	return s, err
}

func (r *Recorder) Statfs(path string, timeout time.Duration) (fsinfo.Statfs, error) {
	s, err := r.System.Statfs(path, timeout)
	if err == nil {
		r.Recorded.Statfs_[path] = s
	}
	return s, err
}

func (r *Recorder) Exists(path string) bool {
	ok := r.System.Exists(path)
	if ok {
		if _, known := r.Recorded.Stats[path]; !known {
			if s, err := r.System.Stat(path); err == nil {
				r.Recorded.Stats[path] = s
			}
		}
	} else {
		r.Recorded.Missing[path] = true
	}
	return ok
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

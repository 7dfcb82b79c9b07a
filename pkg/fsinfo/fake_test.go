package fsinfo

import (
	"fmt"
	"syscall"
	"time"
)

// fakeSystem answers stat and statfs from maps, so partition-map rules can
// be tested on mount tables from other machines.
type fakeSystem struct {
	stats   map[string]Stat
	statfs  map[string]Statfs
	hang    map[string]bool // statfs never returns in time
	missing map[string]bool // exists() is false though stat may answer
	calls   []string
}

func dev(major, minor uint64) uint64 { return major<<8 | minor&0xff | (minor&^0xff)<<12 }

func (f *fakeSystem) Stat(path string) (Stat, error) {
	f.calls = append(f.calls, "stat "+path)
	if s, ok := f.stats[path]; ok {
		return s, nil
	}
	return Stat{}, syscall.ENOENT
}

func (f *fakeSystem) Statfs(path string, timeout time.Duration) (Statfs, error) {
	f.calls = append(f.calls, "statfs "+path)
	if f.hang[path] {
		return Statfs{}, fmt.Errorf("statfs %s: %w after %s", path, ErrStatfsTimeout, timeout)
	}
	if s, ok := f.statfs[path]; ok {
		return s, nil
	}
	return Statfs{}, syscall.ENOENT
}

func (f *fakeSystem) Exists(path string) bool {
	if f.missing[path] {
		return false
	}
	_, ok := f.stats[path]
	return ok
}

func mustTable(name string, sys System) *MountTable {
	t, err := ReadMountTable("testdata/mountinfo/"+name, sys)
	if err != nil {
		panic(err)
	}
	return t
}


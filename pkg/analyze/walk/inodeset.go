package walk

import "sync"

// inodeKey is what continuity keys its set by: (st_dev, st_ino).
type inodeKey struct{ dev, ino uint64 }

const inodeShards = 64 // a power of two

// inodeSet is a concurrent set of inodes, sharded so that workers adding
// hard links in different directories rarely meet on a lock.
type inodeSet struct {
	shards [inodeShards]struct {
		mu sync.Mutex
		m  map[inodeKey]struct{}
		_  [40]byte // keep shards on separate cache lines
	}
}

// add records k and reports whether it was new.
func (s *inodeSet) add(k inodeKey) bool {
	h := (k.ino*0x9E3779B97F4A7C15 ^ k.dev) >> (64 - 6)
	sh := &s.shards[h&(inodeShards-1)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; ok {
		return false
	}
	if sh.m == nil {
		sh.m = make(map[inodeKey]struct{})
	}
	sh.m[k] = struct{}{}
	return true
}

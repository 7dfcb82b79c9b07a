package fsinfo

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
)

// Sentinels for the ways cadvisor's GetDirFsInfo fails. The error text of a
// Lookup is exactly what cadvisor hands the kubelet; these let callers branch.
var (
	ErrStatFailed               = errors.New("stat failed")
	ErrDeviceNotInPartitionsMap = errors.New("could not find device in cached partitions map")
	ErrNoPartitionInfo          = errors.New("no partition info for device")
	ErrNoFsInfo                 = errors.New("cannot find filesystem info for device")
)

// cadvisorError carries cadvisor's exact message and a sentinel to branch on.
type cadvisorError struct {
	msg  string
	kind error
}

func (e *cadvisorError) Error() string { return e.msg }
func (e *cadvisorError) Unwrap() error { return e.kind }

// How the device was found.
const (
	ViaPartitionMap = "partition map"
	ViaMountTable   = "mount table fallback"
)

// Info is what cadvisor returns for a directory (v2.FsInfo, the fields the
// kubelet reads). Inodes are pointers: nil means "not reported".
type Info struct {
	Device     string    `json:"device"`
	Mountpoint string    `json:"mountpoint"`
	FSType     string    `json:"fsType"`
	Capacity   uint64    `json:"capacityBytes"`
	Free       uint64    `json:"freeBytes"`
	Available  uint64    `json:"availableBytes"`
	Inodes     *uint64   `json:"inodes,omitempty"`
	InodesFree *uint64   `json:"inodesFree,omitempty"`
	Time       time.Time `json:"time"`
}

// Usage is cadvisor's Usage: capacity minus free, so root-reserved blocks
// count as used (the kubelet's node.fs usedBytes).
func (i *Info) Usage() uint64 { return i.Capacity - i.Free }

// Lookup records every step of resolving one directory, for explanation.
type Lookup struct {
	Dir string `json:"dir"`
	// Stat of Dir and its device numbers in cadvisor's decoding.
	Dev   uint64 `json:"dev"`
	Major uint   `json:"major"`
	Minor uint   `json:"minor"`
	// Via is ViaPartitionMap or ViaMountTable, "" if neither matched.
	Via string `json:"via,omitempty"`
	// Device is the cadvisor device name the lookup settled on.
	Device string `json:"device,omitempty"`
	// Ambiguous lists other partitions with the same major:minor; cadvisor
	// would pick any of them (Go map order).
	Ambiguous []string `json:"ambiguous,omitempty"`
	// Mount is the mountinfo entry behind the result: the partition's own
	// entry, or the ancestor mount the fallback found.
	Mount *mountinfo.Info `json:"-"`
	// Partition is the partition map entry statfs is taken from.
	Partition *Partition `json:"partition,omitempty"`
	Statfs    *Statfs    `json:"statfs,omitempty"`
	Info      *Info      `json:"info,omitempty"`
	// Err is cadvisor's error for this directory, nil on success.
	Err error `json:"-"`
}

// Lookup resolves dir like cadvisor's manager.GetDirFsInfo, taking statfs
// now rather than from a cached housekeeping sample.
func (t *MountTable) Lookup(dir string, sys System) *Lookup {
	l := &Lookup{Dir: dir}
	st, err := sys.Stat(dir)
	if err != nil {
		l.Err = &cadvisorError{kind: ErrStatFailed, msg: fmt.Sprintf("failed to get device for dir %q: stat failed on %s with error: %s", dir, dir, err)}
		return l
	}
	l.Dev, l.Major, l.Minor = st.Dev, DevMajor(st.Dev), DevMinor(st.Dev)

	if hits := t.partitionsByNumber(l.Major, l.Minor); len(hits) > 0 {
		l.Via, l.Device, l.Mount = ViaPartitionMap, hits[0].Device, hits[0].Mount
		for _, h := range hits[1:] {
			l.Ambiguous = append(l.Ambiguous, h.Device)
		}
	} else if m, ok := t.mountForDir(dir); ok && strings.HasPrefix(m.Source, "/dev/") {
		l.Via, l.Device, l.Mount = ViaMountTable, m.Source, m
	} else {
		l.Err = &cadvisorError{kind: ErrDeviceNotInPartitionsMap, msg: fmt.Sprintf("failed to get device for dir %q: with major: %d, minor: %d: %s", dir, l.Major, l.Minor, ErrDeviceNotInPartitionsMap)}
		return l
	}

	p, ok := t.partitions[l.Device]
	if !ok {
		l.Err = &cadvisorError{kind: ErrNoPartitionInfo, msg: fmt.Sprintf("failed to get mount point for device %q: no partition info for device %q", l.Device, l.Device)}
		return l
	}
	l.Partition = p

	noInfo := func(why string) {
		l.Err = &cadvisorError{kind: ErrNoFsInfo, msg: fmt.Sprintf("cannot find filesystem info for device %q (%s)", l.Device, why)}
	}
	// The vfs plugin skips partitions whose mountpoint is gone; the others
	// fail in statfs. Either way the partition is missing from the sample.
	if p.Plugin == "vfs" && !sys.Exists(p.Mountpoint) {
		noInfo(fmt.Sprintf("cadvisor skips %s: its mountpoint %s does not exist", p.Device, p.Mountpoint))
		return l
	}
	now := time.Now()
	if t.Clock != nil {
		now = t.Clock()
	}
	s, err := sys.Statfs(p.Mountpoint, StatfsTimeout)
	if err != nil {
		noInfo(fmt.Sprintf("statfs %s failed, so cadvisor drops it from its sample: %v", p.Mountpoint, err))
		return l
	}
	l.Statfs = &s
	frsize := uint64(s.Frsize)
	inodes, inodesFree := s.Files, s.Ffree
	l.Info = &Info{
		Device:     p.Device,
		Mountpoint: p.Mountpoint,
		FSType:     p.FSType,
		Capacity:   frsize * s.Blocks,
		Free:       frsize * s.Bfree,
		Available:  frsize * s.Bavail,
		Inodes:     &inodes,
		InodesFree: &inodesFree,
		Time:       now,
	}
	return l
}

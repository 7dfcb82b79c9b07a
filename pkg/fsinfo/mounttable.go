package fsinfo

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
)

// DefaultMountinfo is the mount table cadvisor reads in the kubelet process.
const DefaultMountinfo = "/proc/self/mountinfo"

// Plugin names the cadvisor lib/fs plugin that handles a filesystem type,
// or "" when none does (such mounts never enter the partition map). The
// kubelet registers btrfs, nfs, overlay, tmpfs, vfs and zfs; where several
// can handle a type the one with the highest priority wins, and the types
// below never overlap.
func Plugin(fstype string) string {
	switch fstype {
	case "overlay", "tmpfs", "btrfs", "zfs":
		return fstype
	case "xfs", "squashfs", "f2fs", "jfs", "reiserfs", "hfs", "hfsplus",
		"ntfs", "vfat", "fat", "msdos", "exfat", "udf", "iso9660":
		return "vfs"
	}
	if strings.HasPrefix(fstype, "nfs") {
		return "nfs"
	}
	if strings.HasPrefix(fstype, "ext") {
		return "vfs"
	}
	return ""
}

// Partition is one entry of cadvisor's partition map.
type Partition struct {
	// Device is the map key: the mount source, rewritten by the plugin
	// (overlay: "<source>_<major>-<minor>", tmpfs: the mountpoint).
	Device     string `json:"device"`
	Mountpoint string `json:"mountpoint"`
	Major      uint   `json:"major"`
	Minor      uint   `json:"minor"`
	FSType     string `json:"fsType"`
	Plugin     string `json:"plugin"`
	// Mount is the mountinfo entry that produced this partition.
	Mount *mountinfo.Info `json:"-"`
	// Note explains a rewrite, e.g. the btrfs renumbering.
	Note string `json:"note,omitempty"`
}

// MountTable is a parsed mountinfo file with cadvisor's partition map.
type MountTable struct {
	// Path is where the table was read from.
	Path string
	// Mounts in file order.
	Mounts []*mountinfo.Info
	// Clock stamps statfs samples; time.Now when nil.
	Clock func() time.Time

	partitions   map[string]*Partition
	byMountpoint map[string]*mountinfo.Info
	lines        map[int]string
}

// ReadMountTable parses the mountinfo file at path ("" = /proc/self/mountinfo)
// and builds the partition map, using sys for the btrfs renumbering.
func ReadMountTable(path string, sys System) (*MountTable, error) {
	if path == "" {
		path = DefaultMountinfo
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return ParseMountTable(f, path, sys)
}

// ParseMountTable is ReadMountTable on an open reader; name is used in errors.
func ParseMountTable(r io.Reader, name string, sys System) (*MountTable, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read mount table %s: %w", name, err)
	}
	mounts, err := parseMountinfo(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse mount table %s: %w", name, err)
	}
	if len(mounts) == 0 {
		return nil, fmt.Errorf("parse mount table %s: %w", name, ErrEmptyMountTable)
	}
	t := NewMountTable(name, mounts, sys)
	// Keep each line as written, to quote it when explaining a lookup.
	t.lines = make(map[int]string, len(mounts))
	for _, line := range strings.Split(string(raw), "\n") {
		if id, _, ok := strings.Cut(line, " "); ok {
			if n, err := strconv.Atoi(id); err == nil {
				t.lines[n] = line
			}
		}
	}
	return t, nil
}

// Line returns the mountinfo line of a mount as read, or a reconstruction
// when the table was not read from text.
func (t *MountTable) Line(m *mountinfo.Info) string {
	if m == nil {
		return ""
	}
	if l, ok := t.lines[m.ID]; ok {
		return l
	}
	return fmt.Sprintf("%d %d %d:%d %s %s %s %s - %s %s %s", m.ID, m.Parent, m.Major, m.Minor, m.Root, m.Mountpoint, m.Options, m.Optional, m.FSType, m.Source, m.VFSOptions)
}

// NewMountTable builds cadvisor's partition map (fs.go processMounts and
// addSystemRootLabel) and mount-by-mountpoint table from parsed mounts.
func NewMountTable(name string, mounts []*mountinfo.Info, sys System) *MountTable {
	t := &MountTable{
		Path:         name,
		Mounts:       mounts,
		partitions:   make(map[string]*Partition),
		byMountpoint: make(map[string]*mountinfo.Info),
	}
	for _, m := range mounts {
		plugin := Plugin(m.FSType)
		if plugin == "" {
			continue
		}
		// Bind mounts and further mounts of one source: the first entry
		// wins, except for tmpfs, which is keyed by mountpoint below.
		if _, dup := t.partitions[m.Source]; dup && m.FSType != "tmpfs" {
			continue
		}
		p := &Partition{Device: m.Source, Mountpoint: m.Mountpoint, Major: uint(m.Major), Minor: uint(m.Minor), FSType: m.FSType, Plugin: plugin, Mount: m}
		switch plugin {
		case "overlay":
			p.Device = fmt.Sprintf("%s_%d-%d", m.Source, m.Major, m.Minor)
		case "tmpfs":
			p.Device = m.Mountpoint
		case "btrfs":
			renumberBtrfs(p, sys)
		}
		t.partitions[p.Device] = p
	}
	// The mount at "/" is stored again under its raw source and numbers,
	// overwriting whatever the loop stored there (addSystemRootLabel).
	for _, m := range mounts {
		if m.Mountpoint == "/" {
			t.partitions[m.Source] = &Partition{Device: m.Source, Mountpoint: m.Mountpoint, Major: uint(m.Major), Minor: uint(m.Minor), FSType: m.FSType, Plugin: Plugin(m.FSType), Mount: m, Note: "stored last as the system root, with mountinfo's own numbers"}
			break
		}
	}
	// Later entries for one mountpoint hide earlier ones.
	for _, m := range mounts {
		t.byMountpoint[m.Mountpoint] = m
	}
	return t
}

// renumberBtrfs applies cadvisor's btrfs fix: mountinfo shows an anonymous
// 0:N device that stat of the mountpoint does not return, so when the
// source is a block device the numbers come from stat of the mountpoint.
func renumberBtrfs(p *Partition, sys System) {
	if p.Major != 0 || !strings.HasPrefix(p.Mount.Source, "/dev/") {
		return
	}
	src, err := sys.Stat(p.Mount.Source)
	if err != nil {
		p.Note = fmt.Sprintf("btrfs renumbering skipped: stat failed on %s with error: %s", p.Mount.Source, err)
		return
	}
	if !src.IsBlockDevice() {
		p.Note = fmt.Sprintf("btrfs renumbering skipped: %s is not a block device", p.Mount.Source)
		return
	}
	mp, err := sys.Stat(p.Mount.Mountpoint)
	if err != nil {
		p.Note = fmt.Sprintf("btrfs renumbering skipped: stat failed on %s with error: %s", p.Mount.Mountpoint, err)
		return
	}
	major, minor := DevMajor(mp.Dev), DevMinor(mp.Dev)
	p.Note = fmt.Sprintf("btrfs: mountinfo says %d:%d, stat of %s says %d:%d; cadvisor uses the latter", p.Major, p.Minor, p.Mountpoint, major, minor)
	p.Major, p.Minor = major, minor
}

// Partitions returns the partition map sorted by device name.
func (t *MountTable) Partitions() []*Partition {
	out := make([]*Partition, 0, len(t.partitions))
	for _, p := range t.partitions {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}

// Partition returns the partition stored under a device name.
func (t *MountTable) Partition(device string) (*Partition, bool) {
	p, ok := t.partitions[device]
	return p, ok
}

// partitionsByNumber returns the partitions with this major:minor, sorted
// by device name. cadvisor scans a Go map and takes the first hit, so with
// more than one match its choice is arbitrary; callers report that.
func (t *MountTable) partitionsByNumber(major, minor uint) []*Partition {
	var out []*Partition
	for _, p := range t.partitions {
		if p.Major == major && p.Minor == minor {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}

// mountForDir walks dir and its ancestors through the mount table, ending
// at "/", like cadvisor's mountInfoFromDir.
func (t *MountTable) mountForDir(dir string) (*mountinfo.Info, bool) {
	for {
		if m, ok := t.byMountpoint[dir]; ok {
			return m, true
		}
		parent := dir[:strings.LastIndex(dir, "/")+1]
		if parent == "/" || parent == "" {
			m, ok := t.byMountpoint["/"]
			return m, ok
		}
		dir = strings.TrimSuffix(parent, "/")
	}
}

// MountFor returns the mount that holds path by the longest mountpoint
// prefix in the table (what a user expects "the mount of path" to be).
func (t *MountTable) MountFor(path string) *mountinfo.Info {
	var best *mountinfo.Info
	for _, m := range t.Mounts {
		if m.Mountpoint == path || m.Mountpoint == "/" || strings.HasPrefix(path, strings.TrimSuffix(m.Mountpoint, "/")+"/") {
			if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
				best = m
			}
		}
	}
	return best
}

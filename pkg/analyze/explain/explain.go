// Package explain turns one stats collection into a step-by-step account of
// how the kubelet produces each filesystem field: runtime, raw ImageFsInfo,
// directory → device → mountinfo line → partition, raw statfs and the
// arithmetic, a df line for the same mount, and what the runtime's
// usedBytes counts and leaves out.
package explain

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"encoding/json"
	"google.golang.org/protobuf/encoding/protojson"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/stats"
)

// Targets accepted by imagefs explain.
const (
	TargetAll         = "all"
	TargetImageFs     = "imagefs"
	TargetContainerFs = "containerfs"
	TargetNodeFs      = "nodefs"
)

// roleOfTarget maps a target to the stats role.
var roleOfTarget = map[string]string{TargetNodeFs: stats.RoleNode, TargetImageFs: stats.RoleImage, TargetContainerFs: stats.RoleContainer}

// Report is the whole explanation; every intermediate value is a field so
// -o json carries it all.
type Report struct {
	Target      string        `json:"target"`
	GeneratedAt time.Time     `json:"generatedAt"`
	NodeName    string        `json:"nodeName"`
	Runtime     Runtime       `json:"runtime"`
	ImageFsInfo ImageFsInfo   `json:"imageFsInfo"`
	MountTable  string        `json:"mountTable"`
	Filesystems []*Filesystem `json:"filesystems"`
	Live        *Live         `json:"live,omitempty"`
}

// Runtime is step 1: which endpoint, why, and what answered.
type Runtime struct {
	Endpoint          string `json:"endpoint"`
	EndpointSource    string `json:"endpointSource"`
	Name              string `json:"name"`
	Version           string `json:"version"`
	RuntimeAPIVersion string `json:"runtimeApiVersion"`
}

// ImageFsInfo is step 2: the raw CRI response and the age of its numbers.
type ImageFsInfo struct {
	// Raw is the response as protojson (the shape crictl imagefsinfo prints).
	Raw                  json.RawMessage `json:"raw"`
	ImageFilesystems     []Usage         `json:"imageFilesystems"`
	ContainerFilesystems []Usage         `json:"containerFilesystems"`
}

// Usage is one CRI FilesystemUsage, decoded.
type Usage struct {
	Mountpoint string    `json:"mountpoint"`
	Timestamp  time.Time `json:"timestamp"`
	// AgeSeconds is how old the runtime's numbers were when imagefs asked.
	AgeSeconds float64 `json:"ageSeconds"`
	UsedBytes  *uint64 `json:"usedBytes,omitempty"`
	InodesUsed *uint64 `json:"inodesUsed,omitempty"`
}

// Filesystem explains one Summary API filesystem.
type Filesystem struct {
	Role string `json:"role"`
	// Path is where it appears in the Summary API, e.g. node.runtime.imageFs.
	Path string `json:"path"`
	// Dir is the directory the kubelet resolves and DirSource where it
	// comes from.
	Dir       string `json:"dir"`
	DirSource string `json:"dirSource"`
	SameAs    string `json:"sameAs,omitempty"`
	Lookup    Lookup `json:"lookup"`
	// Statfs is the raw statfs of the partition's mountpoint.
	Statfs *fsinfo.Statfs `json:"statfs,omitempty"`
	Fields []Field        `json:"fields"`
	// Gap explains why usedBytes + availableBytes != capacityBytes.
	Gap *Gap `json:"gap,omitempty"`
	Df  *Df  `json:"df,omitempty"`
	// RuntimeData sizes what the runtime keeps on disk, beside usedBytes.
	RuntimeData  *RuntimeData `json:"runtimeData,omitempty"`
	KubeletError string       `json:"kubeletError,omitempty"`
	// KubeletLog is the log line the kubelet writes for this failure.
	KubeletLog string   `json:"kubeletLog,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// Lookup is step 3: directory → stat → device → mountinfo → partition.
type Lookup struct {
	StatError     string            `json:"statError,omitempty"`
	Dev           uint64            `json:"dev"`
	Major         uint              `json:"major"`
	Minor         uint              `json:"minor"`
	Via           string            `json:"via,omitempty"`
	Device        string            `json:"device,omitempty"`
	MountinfoLine string            `json:"mountinfoLine,omitempty"`
	Partition     *fsinfo.Partition `json:"partition,omitempty"`
	Ambiguous     []string          `json:"ambiguous,omitempty"`
	// Why says in words why this partition was picked, or where it failed.
	Why   string `json:"why"`
	Error string `json:"error,omitempty"`
}

// Field is one Summary API field, its value and where it came from.
type Field struct {
	Name    string  `json:"name"`
	Value   *uint64 `json:"value,omitempty"`
	Source  string  `json:"source"`
	Formula string  `json:"formula"`
}

// Gap is the difference between capacity and used + available.
type Gap struct {
	CapacityBytes  uint64 `json:"capacityBytes"`
	UsedBytes      uint64 `json:"usedBytes"`
	AvailableBytes uint64 `json:"availableBytes"`
	// ReservedBytes is (bfree - bavail) × frsize: blocks only root may use.
	ReservedBytes uint64 `json:"reservedBytes"`
	// OtherBytes is what the filesystem holds beyond usedBytes and the
	// reserve (negative if usedBytes overstates, e.g. sparse or shared data).
	OtherBytes int64  `json:"otherBytes"`
	Why        string `json:"why"`
}

// Df is the df line for the partition's mountpoint in two units.
type Df struct {
	Filesystem string `json:"filesystem"`
	Mountpoint string `json:"mountpoint"`
	B1         DfRow  `json:"b1"`
	KB         DfRow  `json:"kB"`
}

// DfRow is one df output row: sizes in the row's unit, use% as df rounds it.
type DfRow struct {
	Size       uint64 `json:"size"`
	Used       uint64 `json:"used"`
	Available  uint64 `json:"available"`
	UsePercent uint64 `json:"usePercent"`
}

// RuntimeData compares the runtime's usedBytes with its directories on disk.
type RuntimeData struct {
	SnapshotterDir    string   `json:"snapshotterDir"`
	SnapshotterBytes  *uint64  `json:"snapshotterBytes,omitempty"`
	SnapshotterInodes *uint64  `json:"snapshotterInodes,omitempty"`
	ContentStoreDir   string   `json:"contentStoreDir,omitempty"`
	ContentStoreBytes *uint64  `json:"contentStoreBytes,omitempty"`
	RootDir           string   `json:"rootDir,omitempty"`
	RootBytes         *uint64  `json:"rootBytes,omitempty"`
	Errors            []string `json:"errors,omitempty"`
}

// DirUsage measures a directory: allocated bytes and inodes, each inode
// once, on one filesystem.
type DirUsage func(dir string) (bytes, inodes uint64, err error)

// Options tune Build.
type Options struct {
	Target string
	// Usage measures the runtime's directories; nil skips step 5's sizes.
	Usage DirUsage
	Now   func() time.Time
}

// Build explains a collection.
func Build(res *stats.Result, table *fsinfo.MountTable, o Options) (*Report, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	target := o.Target
	if target == "" {
		target = TargetAll
	}
	if _, ok := roleOfTarget[target]; !ok && target != TargetAll {
		return nil, fmt.Errorf("unknown filesystem %q (want imagefs, containerfs or nodefs)", target)
	}
	r := &Report{
		Target:      target,
		GeneratedAt: now(),
		NodeName:    res.Summary.Node.NodeName,
		MountTable:  res.MountTable,
		Runtime: Runtime{
			Endpoint: res.Runtime.Endpoint.URL, EndpointSource: res.Runtime.Endpoint.Source,
			Name: res.Runtime.Name, Version: res.Runtime.Version, RuntimeAPIVersion: res.Runtime.RuntimeAPIVersion,
		},
	}
	if res.ImageFsInfo != nil {
		raw, err := protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(res.ImageFsInfo)
		if err != nil {
			return nil, fmt.Errorf("encode ImageFsInfo: %w", err)
		}
		r.ImageFsInfo.Raw = compactJSON(raw)
		r.ImageFsInfo.ImageFilesystems = usages(res.ImageFsInfo.GetImageFilesystems(), res.CollectedAt)
		r.ImageFsInfo.ContainerFilesystems = usages(res.ImageFsInfo.GetContainerFilesystems(), res.CollectedAt)
	}
	for _, f := range res.Filesystems {
		if target != TargetAll && roleOfTarget[target] != f.Role {
			continue
		}
		r.Filesystems = append(r.Filesystems, explainFs(f, table, o.Usage))
	}
	return r, nil
}

// compactJSON re-encodes protojson output, whose spacing is deliberately
// unstable, into stable compact JSON.
func compactJSON(raw []byte) json.RawMessage {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw
	}
	out, _ := json.Marshal(v)
	return out
}

func usages(fss []*criapi.FilesystemUsage, at time.Time) []Usage {
	out := []Usage{}
	for _, fs := range fss {
		ts := time.Unix(0, fs.GetTimestamp()).UTC()
		// A runtime that stamps "now" answers after imagefs noted the time.
		u := Usage{Mountpoint: fs.GetFsId().GetMountpoint(), Timestamp: ts, AgeSeconds: max(0, at.Sub(ts).Seconds())}
		if fs.UsedBytes != nil {
			u.UsedBytes = ptr(fs.UsedBytes.GetValue())
		}
		if fs.InodesUsed != nil {
			u.InodesUsed = ptr(fs.InodesUsed.GetValue())
		}
		out = append(out, u)
	}
	return out
}

var summaryPath = map[string]string{stats.RoleNode: "node.fs", stats.RoleImage: "node.runtime.imageFs", stats.RoleContainer: "node.runtime.containerFs"}

func explainFs(f *stats.Filesystem, table *fsinfo.MountTable, usage DirUsage) *Filesystem {
	e := &Filesystem{Role: f.Role, Path: summaryPath[f.Role], Dir: f.Dir, SameAs: f.SameAs, KubeletError: f.KubeletError, Notes: f.Notes}
	switch f.Role {
	case stats.RoleNode:
		e.DirSource = "--root-dir, which cadvisor's RootFsInfo resolves"
	default:
		e.DirSource = "ImageFsInfo image_filesystems[0].fs_id.mountpoint"
	}
	if l := f.Lookup; l != nil {
		e.Lookup = explainLookup(l, table)
		if l.Statfs != nil {
			e.Statfs = l.Statfs
		}
		if l.Partition != nil && l.Statfs != nil {
			e.Df = df(l.Partition, l.Statfs)
		}
	} else {
		e.Lookup.Why = "not resolved: the runtime gave no directory"
	}
	e.Fields = fields(f)
	e.Gap = gap(f)
	if f.KubeletError != "" {
		if f.Role == stats.RoleNode {
			e.KubeletLog = fmt.Sprintf(`"Eviction manager: failed to get summary stats" err=%q`, f.KubeletError)
		} else if f.Lookup != nil && f.Lookup.Err != nil {
			e.KubeletLog = fmt.Sprintf(`"Failed to get the info of the filesystem with mountpoint" err=%q mountpoint=%q`, f.Lookup.Err.Error(), f.Dir)
		} else {
			e.KubeletLog = fmt.Sprintf(`"Eviction manager: failed to get summary stats" err=%q`, f.KubeletError)
		}
	}
	if f.Role == stats.RoleImage && f.Dir != "" && usage != nil {
		e.RuntimeData = runtimeData(f.Dir, usage)
	}
	return e
}

func explainLookup(l *fsinfo.Lookup, table *fsinfo.MountTable) Lookup {
	out := Lookup{Dev: l.Dev, Major: l.Major, Minor: l.Minor, Via: l.Via, Device: l.Device, Partition: l.Partition, Ambiguous: l.Ambiguous}
	if l.Mount != nil {
		out.MountinfoLine = table.Line(l.Mount)
	}
	if l.Err != nil {
		out.Error = l.Err.Error()
	}
	switch {
	case l.Via == "" && l.Err != nil && l.Dev == 0:
		out.StatError = l.Err.Error()
		out.Why = fmt.Sprintf("stat(%s) failed, so cadvisor cannot even take its device number; the directory does not exist in this mount namespace", l.Dir)
	case l.Via == fsinfo.ViaPartitionMap:
		out.Why = fmt.Sprintf("st_dev of %s is %d:%d (cadvisor's decoding); the partition map has %s with the same numbers, recorded from its first mountinfo entry, so statfs is taken at %s", l.Dir, l.Major, l.Minor, l.Device, l.Partition.Mountpoint)
	case l.Via == fsinfo.ViaMountTable:
		out.Why = fmt.Sprintf("no partition has %d:%d, so cadvisor walked up from %s to the mount at %s, whose source %s starts with /dev/", l.Major, l.Minor, l.Dir, l.Mount.Mountpoint, l.Device)
	default:
		out.Why = fmt.Sprintf("no partition has %d:%d and no ancestor mount has a /dev/ source", l.Major, l.Minor)
	}
	if len(l.Ambiguous) > 0 {
		out.Why += fmt.Sprintf("; %v have the same numbers and cadvisor picks one of them at random (Go map order)", l.Ambiguous)
	}
	if l.Err != nil && l.Via != "" {
		out.Why += "; then: " + l.Err.Error()
	}
	return out
}

func fields(f *stats.Filesystem) []Field {
	s := f.Stats
	if s == nil {
		return nil
	}
	var st *fsinfo.Statfs
	if f.Lookup != nil {
		st = f.Lookup.Statfs
	}
	statfsField := func(name string, v *uint64, a, b uint64, an, bn string) Field {
		fl := Field{Name: name, Value: v, Source: "statfs of " + partitionMountpoint(f)}
		switch {
		case v == nil:
			fl.Source, fl.Formula = "omitted", "the kubelet omits it (see the lookup)"
		case b == 0:
			fl.Formula = fmt.Sprintf("%s = %d", an, a)
		default:
			fl.Formula = fmt.Sprintf("%s × %s = %d × %d = %d", an, bn, a, b, a*b)
		}
		return fl
	}
	var frsize, blocks, bavail, bfree, files, ffree uint64
	if st != nil {
		frsize, blocks, bavail, bfree, files, ffree = uint64(st.Frsize), st.Blocks, st.Bavail, st.Bfree, st.Files, st.Ffree
	}
	out := []Field{
		statfsField("capacityBytes", s.CapacityBytes, frsize, blocks, "f_frsize", "f_blocks"),
		statfsField("availableBytes", s.AvailableBytes, frsize, bavail, "f_frsize", "f_bavail"),
		statfsField("inodes", s.Inodes, files, 0, "f_files", ""),
		statfsField("inodesFree", s.InodesFree, ffree, 0, "f_ffree", ""),
	}
	if f.Role == stats.RoleNode {
		out = append(out,
			Field{Name: "usedBytes", Value: s.UsedBytes, Source: "statfs (cadvisor Usage = capacity - free)", Formula: fmt.Sprintf("f_frsize × (f_blocks - f_bfree) = %d × (%d - %d) = %d", frsize, blocks, bfree, frsize*(blocks-bfree))},
			Field{Name: "inodesUsed", Value: s.InodesUsed, Source: "statfs", Formula: fmt.Sprintf("f_files - f_ffree = %d - %d = %d", files, ffree, files-ffree)},
			Field{Name: "time", Source: "cadvisor's root-cgroup sample time (imagefs: its own statfs time)", Formula: s.Time.UTC().Format(time.RFC3339)},
		)
		return out
	}
	used := Field{Name: "usedBytes", Value: s.UsedBytes, Source: "runtime (ImageFsInfo image_filesystems[0].used_bytes)", Formula: "the runtime's own accounting, not statfs"}
	if s.UsedBytes == nil {
		used.Source, used.Formula = "omitted", "the runtime sent no used_bytes"
	}
	inodes := Field{Name: "inodesUsed", Value: s.InodesUsed, Source: "runtime (ImageFsInfo image_filesystems[0].inodes_used)", Formula: "the runtime's own accounting, not statfs"}
	if s.InodesUsed == nil {
		inodes.Source, inodes.Formula = "omitted", "the runtime sent no inodes_used"
	}
	out = append(out, used, inodes,
		Field{Name: "time", Source: "runtime (ImageFsInfo timestamp, ns → seconds)", Formula: s.Time.UTC().Format(time.RFC3339)})
	return out
}

func partitionMountpoint(f *stats.Filesystem) string {
	if f.Lookup != nil && f.Lookup.Partition != nil {
		return f.Lookup.Partition.Mountpoint
	}
	return f.Dir
}

func gap(f *stats.Filesystem) *Gap {
	s := f.Stats
	if s == nil || s.CapacityBytes == nil || s.AvailableBytes == nil || s.UsedBytes == nil || f.Lookup == nil || f.Lookup.Statfs == nil {
		return nil
	}
	st := f.Lookup.Statfs
	reserved := uint64(st.Frsize) * (st.Bfree - min(st.Bavail, st.Bfree))
	g := &Gap{CapacityBytes: *s.CapacityBytes, UsedBytes: *s.UsedBytes, AvailableBytes: *s.AvailableBytes, ReservedBytes: reserved}
	g.OtherBytes = int64(g.CapacityBytes) - int64(g.UsedBytes) - int64(g.AvailableBytes) - int64(reserved)
	if f.Role == stats.RoleNode {
		g.Why = fmt.Sprintf("node usedBytes is capacity - free, so used + available = capacity - reserved; the %d reserved bytes (f_bfree - f_bavail blocks, usable only by root) make up the difference", reserved)
		return g
	}
	g.Why = fmt.Sprintf("usedBytes is the runtime's count of its image layers and writable layers only; statfs sees the whole filesystem: %d bytes reserved for root plus %d bytes of other data (the runtime's content store and metadata, other files on the filesystem, filesystem overhead)", reserved, g.OtherBytes)
	return g
}

// df computes what `df -B1` and `df -BKB` print for the partition's
// mountpoint: used = blocks - bfree, sizes rounded up in the kB row, use%
// = ceil(used*100 / (used + avail)), as GNU df does.
func df(p *fsinfo.Partition, st *fsinfo.Statfs) *Df {
	fr := uint64(st.Frsize)
	size, used, avail := st.Blocks*fr, (st.Blocks-st.Bfree)*fr, st.Bavail*fr
	pct := uint64(0)
	if used+avail > 0 {
		pct = ceilDiv(used*100, used+avail)
	}
	src := p.Device
	if p.Mount != nil {
		src = p.Mount.Source
	}
	return &Df{
		Filesystem: src, Mountpoint: p.Mountpoint,
		B1: DfRow{Size: size, Used: used, Available: avail, UsePercent: pct},
		KB: DfRow{Size: ceilDiv(size, 1000), Used: ceilDiv(used, 1000), Available: ceilDiv(avail, 1000), UsePercent: pct},
	}
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// runtimeData sizes the snapshotter dir (what usedBytes sums, plus
// snapshots of other namespaces), the content store and the whole root.
func runtimeData(snapshotterDir string, usage DirUsage) *RuntimeData {
	rd := &RuntimeData{SnapshotterDir: snapshotterDir}
	measure := func(dir string) (*uint64, *uint64) {
		b, n, err := usage(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // e.g. no content store: not containerd
		}
		if err != nil {
			rd.Errors = append(rd.Errors, err.Error())
			return nil, nil
		}
		return &b, &n
	}
	rd.SnapshotterBytes, rd.SnapshotterInodes = measure(snapshotterDir)
	root := filepath.Dir(snapshotterDir)
	content := filepath.Join(root, "io.containerd.content.v1.content")
	if b, _ := measure(content); b != nil {
		rd.ContentStoreDir, rd.ContentStoreBytes = content, b
	}
	rd.RootDir = root
	rd.RootBytes, _ = measure(root)
	return rd
}

func ptr[T any](v T) *T { return &v }

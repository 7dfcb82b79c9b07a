// Package stats builds node.fs, node.runtime.imageFs and
// node.runtime.containerFs exactly as the kubelet v1.37 does with a CRI
// stats provider (containerd, or CRI-O with PodAndContainerStatsFromCRI):
// used bytes and inodes from the runtime's ImageFsInfo, capacity, available
// and inodes from cadvisor's lookup of the runtime's mountpoint, and node.fs
// from cadvisor's lookup of the kubelet root directory.
package stats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/runtime"
)

// DefaultRootDir is the kubelet's default --root-dir.
const DefaultRootDir = "/var/lib/kubelet"

// Filesystem roles, in the order imagefs reports them.
const (
	RoleNode      = "node"
	RoleImage     = "image"
	RoleContainer = "container"
)

// Summary is the filesystem subset of the kubelet Summary API
// (/stats/summary), with the kubelet's own types so JSON is identical.
type Summary struct {
	Node NodeStats `json:"node"`
}

// NodeStats mirrors statsapi.NodeStats for the fields imagefs computes.
type NodeStats struct {
	NodeName string                 `json:"nodeName"`
	Fs       *statsapi.FsStats      `json:"fs,omitempty"`
	Runtime  *statsapi.RuntimeStats `json:"runtime,omitempty"`
}

// Filesystem is one reported filesystem with where each number came from.
type Filesystem struct {
	Role string `json:"role"`
	// Dir is the directory the kubelet resolves: --root-dir for node, the
	// runtime's fsId.mountpoint for image and container.
	Dir string `json:"dir"`
	// Stats is what the kubelet reports (nil when it reports nothing).
	Stats *statsapi.FsStats `json:"stats,omitempty"`
	// Lookup is cadvisor's resolution of Dir (nil when there was no Dir).
	Lookup *fsinfo.Lookup `json:"lookup,omitempty"`
	// Runtime is the CRI FilesystemUsage behind image/container.
	Runtime *criapi.FilesystemUsage `json:"runtime,omitempty"`
	// SameAs names the role whose object the kubelet reuses: with the CRI
	// stats provider containerFs is imageFs.
	SameAs string `json:"sameAs,omitempty"`
	// KubeletError is the error the kubelet's stats code would return for
	// this filesystem; it fails the whole Summary API (HTTP 500).
	KubeletError string `json:"kubeletError,omitempty"`
	// Notes explain omissions and quirks.
	Notes []string `json:"notes,omitempty"`
}

// UsedStatfs is capacity minus free from statfs (cadvisor's Usage), the
// whole-filesystem use, beside the runtime's own usedBytes.
func (f *Filesystem) UsedStatfs() *uint64 {
	if f.Lookup == nil || f.Lookup.Info == nil {
		return nil
	}
	u := f.Lookup.Info.Usage()
	return &u
}

// RuntimeInfo names the runtime and how its endpoint was chosen.
type RuntimeInfo struct {
	Endpoint          runtime.Endpoint `json:"endpoint"`
	Name              string           `json:"name"`
	Version           string           `json:"version"`
	RuntimeAPIVersion string           `json:"runtimeApiVersion"`
}

// Result is one collection: the Summary plus provenance.
type Result struct {
	Summary     Summary                     `json:"summary"`
	Runtime     RuntimeInfo                 `json:"runtime"`
	ImageFsInfo *criapi.ImageFsInfoResponse `json:"imageFsInfo,omitempty"`
	MountTable  string                      `json:"mountTable"`
	// Filesystems in role order: node, image, container.
	Filesystems []*Filesystem `json:"filesystems"`
	CollectedAt time.Time     `json:"collectedAt"`
}

// Problems returns the kubelet errors and omissions, one line each.
func (r *Result) Problems() []string {
	var out []string
	for _, f := range r.Filesystems {
		if f.SameAs != "" {
			continue
		}
		if f.KubeletError != "" {
			out = append(out, fmt.Sprintf("%s filesystem: the kubelet would fail the Summary API with %q", f.Role, f.KubeletError))
		} else if f.Stats != nil && f.Stats.CapacityBytes == nil {
			out = append(out, fmt.Sprintf("%s filesystem: the kubelet would omit capacity, available and inodes (%s)", f.Role, strings.Join(f.Notes, "; ")))
		}
	}
	return out
}

// Filesystem returns the entry for a role, or nil.
func (r *Result) Filesystem(role string) *Filesystem {
	for _, f := range r.Filesystems {
		if f.Role == role {
			return f
		}
	}
	return nil
}

// Sources are the inputs of a collection.
type Sources struct {
	Runtime  runtime.Service
	Endpoint runtime.Endpoint
	Mounts   *fsinfo.MountTable
	System   fsinfo.System
	RootDir  string
	NodeName string
	Now      func() time.Time
}

// Collect asks the runtime and the filesystems and assembles the kubelet's
// view. It fails only when the runtime cannot answer; a filesystem the
// kubelet could not resolve is recorded in its Filesystem entry.
func Collect(ctx context.Context, src Sources) (*Result, error) {
	now := src.Now
	if now == nil {
		now = time.Now
	}
	if src.Now != nil {
		src.Mounts.Clock = src.Now
	}
	res := &Result{CollectedAt: now(), MountTable: src.Mounts.Path}
	res.Summary.Node.NodeName = src.NodeName
	res.Runtime.Endpoint = src.Endpoint

	ver, err := src.Runtime.Version(ctx)
	if err != nil {
		return nil, err
	}
	res.Runtime.Name, res.Runtime.Version, res.Runtime.RuntimeAPIVersion = ver.GetRuntimeName(), ver.GetRuntimeVersion(), ver.GetRuntimeApiVersion()

	resp, err := src.Runtime.ImageFsInfo(ctx)
	if err != nil {
		return nil, err
	}
	res.ImageFsInfo = resp

	node := nodeFs(src)
	res.Summary.Node.Fs = node.Stats
	image, container := imageFs(src, resp)
	if image.Stats != nil {
		res.Summary.Node.Runtime = &statsapi.RuntimeStats{ImageFs: image.Stats, ContainerFs: container.Stats}
	}
	res.Filesystems = []*Filesystem{node, image, container}
	return res, nil
}

// nodeFs is the kubelet's RootFsStats: cadvisor RootFsInfo of --root-dir.
func nodeFs(src Sources) *Filesystem {
	f := &Filesystem{Role: RoleNode, Dir: src.RootDir}
	f.Lookup = src.Mounts.Lookup(src.RootDir, src.System)
	if f.Lookup.Err != nil {
		f.KubeletError = fmt.Sprintf("failed to get rootFs stats: failed to get rootFs info: %s", f.Lookup.Err)
		return f
	}
	info := f.Lookup.Info
	used := info.Usage()
	f.Stats = &statsapi.FsStats{
		// The kubelet stamps node.fs with cadvisor's root-cgroup sample
		// time; imagefs's sample is its own statfs.
		Time:           metav1.NewTime(info.Time),
		AvailableBytes: ptr(info.Available),
		CapacityBytes:  ptr(info.Capacity),
		UsedBytes:      &used,
		InodesFree:     info.InodesFree,
		Inodes:         info.Inodes,
	}
	if info.Inodes != nil && info.InodesFree != nil {
		f.Stats.InodesUsed = ptr(*info.Inodes - *info.InodesFree)
	}
	return f
}

// imageFs is criStatsProvider.ImageFsStats: image_filesystems[0] only,
// container_filesystems ignored, and the same object returned twice.
func imageFs(src Sources, resp *criapi.ImageFsInfoResponse) (image, container *Filesystem) {
	image = &Filesystem{Role: RoleImage}
	container = &Filesystem{Role: RoleContainer, SameAs: RoleImage}
	defer func() {
		container.Dir, container.Stats, container.Lookup, container.KubeletError = image.Dir, image.Stats, image.Lookup, image.KubeletError
		container.Notes = append(container.Notes, "the kubelet's CRI stats provider returns the imageFs object as containerFs (v1.37: \"we don't support separate disks yet\")")
		if cfs := resp.GetContainerFilesystems(); len(cfs) > 0 {
			container.Runtime = cfs[0]
			if cfs[0].GetFsId().GetMountpoint() != image.Dir {
				container.Notes = append(container.Notes, fmt.Sprintf("the runtime reports its container filesystem at %s, which the kubelet ignores", cfs[0].GetFsId().GetMountpoint()))
			}
		}
	}()

	fss := resp.GetImageFilesystems()
	if len(fss) == 0 {
		image.KubeletError = "failed to get imageFs stats: imageFs information is unavailable"
		image.Notes = append(image.Notes, "the runtime returned no image filesystem")
		return image, container
	}
	fs := fss[0]
	image.Runtime = fs
	image.Dir = fs.GetFsId().GetMountpoint()
	if len(fss) > 1 {
		image.Notes = append(image.Notes, fmt.Sprintf("the runtime returned %d image filesystems; the kubelet reads only the first", len(fss)))
	}
	image.Stats = &statsapi.FsStats{Time: metav1.NewTime(time.Unix(0, fs.GetTimestamp()))}
	if fs.UsedBytes != nil {
		image.Stats.UsedBytes = ptr(fs.UsedBytes.GetValue())
	} else {
		image.Notes = append(image.Notes, "the runtime omitted used_bytes; the kubelet v1.37 dereferences it without a nil check and would panic")
	}
	if fs.InodesUsed != nil {
		image.Stats.InodesUsed = ptr(fs.InodesUsed.GetValue())
	}
	if fs.GetFsId() == nil {
		// getFsInfo's soft path: statfs fields omitted, no error.
		image.Notes = append(image.Notes, "the runtime sent no fsId, so the kubelet omits capacity, available and inodes (\"Failed to get filesystem info: fsID is nil\")")
		return image, container
	}
	image.Lookup = src.Mounts.Lookup(image.Dir, src.System)
	if err := image.Lookup.Err; err != nil {
		// cadvisor wraps GetDirFsDevice errors with %v, so even
		// ErrDeviceNotInPartitionsMap is a hard error for the kubelet.
		image.KubeletError = fmt.Sprintf("failed to get imageFs stats: get filesystem info: Failed to get the info of the filesystem with mountpoint: %s", err)
		if errors.Is(err, fsinfo.ErrDeviceNotInPartitionsMap) {
			image.Notes = append(image.Notes, "cadvisor wraps ErrDeviceNotInPartitionsMap with %v, so the kubelet's soft path does not apply")
		}
		return image, container
	}
	info := image.Lookup.Info
	image.Stats.AvailableBytes = ptr(info.Available)
	image.Stats.CapacityBytes = ptr(info.Capacity)
	image.Stats.InodesFree = info.InodesFree
	image.Stats.Inodes = info.Inodes
	return image, container
}

func ptr[T any](v T) *T { return &v }

package stats_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

func u(v uint64) *uint64 { return &v }

func eq(a, b *uint64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

func TestCollectDedicatedImageDisk(t *testing.T) {
	res, err := collect(&criapi.ImageFsInfoResponse{ImageFilesystems: []*criapi.FilesystemUsage{usage(snapshotter, 12558336, 505)}}, "/var/lib/kubelet")
	if err != nil {
		t.Fatal(err)
	}
	node, image := res.Summary.Node.Fs, res.Summary.Node.Runtime.ImageFs
	// node.fs: everything from statfs of "/", used = (blocks - bfree) * frsize.
	for _, c := range []struct {
		name      string
		got, want *uint64
	}{
		{"node capacity", node.CapacityBytes, u(25000000 * 4096)},
		{"node available", node.AvailableBytes, u(8750000 * 4096)},
		{"node used (reserved blocks count as used)", node.UsedBytes, u((25000000 - 10000000) * 4096)},
		{"node inodes", node.Inodes, u(6400000)},
		{"node inodes free", node.InodesFree, u(6000000)},
		{"node inodes used", node.InodesUsed, u(400000)},
		// imageFs: used and inodes used from the runtime, the rest from statfs of the partition.
		{"image used (runtime)", image.UsedBytes, u(12558336)},
		{"image inodes used (runtime)", image.InodesUsed, u(505)},
		{"image capacity", image.CapacityBytes, u(26214400 * 4096)},
		{"image available", image.AvailableBytes, u(20000000 * 4096)},
		{"image inodes", image.Inodes, u(52428800)},
		{"image inodes free", image.InodesFree, u(52400000)},
	} {
		if !eq(c.got, c.want) {
			t.Errorf("%s = %v, want %d", c.name, c.got, *c.want)
		}
	}
	if !image.Time.Time.Equal(fixedNow.Add(-3 * time.Second)) {
		t.Errorf("image time = %v, want the runtime's timestamp", image.Time)
	}
	if !node.Time.Time.Equal(fixedNow) {
		t.Errorf("node time = %v, want the statfs sample time", node.Time)
	}
	if res.Summary.Node.Runtime.ContainerFs != image {
		t.Errorf("containerFs is not the imageFs object, as the CRI stats provider returns it")
	}
	if p := res.Problems(); len(p) != 0 {
		t.Errorf("problems = %v, want none", p)
	}
}

func TestCollectKubeletFailures(t *testing.T) {
	tests := []struct {
		name         string
		resp         *criapi.ImageFsInfoResponse
		rootDir      string
		role         string
		kubeletError string
		noRuntime    bool
		noCapacity   bool
		usedNil      bool
		note         string
	}{
		{name: "no image filesystems", resp: &criapi.ImageFsInfoResponse{}, rootDir: "/var/lib/kubelet", role: stats.RoleImage,
			kubeletError: "failed to get imageFs stats: imageFs information is unavailable", noRuntime: true},
		{name: "mountpoint on fuse: hard error, cadvisor's %v wrap", resp: &criapi.ImageFsInfoResponse{ImageFilesystems: []*criapi.FilesystemUsage{usage("/mnt/fuse/ctd", 1, 1)}}, rootDir: "/var/lib/kubelet", role: stats.RoleImage,
			kubeletError: `failed to get imageFs stats: get filesystem info: Failed to get the info of the filesystem with mountpoint: failed to get device for dir "/mnt/fuse/ctd": with major: 0, minor: 60: could not find device in cached partitions map`, noCapacity: true},
		{name: "mountpoint not in this mount namespace", resp: &criapi.ImageFsInfoResponse{ImageFilesystems: []*criapi.FilesystemUsage{usage("/gone", 1, 1)}}, rootDir: "/var/lib/kubelet", role: stats.RoleImage,
			kubeletError: `failed to get imageFs stats: get filesystem info: Failed to get the info of the filesystem with mountpoint: failed to get device for dir "/gone": stat failed on /gone with error: no such file or directory`, noCapacity: true},
		{name: "kubelet root dir missing", resp: &criapi.ImageFsInfoResponse{ImageFilesystems: []*criapi.FilesystemUsage{usage(snapshotter, 1, 1)}}, rootDir: "/srv/kubelet", role: stats.RoleNode,
			kubeletError: `failed to get rootFs stats: failed to get rootFs info: failed to get device for dir "/srv/kubelet": stat failed on /srv/kubelet with error: no such file or directory`},
		{name: "nil fsId: soft, capacity omitted", resp: &criapi.ImageFsInfoResponse{ImageFilesystems: []*criapi.FilesystemUsage{{Timestamp: 1, UsedBytes: &criapi.UInt64Value{Value: 7}}}}, rootDir: "/var/lib/kubelet", role: stats.RoleImage,
			noCapacity: true, note: "fsID is nil"},
		{name: "nil used_bytes: the kubelet would panic", resp: &criapi.ImageFsInfoResponse{ImageFilesystems: []*criapi.FilesystemUsage{{Timestamp: 1, FsId: &criapi.FilesystemIdentifier{Mountpoint: snapshotter}}}}, rootDir: "/var/lib/kubelet", role: stats.RoleImage,
			usedNil: true, note: "panic"},
		{name: "runtime's container filesystem ignored", resp: &criapi.ImageFsInfoResponse{
			ImageFilesystems:     []*criapi.FilesystemUsage{usage(snapshotter, 10, 1)},
			ContainerFilesystems: []*criapi.FilesystemUsage{usage("/var/lib/containerd/containers", 99, 9)}}, rootDir: "/var/lib/kubelet", role: stats.RoleContainer,
			note: "which the kubelet ignores"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := collect(tt.resp, tt.rootDir)
			if err != nil {
				t.Fatal(err)
			}
			f := res.Filesystem(tt.role)
			if f.KubeletError != tt.kubeletError {
				t.Errorf("kubelet error:\n got  %q\n want %q", f.KubeletError, tt.kubeletError)
			}
			if (res.Summary.Node.Runtime == nil) != tt.noRuntime {
				t.Errorf("runtime present = %v, want %v", res.Summary.Node.Runtime != nil, !tt.noRuntime)
			}
			if tt.noCapacity && f.Stats != nil && f.Stats.CapacityBytes != nil {
				t.Errorf("capacity = %d, want omitted", *f.Stats.CapacityBytes)
			}
			if tt.usedNil && f.Stats.UsedBytes != nil {
				t.Errorf("usedBytes = %d, want omitted", *f.Stats.UsedBytes)
			}
			if tt.note != "" && !strings.Contains(strings.Join(f.Notes, "\n"), tt.note) {
				t.Errorf("notes = %q, want one containing %q", f.Notes, tt.note)
			}
			if tt.role == stats.RoleContainer && res.Summary.Node.Runtime.ContainerFs != res.Summary.Node.Runtime.ImageFs {
				t.Errorf("containerFs differs from imageFs; the CRI stats provider returns one object")
			}
			if (tt.kubeletError != "" || tt.noCapacity) && len(res.Problems()) == 0 {
				t.Errorf("no problems reported")
			}
		})
	}
}

func TestCollectRuntimeError(t *testing.T) {
	sys := nodeSystem()
	table, _ := fsinfo.ReadMountTable("testdata/node.mountinfo", sys)
	_, err := stats.Collect(context.Background(), stats.Sources{Runtime: &fakeRuntime{err: runtime.ErrTimeout}, Mounts: table, System: sys, RootDir: "/"})
	if !errors.Is(err, runtime.ErrTimeout) {
		t.Fatalf("err = %v, want the runtime's error", err)
	}
}

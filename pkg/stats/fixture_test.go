package stats_test

import (
	"context"
	"errors"
	"time"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/fsinfo/fsinfotest"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

var dev = fsinfotest.Dev

// fakeRuntime answers CRI calls from fixed values.
type fakeRuntime struct {
	resp *criapi.ImageFsInfoResponse
	err  error
}

func (f *fakeRuntime) Version(context.Context) (*criapi.VersionResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &criapi.VersionResponse{RuntimeName: "containerd", RuntimeVersion: "v2.4.2", RuntimeApiVersion: "v1"}, nil
}
func (f *fakeRuntime) ImageFsInfo(context.Context) (*criapi.ImageFsInfoResponse, error) {
	return f.resp, f.err
}
func (f *fakeRuntime) ListImages(context.Context) ([]*criapi.Image, error) {
	return nil, errors.ErrUnsupported
}
func (f *fakeRuntime) ListContainers(context.Context) ([]*criapi.Container, error) {
	return nil, errors.ErrUnsupported
}

var _ runtime.Service = (*fakeRuntime)(nil)

// The fixture node: / on /dev/sda1, containerd on its own xfs disk
// /dev/sdb1, a fuse mount cadvisor cannot resolve.
func nodeSystem() *fsinfotest.System {
	return &fsinfotest.System{
		Stats: map[string]fsinfo.Stat{
			"/":                   {Dev: dev(8, 1)},
			"/var/lib/kubelet":    {Dev: dev(8, 1)},
			"/var/lib/containerd": {Dev: dev(8, 17)},
			"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs": {Dev: dev(8, 17)},
			"/var/lib/containerd/containers":                             {Dev: dev(8, 17)},
			"/mnt/fuse/ctd":                                              {Dev: dev(0, 60)},
		},
		Statfs_: map[string]fsinfo.Statfs{
			"/":                   {Bsize: 4096, Frsize: 4096, Blocks: 25000000, Bfree: 10000000, Bavail: 8750000, Files: 6400000, Ffree: 6000000},
			"/var/lib/containerd": {Bsize: 4096, Frsize: 4096, Blocks: 26214400, Bfree: 20000000, Bavail: 20000000, Files: 52428800, Ffree: 52400000},
		},
	}
}

var fixedNow = time.Date(2026, 12, 4, 15, 20, 31, 0, time.UTC)

const snapshotter = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"

func usage(mountpoint string, used, inodes uint64) *criapi.FilesystemUsage {
	return &criapi.FilesystemUsage{
		Timestamp:  fixedNow.Add(-3 * time.Second).UnixNano(),
		FsId:       &criapi.FilesystemIdentifier{Mountpoint: mountpoint},
		UsedBytes:  &criapi.UInt64Value{Value: used},
		InodesUsed: &criapi.UInt64Value{Value: inodes},
	}
}

func collect(resp *criapi.ImageFsInfoResponse, rootDir string) (*stats.Result, error) {
	sys := nodeSystem()
	table, err := fsinfo.ReadMountTable("testdata/node.mountinfo", sys)
	if err != nil {
		panic(err)
	}
	return stats.Collect(context.Background(), stats.Sources{
		Runtime:  &fakeRuntime{resp: resp},
		Endpoint: runtime.Endpoint{URL: "unix:///run/containerd/containerd.sock", Path: "/run/containerd/containerd.sock", Source: "autodetected"},
		Mounts:   table,
		System:   sys,
		RootDir:  rootDir,
		NodeName: "node-a",
		Now:      func() time.Time { return fixedNow },
	})
}

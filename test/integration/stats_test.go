//go:build integration && linux

package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/internal/lab"
	"github.com/imagefs/imagefs/internal/oracle"
	"github.com/imagefs/imagefs/internal/testutil"
)

// show prints an optional number.
func show(v *uint64) string {
	if v == nil {
		return "omitted"
	}
	return strconv.FormatUint(*v, 10)
}

var filesystems = []string{"ext4", "xfs", "btrfs", "tmpfs"}

// testLayers: a 1 MiB file, then 50 small files (allocated ≫ apparent).
func testLayers() [][]lab.File {
	return [][]lab.File{
		{{Path: "data/big.bin", Size: 1 << 20}},
		lab.SmallFiles("small", 50, 100),
	}
}

// importAndWait imports an offline-built image and waits until the runtime's
// usage cache shows it.
func importAndWait(t *testing.T, c *lab.Containerd, ref string, layers ...[]lab.File) *runtimeapi.ImageFsInfoResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := c.ImageFsInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Import(ctx, testutil.BuildImage(t, ref, layers...)); err != nil {
		t.Fatal(err)
	}
	resp, err := c.WaitImageFsInfo(ctx, func(r *runtimeapi.ImageFsInfoResponse) bool {
		return lab.UsedBytes(r) > lab.UsedBytes(before)
	})
	if err != nil {
		t.Fatalf("waiting for the runtime to count the image: %v\n%s", err, c.LogTail(20))
	}
	return resp
}

// checkFsStats asserts the statfs-derived fields of fs against stat -f of
// dir and cadvisor's own answer for dir, and returns the stat -f reading.
func checkFsStats(t *testing.T, role string, fs *statsapi.FsStats, dir string, s statF) {
	t.Helper()
	want := map[string]uint64{
		"capacityBytes":  s.frsize * s.blocks,
		"availableBytes": s.frsize * s.bavail,
		"inodes":         s.files,
		"inodesFree":     s.ffree,
	}
	got := map[string]*uint64{"capacityBytes": fs.CapacityBytes, "availableBytes": fs.AvailableBytes, "inodes": fs.Inodes, "inodesFree": fs.InodesFree}
	for k, w := range want {
		if got[k] == nil || *got[k] != w {
			t.Errorf("%s.%s = %s, stat -f %s says %d", role, k, show(got[k]), dir, w)
		}
	}
	ca, err := oracle.CadvisorGetDirFsInfo(dir)
	if err != nil {
		t.Fatalf("cadvisor fails for %s: %v", dir, err)
	}
	cwant := map[string]uint64{"capacityBytes": ca.Fs.Capacity, "availableBytes": ca.Fs.Available, "inodes": *ca.Fs.Inodes, "inodesFree": *ca.Fs.InodesFree}
	for k, w := range cwant {
		if got[k] == nil || *got[k] != w {
			t.Errorf("%s.%s = %s, cadvisor (device %s at %s) says %d", role, k, show(got[k]), ca.Device, ca.Mountpoint, w)
		}
	}
}

// On every filesystem and both containerd builds, imagefs stats -o json
// equals crictl's raw CRI response (used bytes, inodes, timestamp), stat -f
// of the reported mountpoint and cadvisor's fs package (capacity,
// available, inodes), and containerd's used bytes equal an independent walk
// of the snapshot directories.
func TestStatsMatchesIndependentSources(t *testing.T) {
	for _, bin := range lab.Binaries() {
		for _, fstype := range filesystems {
			t.Run(bin.Name+"/"+fstype, func(t *testing.T) {
				testutil.RequireLab(t, bin)
				m := testutil.MountFS(t, fstype, 512<<20)
				c := testutil.StartContainerd(t, bin, filepath.Join(m.Dir, "containerd"))
				importAndWait(t, c, "lab.local/imagefs/stats:v1", testLayers()...)
				rootDir := filepath.Join(m.Dir, "kubelet")
				if err := os.MkdirAll(rootDir, 0o755); err != nil {
					t.Fatal(err)
				}

				// Read crictl and stat -f before and after imagefs; retry
				// until the filesystem did not change in between.
				var (
					before, after     crictlInfo
					fsBefore, fsAfter statF
					got               summary
					mountpoint        string
				)
				for attempt := 0; ; attempt++ {
					before = crictlImageFsInfo(t, c.Endpoint)
					mountpoint = before.Status.ImageFilesystems[0].FsID.Mountpoint
					fsBefore = statFs(t, mountpoint)
					got = statsJSON(t, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
					fsAfter = statFs(t, mountpoint)
					after = crictlImageFsInfo(t, c.Endpoint)
					if fsBefore == fsAfter {
						break
					}
					if attempt == 5 {
						t.Fatalf("%s kept changing during the comparison: %+v → %+v", mountpoint, fsBefore, fsAfter)
					}
					time.Sleep(200 * time.Millisecond)
				}

				if mountpoint != c.SnapshotterDir() {
					t.Errorf("runtime mountpoint %s, want the snapshotter dir %s", mountpoint, c.SnapshotterDir())
				}
				image := got.Node.Runtime.ImageFs
				raw := after.Status.ImageFilesystems[0]
				if image.UsedBytes == nil || *image.UsedBytes != parseU(t, raw.UsedBytes.Value) || parseU(t, raw.UsedBytes.Value) != parseU(t, before.Status.ImageFilesystems[0].UsedBytes.Value) {
					t.Errorf("imageFs.usedBytes = %v, crictl says %s then %s", image.UsedBytes, before.Status.ImageFilesystems[0].UsedBytes.Value, raw.UsedBytes.Value)
				}
				if image.InodesUsed == nil || *image.InodesUsed != parseU(t, raw.InodesUsed.Value) {
					t.Errorf("imageFs.inodesUsed = %v, crictl says %s", image.InodesUsed, raw.InodesUsed.Value)
				}
				lo := parseU(t, before.Status.ImageFilesystems[0].Timestamp) / 1e9
				hi := parseU(t, raw.Timestamp) / 1e9
				if ts := uint64(image.Time.Unix()); ts < lo || ts > hi {
					t.Errorf("imageFs.time = %d, crictl timestamps %d..%d", ts, lo, hi)
				}
				duBytes, duInodes := snapshotUsage(t, mountpoint)
				if *image.UsedBytes != duBytes || *image.InodesUsed != duInodes {
					t.Errorf("runtime used %d bytes / %d inodes, snapshot dirs hold %d / %d", *image.UsedBytes, *image.InodesUsed, duBytes, duInodes)
				}
				if got.Node.Runtime.ContainerFs == nil || *got.Node.Runtime.ContainerFs.CapacityBytes != *image.CapacityBytes || *got.Node.Runtime.ContainerFs.UsedBytes != *image.UsedBytes {
					t.Errorf("containerFs %+v differs from imageFs %+v (CRI stats provider returns one object)", got.Node.Runtime.ContainerFs, image)
				}
				checkFsStats(t, "imageFs", image, mountpoint, fsBefore)
				// node.fs: the kubelet root dir, here on the same filesystem.
				checkFsStats(t, "node.fs", got.Node.Fs, rootDir, fsBefore)
				if n := got.Node.Fs; n.UsedBytes == nil || *n.UsedBytes != fsBefore.frsize*(fsBefore.blocks-fsBefore.bfree) {
					t.Errorf("node.fs.usedBytes = %v, want (blocks-bfree)*frsize = %d", n.UsedBytes, fsBefore.frsize*(fsBefore.blocks-fsBefore.bfree))
				}
				if fstype == "btrfs" && (*image.Inodes != 0 || *image.InodesFree != 0) {
					t.Errorf("btrfs inodes = %d/%d, statfs reports 0/0 on btrfs", *image.Inodes, *image.InodesFree)
				}
			})
		}
	}
}

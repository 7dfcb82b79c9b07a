//go:build integration && linux

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/imagefs/imagefs/internal/lab"
	"github.com/imagefs/imagefs/internal/oracle"
	"github.com/imagefs/imagefs/internal/testutil"
)

// stableStats runs imagefs stats -o json between two stat -f readings of
// each dir and retries until none of them changed.
func stableStats(t *testing.T, args []string, dirs ...string) (summary, []statF) {
	t.Helper()
	for attempt := 0; attempt < 6; attempt++ {
		var before, after []statF
		for _, d := range dirs {
			before = append(before, statFs(t, d))
		}
		got := statsJSON(t, args...)
		for _, d := range dirs {
			after = append(after, statFs(t, d))
		}
		same := true
		for i := range before {
			same = same && before[i] == after[i]
		}
		if same {
			return got, before
		}
	}
	t.Fatalf("%v kept changing", dirs)
	return summary{}, nil
}

// Split layout: the image store (containerd root) on ext4, the kubelet
// root dir and containerd's state on xfs. node.fs and imageFs must each
// equal their own filesystem, and the runtime's mountpoint is the
// snapshotter dir on ext4.
func TestStatsSplitLayout(t *testing.T) {
	for _, bin := range lab.Binaries() {
		t.Run(bin.Name, func(t *testing.T) {
			testutil.RequireLab(t, bin)
			images := testutil.MountFS(t, "ext4", 512<<20)
			node := testutil.MountFS(t, "xfs", 512<<20)
			c := testutil.StartContainerd(t, bin, filepath.Join(images.Dir, "containerd"))
			importAndWait(t, c, "lab.local/imagefs/split:v1", testLayers()...)
			rootDir := filepath.Join(node.Dir, "kubelet")
			if err := os.MkdirAll(rootDir, 0o755); err != nil {
				t.Fatal(err)
			}
			got, st := stableStats(t, []string{"--runtime-endpoint", c.Endpoint, "--root-dir", rootDir}, c.SnapshotterDir(), rootDir)
			checkFsStats(t, "imageFs", got.Node.Runtime.ImageFs, c.SnapshotterDir(), st[0])
			checkFsStats(t, "node.fs", got.Node.Fs, rootDir, st[1])
			if *got.Node.Fs.CapacityBytes == *got.Node.Runtime.ImageFs.CapacityBytes {
				t.Errorf("node.fs and imageFs have the same capacity on different filesystems")
			}
		})
	}
}

// The overlayfs snapshotter's root_path on another filesystem than
// containerd's root: measured, containerd 1.6 still reports
// <root>/io.containerd.snapshotter.v1.overlayfs as the mountpoint, a
// directory it never creates, so the kubelet's stat fails and the whole
// Summary with it; 2.4 reports root_path. imagefs follows whatever the
// runtime reports, as the kubelet does.
func TestStatsSnapshotterRootElsewhere(t *testing.T) {
	for _, bin := range lab.Binaries() {
		t.Run(bin.Name, func(t *testing.T) {
			testutil.RequireLab(t, bin)
			content := testutil.MountFS(t, "ext4", 512<<20)
			snaps := testutil.MountFS(t, "xfs", 512<<20)
			snapRoot := filepath.Join(snaps.Dir, "overlayfs")
			c := testutil.StartContainerd(t, bin, filepath.Join(content.Dir, "containerd"), func(cfg *lab.Config) { cfg.SnapshotterRoot = snapRoot })
			resp := importAndWait(t, c, "lab.local/imagefs/snaproot:v1", testLayers()...)
			mp := resp.GetImageFilesystems()[0].GetFsId().GetMountpoint()
			want := snapRoot
			if bin.Name == "containerd-1.6" {
				want = filepath.Join(content.Dir, "containerd", "io.containerd.snapshotter.v1.overlayfs")
			}
			if mp != want {
				t.Fatalf("%s reports mountpoint %s, measured behaviour is %s", bin.Name, mp, want)
			}
			rootDir := filepath.Join(content.Dir, "kubelet")
			os.MkdirAll(rootDir, 0o755)
			if bin.Name == "containerd-1.6" {
				if _, err := oracle.CadvisorGetDirFsInfo(mp); err == nil || !strings.Contains(err.Error(), "stat failed") {
					t.Fatalf("cadvisor on %s: %v, want a stat failure", mp, err)
				}
				_, errOut, code := runImagefs(t, "stats", "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
				if code != 3 || !strings.Contains(errOut, "does not exist in this mount namespace") || !strings.Contains(errOut, "stat failed on "+mp) {
					t.Fatalf("imagefs stats exit %d, stderr %s", code, errOut)
				}
				return
			}
			got, st := stableStats(t, []string{"--runtime-endpoint", c.Endpoint, "--root-dir", rootDir}, mp)
			checkFsStats(t, "imageFs", got.Node.Runtime.ImageFs, mp, st[0])
		})
	}
}

// containerd's root inside a btrfs subvolume: st_dev is the subvolume's
// anonymous device, unknown to the partition map, so cadvisor (and imagefs)
// find the btrfs mount by walking up the mount table.
func TestStatsBtrfsSubvolume(t *testing.T) {
	bin := lab.Binaries()[len(lab.Binaries())-1]
	testutil.RequireLab(t, bin)
	m := testutil.MountFS(t, "btrfs", 512<<20)
	sub := filepath.Join(m.Dir, "sub")
	if out, err := exec.Command("btrfs", "subvolume", "create", sub).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v\n%s", err, out)
	}
	c := testutil.StartContainerd(t, bin, filepath.Join(sub, "containerd"))
	importAndWait(t, c, "lab.local/imagefs/subvol:v1", testLayers()...)
	var mst, sst unix.Stat_t
	unix.Stat(m.Dir, &mst)
	unix.Stat(c.SnapshotterDir(), &sst)
	if mst.Dev == sst.Dev {
		t.Fatalf("subvolume shares st_dev with the mount; the test needs distinct devices")
	}
	ca, err := oracle.CadvisorGetDirFsInfo(c.SnapshotterDir())
	if err != nil {
		t.Fatalf("cadvisor: %v", err)
	}
	got, st := stableStats(t, []string{"--runtime-endpoint", c.Endpoint, "--root-dir", m.Dir}, c.SnapshotterDir())
	checkFsStats(t, "imageFs", got.Node.Runtime.ImageFs, c.SnapshotterDir(), st[0])
	out, _, _ := runImagefs(t, "explain", "imagefs", "-o", "json", "--runtime-endpoint", c.Endpoint, "--root-dir", m.Dir)
	if !strings.Contains(out, `"via": "mount table fallback"`) || !strings.Contains(out, `"device": "`+ca.Device+`"`) {
		t.Errorf("explain does not show the mount-table fallback to %s:\n%s", ca.Device, out)
	}
}

// containerd's root reached through a bind mount: the partition map keeps
// the first mount of the device, so statfs is taken at the original mount.
func TestStatsThroughBindMount(t *testing.T) {
	bin := lab.Binaries()[len(lab.Binaries())-1]
	testutil.RequireLab(t, bin)
	m := testutil.MountFS(t, "xfs", 512<<20)
	bind := t.TempDir()
	if err := os.MkdirAll(filepath.Join(m.Dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(filepath.Join(m.Dir, "data"), bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(bind, unix.MNT_DETACH) })
	c := testutil.StartContainerd(t, bin, filepath.Join(bind, "containerd"))
	importAndWait(t, c, "lab.local/imagefs/bind:v1", testLayers()...)
	ca, err := oracle.CadvisorGetDirFsInfo(c.SnapshotterDir())
	if err != nil {
		t.Fatal(err)
	}
	if ca.Mountpoint != m.Dir {
		t.Fatalf("cadvisor measures %s, want the first mount %s", ca.Mountpoint, m.Dir)
	}
	got, st := stableStats(t, []string{"--runtime-endpoint", c.Endpoint, "--root-dir", bind}, c.SnapshotterDir())
	checkFsStats(t, "imageFs", got.Node.Runtime.ImageFs, c.SnapshotterDir(), st[0])
	out, _, _ := runImagefs(t, "explain", "imagefs", "-o", "json", "--runtime-endpoint", c.Endpoint, "--root-dir", bind)
	if !strings.Contains(out, `"mountpoint": "`+m.Dir+`"`) {
		t.Errorf("explain does not name the first mount %s as the partition:\n%s", m.Dir, out)
	}
}

//go:build integration && linux

// Real-runtime tests of the lab: every containerd build on every filesystem.
// Run as root: go test -tags integration -count=1 ./internal/lab/...
// All tests and subtests are parallel: each instance is independent (own
// mount, root, socket), and most of the time is spent waiting.
package lab_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imagefs/imagefs/internal/lab"
	"github.com/imagefs/imagefs/internal/testutil"
)

var filesystems = []string{"ext4", "xfs", "btrfs", "tmpfs"}

// fsSize: xfsprogs 6.x refuses filesystems under 300 MB; sparse, so cheap.
const fsSize = 512 << 20

const overlayDir = "io.containerd.snapshotter.v1.overlayfs"

// testImage is the doc's test image, scaled down: one layer with a 1 MiB
// file, one with 50 small files (allocated size dominated by block rounding).
func testImage(t *testing.T, ref string) string {
	return testutil.BuildImage(t, ref,
		[]lab.File{{Path: "data/big.bin", Size: 1 << 20}},
		lab.SmallFiles("small", 50, 100))
}

func TestImageFsInfoMatchesSnapshots(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	tar := testImage(t, "lab.local/imagefs/test:v1")
	for _, b := range lab.Binaries() {
		for _, fstype := range filesystems {
			t.Run(b.Name+"/"+fstype, func(t *testing.T) {
				testutil.RequireLab(t, b)
				t.Parallel()
				m := testutil.MountFS(t, fstype, fsSize)
				if fstype != "tmpfs" && !strings.HasPrefix(m.Device, "/dev/loop") {
					t.Errorf("device of %s = %q, want a /dev/loopN read back from mountinfo", fstype, m.Device)
				}
				root := filepath.Join(m.Dir, "containerd")
				start := time.Now()
				c := testutil.StartContainerd(t, b, root)
				t.Logf("ready in %v", time.Since(start).Round(time.Millisecond))
				importImage(t, c, tar)

				want := walkSnapshots(t, c.SnapshotterDir())
				fsu := waitUsage(t, c, want)
				if got := fsu.GetFsId().GetMountpoint(); got != filepath.Join(root, overlayDir) {
					t.Errorf("mountpoint = %q, want %q", got, filepath.Join(root, overlayDir))
				}
				if c.SnapshotterDir() != filepath.Join(root, overlayDir) {
					t.Errorf("SnapshotterDir() = %q", c.SnapshotterDir())
				}
			})
		}
	}
}

// TestSplitSnapshotterRoot moves the overlayfs root_path to a second
// filesystem. Snapshots (and usedBytes) follow it in both builds, but the
// reported mountpoint differs: 1.6 always reports <root>/<overlay dir>;
// 2.x reports the snapshotter's exported root, i.e. root_path.
func TestSplitSnapshotterRoot(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	tar := testImage(t, "lab.local/imagefs/split:v1")
	for _, b := range lab.Binaries() {
		t.Run(b.Name, func(t *testing.T) {
			testutil.RequireLab(t, b)
			t.Parallel()
			rootFS := testutil.MountFS(t, "tmpfs", fsSize)
			snapFS := testutil.MountFS(t, "ext4", fsSize)
			root := filepath.Join(rootFS.Dir, "containerd")
			snapRoot := filepath.Join(snapFS.Dir, "overlayfs")
			c := testutil.StartContainerd(t, b, root, func(cfg *lab.Config) { cfg.SnapshotterRoot = snapRoot })
			if c.SnapshotterDir() != snapRoot {
				t.Fatalf("SnapshotterDir() = %q, want %q", c.SnapshotterDir(), snapRoot)
			}
			importImage(t, c, tar)
			if dirs, _ := filepath.Glob(filepath.Join(root, overlayDir, "snapshots", "*")); len(dirs) > 0 {
				t.Errorf("snapshots landed under root, not root_path: %v", dirs)
			}
			fsu := waitUsage(t, c, walkSnapshots(t, snapRoot))
			wantMP := map[string]string{
				"containerd-1.6": filepath.Join(root, overlayDir),
				"containerd-2.4": snapRoot,
			}[b.Name]
			if got := fsu.GetFsId().GetMountpoint(); got != wantMP {
				t.Errorf("mountpoint = %q, want %q", got, wantMP)
			}
		})
	}
}

// TestSideBySide runs both builds at once on one filesystem: each sees only
// its own images and snapshots; stopping one leaves the other serving.
func TestSideBySide(t *testing.T) {
	bins := lab.Binaries()
	for _, b := range bins {
		testutil.RequireLab(t, b)
	}
	t.Parallel()
	m := testutil.MountFS(t, "tmpfs", fsSize)
	var cs []*lab.Containerd
	for i, b := range bins {
		c := testutil.StartContainerd(t, b, filepath.Join(m.Dir, b.Name))
		// Different sizes, so mixing up the instances shows in the numbers.
		importImage(t, c, testutil.BuildImage(t, "lab.local/imagefs/side:v"+strconv.Itoa(i),
			lab.RandomLayers(int64(i), int64(i+1)<<20)...))
		cs = append(cs, c)
	}
	var used []uint64
	for _, c := range cs {
		fsu := waitUsage(t, c, walkSnapshots(t, c.SnapshotterDir()))
		if got := fsu.GetFsId().GetMountpoint(); got != filepath.Join(c.Root, overlayDir) {
			t.Errorf("%s: mountpoint %q, want its own root", c.Binary.Name, got)
		}
		used = append(used, fsu.GetUsedBytes().GetValue())
	}
	if used[0] == used[1] {
		t.Errorf("both instances report %d usedBytes; each should count only its own image", used[0])
	}
	if err := cs[0].Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := criUsage(context.Background(), cs[1]); err != nil {
		t.Errorf("%s stopped serving when %s stopped: %v", cs[1].Binary.Name, cs[0].Binary.Name, err)
	}
}

// TestStopLeavesNothing runs a pod (shim, pause process, mounts), then stops
// the instance: normally; after a crash (SIGKILL leaves shim, processes and
// mounts behind; Stop restarts containerd so CRI removes the pod); and after a
// crash that cannot be restarted (config gone), where Stop falls back to
// killing the shim, runc delete --force in its own runc root and unmounting.
// That last mode leaves the killed shim's 0-byte socket in the shared
// /run/containerd/s, which the lab never touches, so it runs for one build only.
func TestStopLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs the static busybox for a pause image: %v; %s", err, lab.InstallHint)
	}
	pause := filepath.Join(t.TempDir(), "pause.tar")
	const pauseRef = "lab.local/imagefs/pause:v1"
	if err := lab.BuildImageWithConfig(pause, pauseRef,
		lab.ImageConfig{Entrypoint: []string{"/bin/busybox", "sleep", "100000"}},
		[]lab.File{{Path: "bin/busybox", Content: busybox, Mode: 0o755}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range lab.Binaries() {
		modes := []string{"graceful", "crashed"}
		if b.Name == "containerd-1.6" {
			modes = append(modes, "crashed-no-restart")
		}
		for _, mode := range modes {
			crash := mode != "graceful"
			t.Run(b.Name+"/"+mode, func(t *testing.T) {
				testutil.RequirePods(t, b)
				t.Parallel()
				m := testutil.MountFS(t, "tmpfs", fsSize)
				c := testutil.StartContainerd(t, b, filepath.Join(m.Dir, "containerd"),
					func(cfg *lab.Config) { cfg.SandboxImage = pauseRef })
				importImage(t, c, pause)
				podID := runPod(t, c)
				pausePID := runcPID(t, c, podID)

				// Sanity: there is something to clean up.
				if shims, _ := lab.ShimPIDs(c.Socket); len(shims) == 0 {
					t.Fatal("no shim running for the pod")
				}
				if mounts, _ := lab.MountsUnder(c.Dir); len(mounts) == 0 {
					t.Fatal("no pod mounts under the instance dir")
				}
				if crash {
					if err := syscall.Kill(c.PID, syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					waitGone(t, c.PID)
				}
				if mode == "crashed-no-restart" {
					if err := os.Remove(c.ConfigPath()); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				if err := c.Stop(); err != nil {
					t.Fatal(err)
				}
				t.Logf("Stop took %v", time.Since(start).Round(time.Millisecond))
				if mode == "crashed" {
					if log, _ := os.ReadFile(c.LogPath); strings.Count(string(log), "successfully booted") < 2 {
						t.Error("Stop did not restart the crashed containerd to remove its pods")
					}
				}
				if alive(c.PID) {
					t.Errorf("containerd PID %d still alive", c.PID)
				}
				if alive(pausePID) {
					t.Errorf("pause process %d still alive", pausePID)
				}
				if shims, _ := lab.ShimPIDs(c.Socket); len(shims) > 0 {
					t.Errorf("shims still running: %v", shims)
				}
				for _, d := range []string{c.Dir, c.Root} {
					if mounts, _ := lab.MountsUnder(d); len(mounts) > 0 {
						t.Errorf("mounts left under %s: %v", d, mounts)
					}
				}
				if err := c.Stop(); err != nil {
					t.Errorf("second Stop: %v", err)
				}
			})
		}
	}
}

// TestStartFailsFastWithoutCRI: with the snapshotter root read-only the
// overlayfs plugin fails, so the CRI plugin does not load and every CRI call
// is Unimplemented. StartContainerd must say so quickly, not wait 30 s.
func TestStartFailsFastWithoutCRI(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	for _, b := range lab.Binaries() {
		t.Run(b.Name, func(t *testing.T) {
			testutil.RequireLab(t, b)
			t.Parallel()
			m := testutil.MountFS(t, "tmpfs", 16<<20)
			ro := testutil.MountFS(t, "tmpfs", 16<<20)
			if out, err := exec.Command("mount", "-o", "remount,ro", ro.Dir).CombinedOutput(); err != nil {
				t.Fatalf("remount ro: %v: %s", err, out)
			}
			dir, err := os.MkdirTemp("", "ifs-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			start := time.Now()
			c, err := lab.StartContainerd(context.Background(), lab.Config{
				Binary: b, Root: filepath.Join(m.Dir, "containerd"), Dir: dir, SnapshotterRoot: ro.Dir,
			})
			took := time.Since(start)
			if err == nil {
				c.Stop()
				t.Fatal("StartContainerd succeeded with a read-only snapshotter root")
			}
			t.Logf("failed after %v: %.300s", took.Round(time.Millisecond), err)
			if !strings.Contains(err.Error(), "serves no CRI") || !strings.Contains(err.Error(), "log tail") {
				t.Errorf("error should name the missing CRI and quote the log: %v", err)
			}
			if took > 10*time.Second {
				t.Errorf("took %v: Unimplemented must fail fast", took)
			}
			if mounts, _ := lab.MountsUnder(dir); len(mounts) > 0 {
				t.Errorf("mounts left: %v", mounts)
			}
		})
	}
}

func importImage(t *testing.T, c *lab.Containerd, tar string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Import(ctx, tar); err != nil {
		t.Fatal(err)
	}
}

type usage struct{ bytes, inodes uint64 }

// walkSnapshots is the oracle: st_blocks*512 and inode count over
// <snapshotter dir>/snapshots/*/fs, each (dev, ino) once, the fs dirs included
// (what du -sB1 / du --inodes report, and what CRI sums).
func walkSnapshots(t *testing.T, snapDir string) usage {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(snapDir, "snapshots", "*", "fs"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no snapshots under %s (%v): import did not unpack", snapDir, err)
	}
	type key struct{ dev, ino uint64 }
	seen := map[key]bool{}
	var u usage
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				return err
			}
			k := key{uint64(st.Dev), st.Ino}
			if !seen[k] {
				seen[k] = true
				u.bytes += uint64(st.Blocks) * 512
				u.inodes++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// criUsage calls ImageFsInfo over its own gRPC connection (independent of the
// lab's client) with a 2 s deadline.
func criUsage(ctx context.Context, c *lab.Containerd) (*runtimeapi.FilesystemUsage, error) {
	conn, err := grpc.NewClient(c.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := runtimeapi.NewImageServiceClient(conn).ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, err
	}
	if len(resp.GetImageFilesystems()) == 0 {
		return nil, errors.New("no image filesystems in ImageFsInfo")
	}
	return resp.GetImageFilesystems()[0], nil
}

// waitUsage polls ImageFsInfo (cached, refreshed every stats_collect_period =
// 1 s) until usedBytes is non-zero and equal to want, for at most 15 s, then
// checks bytes and inodes against the walk.
func waitUsage(t *testing.T, c *lab.Containerd, want usage) *runtimeapi.FilesystemUsage {
	t.Helper()
	start := time.Now()
	deadline := start.Add(15 * time.Second)
	var fsu *runtimeapi.FilesystemUsage
	var err error
	for time.Now().Before(deadline) {
		fsu, err = criUsage(context.Background(), c)
		if err == nil && fsu.GetUsedBytes().GetValue() > 0 &&
			fsu.GetUsedBytes().GetValue() == want.bytes && fsu.GetInodesUsed().GetValue() == want.inodes {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ImageFsInfo: %v", err)
	}
	got := usage{fsu.GetUsedBytes().GetValue(), fsu.GetInodesUsed().GetValue()}
	if got.bytes == 0 {
		t.Fatalf("usedBytes still 0 after 15 s (snapshot walk: %+v)", want)
	}
	if got != want {
		t.Errorf("ImageFsInfo usedBytes/inodesUsed = %d/%d, snapshot walk = %d/%d",
			got.bytes, got.inodes, want.bytes, want.inodes)
	} else {
		t.Logf("usedBytes %d, inodesUsed %d after %v", got.bytes, got.inodes, time.Since(start).Round(time.Millisecond))
	}
	return fsu
}

// runPod starts a host-network pod sandbox (no CNI needed) and returns its ID.
func runPod(t *testing.T, c *lab.Containerd) string {
	t.Helper()
	conn, err := grpc.NewClient(c.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{
		Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "stop-test", Namespace: "lab", Uid: "uid-" + strconv.Itoa(c.PID)},
			Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			}},
		},
	})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	return resp.GetPodSandboxId()
}

// runcPID reads the pod's init PID from the instance's own runc root.
func runcPID(t *testing.T, c *lab.Containerd, id string) int {
	t.Helper()
	out, err := exec.Command("runc", "--root", filepath.Join(c.Dir, "runc", "k8s.io"), "state", id).Output()
	if err != nil {
		t.Fatalf("runc state %s: %v", id, err)
	}
	i := strings.Index(string(out), `"pid":`)
	if i < 0 {
		t.Fatalf("no pid in runc state: %s", out)
	}
	f := strings.FieldsFunc(string(out[i+len(`"pid":`):]), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		t.Fatalf("bad pid in runc state: %s", out)
	}
	return pid
}

// alive: the process exists and is not a zombie (orphans may wait a while
// for PID 1 to reap them).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	t.Fatalf("PID %d did not exit", pid)
}

//go:build integration && linux

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imagefs/imagefs/internal/lab"
	"github.com/imagefs/imagefs/internal/oracle"
	"github.com/imagefs/imagefs/internal/testutil"
)

type finding struct {
	Check    string   `json:"check"`
	Severity string   `json:"severity"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence"`
	Fix      string   `json:"fix"`
}

type doctorReport struct {
	Findings []finding `json:"findings"`
	Worst    string    `json:"worst"`
}

func (r doctorReport) get(t *testing.T, check string) finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("no finding %q in %+v", check, r)
	return finding{}
}

// doctor runs imagefs doctor -o json (optionally through a wrapper such as
// unshare) and decodes it; the exit code is returned beside.
func doctor(t *testing.T, wrap []string, args ...string) (doctorReport, int) {
	t.Helper()
	argv := append(append([]string{}, wrap...), append([]string{imagefsBin, "doctor", "-o", "json"}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r doctorReport
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("decode doctor JSON (exit %d): %v\nstdout: %s\nstderr: %s", code, err, out.String(), errOut.String())
	}
	return r, code
}

func expect(t *testing.T, r doctorReport, check, severity, phrase string) {
	t.Helper()
	f := r.get(t, check)
	all := f.Summary + " " + strings.Join(f.Evidence, " ")
	if f.Severity != severity || !strings.Contains(all, phrase) {
		t.Errorf("%s = %s %q %q, want %s mentioning %q", check, f.Severity, f.Summary, f.Evidence, severity, phrase)
	}
}

// newRuntime starts containerd 2.4 with its root (and the kubelet root dir)
// under base and imports one image.
func newRuntime(t *testing.T, base string, opts ...func(*lab.Config)) (*lab.Containerd, string) {
	t.Helper()
	bin := lab.Binaries()[len(lab.Binaries())-1]
	testutil.RequireLab(t, bin)
	c := testutil.StartContainerd(t, bin, filepath.Join(base, "containerd"), opts...)
	importAndWait(t, c, "lab.local/imagefs/doctor:v1", testLayers()...)
	rootDir := filepath.Join(base, "kubelet")
	if err := os.MkdirAll(rootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return c, rootDir
}

// mountSpecial mounts a filesystem the harness does not make, removed in cleanup.
func mountSpecial(t *testing.T, fstype, data string) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount(fstype, dir, fstype, 0, data); err != nil {
		t.Fatalf("mount %s: %v", fstype, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// fillTo writes a preallocated file until the filesystem's available bytes
// fall to frac of its capacity (root may use the reserved blocks too).
func fillTo(t *testing.T, dir string, frac float64) {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	capacity, avail := uint64(s.Frsize)*s.Blocks, uint64(s.Frsize)*s.Bavail
	target := uint64(float64(capacity) * frac)
	if avail <= target {
		return
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("fill-%d", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(avail-target)); err != nil {
		t.Fatalf("fallocate: %v", err)
	}
}

func TestDoctorHealthy(t *testing.T) {
	m := testutil.MountFS(t, "ext4", 512<<20)
	c, _ := newRuntime(t, m.Dir)
	other := testutil.MountFS(t, "xfs", 512<<20)
	r, code := doctor(t, nil, "--runtime-endpoint", c.Endpoint, "--root-dir", other.Dir)
	if code != 0 || r.Worst != "ok" {
		t.Fatalf("healthy node: exit %d, worst %s: %+v", code, r.Worst, r)
	}
	expect(t, r, "shared-device", "ok", "dedicated image filesystem")
}

// The runtime root on ramfs: no cadvisor plugin, no /dev/ source, so the
// kubelet cannot resolve the mountpoint, exactly as cadvisor itself fails.
func TestDoctorDeviceNotInPartitionMap(t *testing.T) {
	dir := mountSpecial(t, "ramfs", "")
	c, rootDir := newRuntime(t, dir)
	if _, err := oracle.CadvisorGetDirFsInfo(c.SnapshotterDir()); err == nil || !strings.Contains(err.Error(), "could not find device in cached partitions map") {
		t.Fatalf("cadvisor says %v, want a partition-map failure", err)
	}
	r, code := doctor(t, nil, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
	if code != 4 {
		t.Errorf("exit %d, want 4 (fail)", code)
	}
	expect(t, r, "imagefs-capacity", "fail", "no plugin for ramfs")
	// imagefs stats reports the same omission and exits 3.
	out, errOut, code := runImagefs(t, "stats", "-o", "json", "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
	if code != 3 {
		t.Errorf("stats exit %d, want 3; stderr %s", code, errOut)
	}
	var s summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Node.Runtime.ImageFs.CapacityBytes != nil || s.Node.Runtime.ImageFs.UsedBytes == nil {
		t.Errorf("imageFs = %+v, want usedBytes without capacity", s.Node.Runtime.ImageFs)
	}
	if !strings.Contains(errOut, "not in cadvisor's partition map") {
		t.Errorf("stderr %q does not explain the partition map", errOut)
	}
}

// imagefs run in a mount namespace where the runtime's filesystem is not
// mounted: the runtime's mountpoint does not exist there.
func TestDoctorMountpointInvisible(t *testing.T) {
	m := testutil.MountFS(t, "xfs", 512<<20)
	c, _ := newRuntime(t, m.Dir)
	wrap := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", `umount -l "$0" && exec "$@"`, m.Dir}
	r, code := doctor(t, wrap, "--runtime-endpoint", c.Endpoint, "--root-dir", "/")
	if code != 4 {
		t.Errorf("exit %d, want 4", code)
	}
	expect(t, r, "runtime-imagefs", "fail", "does not exist in this mount namespace")
	expect(t, r, "imagefs-capacity", "fail", "not visible in this mount namespace")
}

func TestDoctorTmpfsRoot(t *testing.T) {
	m := testutil.MountFS(t, "tmpfs", 512<<20)
	c, rootDir := newRuntime(t, m.Dir)
	r, code := doctor(t, nil, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
	if code != 3 {
		t.Errorf("exit %d, want 3 (warn)", code)
	}
	expect(t, r, "unexpected-fs", "warn", "is on tmpfs")
}

// Filling the shared filesystem: first into image GC's range (available
// under 16%), then under the imagefs and nodefs eviction thresholds.
func TestDoctorBytePressure(t *testing.T) {
	m := testutil.MountFS(t, "ext4", 512<<20)
	c, rootDir := newRuntime(t, m.Dir)
	fillTo(t, m.Dir, 0.155)
	r, code := doctor(t, nil, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
	if code != 3 {
		t.Errorf("at 15.5%% free: exit %d, want 3", code)
	}
	expect(t, r, "byte-pressure", "warn", "image GC runs now")
	expect(t, r, "shared-device", "warn", "share")

	fillTo(t, m.Dir, 0.09)
	r, code = doctor(t, nil, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
	if code != 4 {
		t.Errorf("at 9%% free: exit %d, want 4", code)
	}
	expect(t, r, "byte-pressure", "fail", "imagefs.available: available")
	expect(t, r, "byte-pressure", "fail", "MET")
	f := r.get(t, "byte-pressure")
	if n := strings.Count(strings.Join(f.Evidence, "\n"), "MET"); n != 2 {
		t.Errorf("want both nodefs.available and imagefs.available met, evidence %q", f.Evidence)
	}
}

// A tmpfs with few inodes, filled with empty files until under 5% free.
func TestDoctorInodePressure(t *testing.T) {
	dir := mountSpecial(t, "tmpfs", "size=256m,nr_inodes=3000")
	c, rootDir := newRuntime(t, dir)
	fill := filepath.Join(dir, "many")
	if err := os.Mkdir(fill, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		var s unix.Statfs_t
		if err := unix.Statfs(dir, &s); err != nil {
			t.Fatal(err)
		}
		if s.Ffree*100 < s.Files*4 {
			break
		}
		if err := os.WriteFile(filepath.Join(fill, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, code := doctor(t, nil, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
	if code != 4 {
		t.Errorf("exit %d, want 4", code)
	}
	expect(t, r, "inode-pressure", "fail", "imagefs.inodesFree")
}

// containerd's default 10 s refresh: usage a few seconds old is stale for
// a 2 s limit.
func TestDoctorStaleUsage(t *testing.T) {
	m := testutil.MountFS(t, "ext4", 512<<20)
	c, rootDir := newRuntime(t, m.Dir, func(cfg *lab.Config) { cfg.StatsCollectPeriod = 10 })
	deadline := time.Now().Add(25 * time.Second)
	for {
		r, _ := doctor(t, nil, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir, "--stale-after", "2s")
		if f := r.get(t, "stale-usage"); f.Severity == "warn" {
			expect(t, r, "stale-usage", "warn", "older than 2s")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage never older than 2s with a 10 s refresh: %+v", r.get(t, "stale-usage"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// An image imported into another namespace takes disk that containerd's
// usedBytes (k8s.io only) does not count.
func TestDoctorUncountedUsage(t *testing.T) {
	m := testutil.MountFS(t, "xfs", 512<<20)
	c, rootDir := newRuntime(t, m.Dir)
	tar := testutil.BuildImage(t, "lab.local/imagefs/other-namespace:v1", lab.RandomLayers(7, 24<<20)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.Binary.Ctr, "-a", c.Socket, "-n", "default", "images", "import", tar).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr -n default import: %v\n%s", err, out)
	}
	r, code := doctor(t, nil, "--runtime-endpoint", c.Endpoint, "--root-dir", rootDir)
	if code != 3 {
		t.Errorf("exit %d, want 3", code)
	}
	expect(t, r, "usage-accounting", "warn", "under half")
}

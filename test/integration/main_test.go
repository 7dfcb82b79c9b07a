//go:build integration && linux

// Package integration runs imagefs against real containerd instances (the
// Debian 1.6 build and 2.4.2 built from its module) whose roots live on
// loop-mounted ext4, xfs, btrfs and tmpfs, and checks every number against
// sources read independently at the same moment: crictl's raw CRI
// response, stat -f (coreutils) and cadvisor's own fs package.
package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// imagefsBin is the imagefs binary built for this test run.
var imagefsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imagefs-it-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	imagefsBin = filepath.Join(dir, "imagefs")
	build := exec.Command("go", "build", "-o", imagefsBin, "github.com/imagefs/imagefs/cmd/imagefs")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building imagefs:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// summary is the JSON imagefs stats -o json prints.
type summary struct {
	Node struct {
		NodeName string                 `json:"nodeName"`
		Fs       *statsapi.FsStats      `json:"fs"`
		Runtime  *statsapi.RuntimeStats `json:"runtime"`
	} `json:"node"`
}

// runImagefs runs the built binary and returns stdout, stderr and the exit code.
func runImagefs(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(imagefsBin, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run imagefs: %v", err)
	}
	return out.String(), errOut.String(), code
}

func statsJSON(t *testing.T, args ...string) summary {
	t.Helper()
	out, errOut, code := runImagefs(t, append([]string{"stats", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("imagefs stats exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var s summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("decode imagefs JSON: %v\n%s", err, out)
	}
	return s
}

// crictlFs is one filesystem of crictl imagefsinfo -o json (protojson: 64-bit
// integers as strings).
type crictlFs struct {
	Timestamp string `json:"timestamp"`
	FsID      struct {
		Mountpoint string `json:"mountpoint"`
	} `json:"fsId"`
	UsedBytes  *struct{ Value string } `json:"usedBytes"`
	InodesUsed *struct{ Value string } `json:"inodesUsed"`
}

type crictlInfo struct {
	Status struct {
		ImageFilesystems     []crictlFs `json:"imageFilesystems"`
		ContainerFilesystems []crictlFs `json:"containerFilesystems"`
	} `json:"status"`
}

// crictlImageFsInfo asks the runtime through crictl, an independent CRI client.
func crictlImageFsInfo(t *testing.T, endpoint string) crictlInfo {
	t.Helper()
	cmd := exec.Command("crictl", "--runtime-endpoint", endpoint, "--timeout", "5s", "imagefsinfo", "-o", "json")
	out, err := cmd.Output() // crictl warns about a missing /etc/crictl.yaml on stderr
	if err != nil {
		t.Fatalf("crictl imagefsinfo: %v", err)
	}
	var info crictlInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("decode crictl JSON: %v\n%s", err, out)
	}
	if len(info.Status.ImageFilesystems) == 0 {
		t.Fatalf("crictl: no image filesystems:\n%s", out)
	}
	return info
}

func parseU(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// statF is coreutils `stat -f` of a path: fundamental block size (f_frsize),
// blocks, free, available, inodes, free inodes.
type statF struct{ frsize, blocks, bfree, bavail, files, ffree uint64 }

func statFs(t *testing.T, path string) statF {
	t.Helper()
	out, err := exec.Command("stat", "-f", "-c", "%S %b %f %a %c %d", path).Output()
	if err != nil {
		t.Fatalf("stat -f %s: %v", path, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 6 {
		t.Fatalf("stat -f %s: %q", path, out)
	}
	return statF{parseU(t, f[0]), parseU(t, f[1]), parseU(t, f[2]), parseU(t, f[3]), parseU(t, f[4]), parseU(t, f[5])}
}

// snapshotUsage is what containerd's overlayfs snapshotter sums into
// ImageFsInfo, measured here independently: over snapshots/*/fs, allocated
// bytes (st_blocks*512) and inodes, each (dev, ino) once.
func snapshotUsage(t *testing.T, snapshotterDir string) (bytes, inodes uint64) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(snapshotterDir, "snapshots", "*", "fs"))
	bytes, inodes, err := diskUsage(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	return bytes, inodes
}

// walkUsage is diskUsage of one directory, tolerating errors.
func walkUsage(dir string) (bytes, inodes uint64) {
	bytes, inodes, _ = diskUsage(dir)
	return bytes, inodes
}

// diskUsage is allocated bytes and inodes under dirs, each (dev, ino) once
// across all of them, not crossing into other filesystems. It walks on past
// errors and returns the first.
func diskUsage(dirs ...string) (bytes, inodes uint64, firstErr error) {
	type key struct{ dev, ino uint64 }
	seen := map[key]bool{}
	for _, dir := range dirs {
		root, err := os.Lstat(dir)
		if err != nil {
			return 0, 0, err
		}
		rootDev := root.Sys().(*syscall.Stat_t).Dev
		_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("walk %s: %w", p, err)
				}
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Dev != rootDev {
				if fi.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if k := (key{st.Dev, st.Ino}); !seen[k] {
				seen[k] = true
				bytes += uint64(st.Blocks) * 512
				inodes++
			}
			return nil
		})
	}
	return bytes, inodes, firstErr
}

// devOf returns major:minor of a path as the kernel reports it.
func devOf(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
}

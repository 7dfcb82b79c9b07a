//go:build linux

package walk

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/continuity/fs"

	"github.com/imagefs/imagefs/pkg/analyze/walk/gentree"
)

// The oracles. continuity v0.5.0 fs.DiskUsage is the definition (containerd
// v2.4.2's overlayfs snapshotter Usage); coreutils du agrees with it on
// AllocatedBytes (du -s -B1), Inodes (du -s --inodes) and, for
// ApparentBytes, du -sb, wherever their rules coincide: one walk per root,
// symlinks not followed, every readable entry once by (dev, ino). They do
// not coincide, and the tests do not compare, when
//   - a mount is inside the tree: continuity crosses it, du -x and Walk's
//     default do not (Walk{CrossFilesystems: true} = continuity = du
//     without -x, as long as no directory is reachable twice);
//   - a directory is reachable twice (a bind mount of a directory of the
//     tree): continuity and Walk count its inodes once, du counts them on
//     every path (it dedups only non-directories with st_nlink > 1);
//   - an entry cannot be read: continuity fails the whole call, du and Walk
//     count the rest and report it (exit 1 / ErrorCount);
//   - symlinks are followed: continuity never follows; du -L drops links
//     it cannot resolve, Walk counts them as themselves;
//   - a path is longer than PATH_MAX: continuity (filepath.Walk) fails with
//     ENAMETOOLONG, du and Walk descend with relative opens.

// checkOracle compares a walk of dir (symlinks not followed, mounts crossed
// or no mounts inside) with continuity and, if duToo, coreutils du.
func checkOracle(t *testing.T, dir string, got Totals, duToo bool) {
	t.Helper()
	u, err := fs.DiskUsage(context.Background(), dir)
	if err != nil {
		t.Fatalf("continuity DiskUsage(%s): %v", dir, err)
	}
	if got.AllocatedBytes != uint64(u.Size) || got.Inodes != uint64(u.Inodes) {
		t.Errorf("Walk: %d bytes, %d inodes; continuity DiskUsage: %d bytes, %d inodes",
			got.AllocatedBytes, got.Inodes, u.Size, u.Inodes)
	}
	if !duToo {
		return
	}
	if _, err := exec.LookPath("du"); err != nil {
		t.Log("coreutils du not installed: not compared")
		return
	}
	for _, c := range []struct {
		args []string
		got  uint64
	}{
		{[]string{"-s", "-B1"}, got.AllocatedBytes},
		{[]string{"-s", "--inodes"}, got.Inodes},
		{[]string{"-sb"}, got.ApparentBytes},
	} {
		if want := du(t, append(c.args, dir)...); want[0] != c.got {
			t.Errorf("du %s: %d, Walk: %d", strings.Join(c.args, " "), want[0], c.got)
		}
	}
}

// du runs coreutils du and returns the first column of each line.
func du(t testing.TB, args ...string) []uint64 {
	t.Helper()
	out, err := exec.Command("du", args...).Output()
	if err != nil {
		t.Fatalf("du %v: %v", args, err)
	}
	var n []uint64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f, _, _ := strings.Cut(line, "\t")
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("du %v: %q: %v", args, line, err)
		}
		n = append(n, v)
	}
	return n
}

func TestOracleTrees(t *testing.T) {
	for _, tt := range trees {
		if !tt.oracle {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				requireRoot(t, "mknod whiteouts and set trusted.* xattrs")
			}
			dir := t.TempDir()
			tt.build(t, dir)
			got, err := walkOne(t, dir, tt.opts)
			noErr(t, err)
			checkOracle(t, dir, got, true)
		})
	}
}

// TestOracleGenerated compares every snapshot of a generated snapshotter
// tree, and their sum (what CRI ImageFsInfo sums), with continuity and du.
func TestOracleGenerated(t *testing.T) {
	entries := 15000
	if testing.Short() {
		entries = 3000
	}
	requireRoot(t, "generate whiteouts (mknod) and opaque dirs (trusted.* xattrs)")
	out := t.TempDir()
	m, err := gentree.Generate(out, gentree.Options{Entries: entries, Seed: 42, Layers: 25})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := filepath.Glob(filepath.Join(out, "snapshots", "*", "fs"))
	if err != nil || len(roots) != 25 {
		t.Fatalf("%d snapshot fs dirs, err %v", len(roots), err)
	}
	res, err := Walk(context.Background(), roots, Options{})
	noErr(t, err)
	var sum Totals
	var wantSize, wantInodes int64
	for _, r := range roots {
		got := res[r]
		if got.ErrorCount != 0 || got.SkippedMountCount != 0 {
			t.Errorf("%s: %d errors %v, %d mounts skipped", r, got.ErrorCount, got.Errors, got.SkippedMountCount)
		}
		checkOracle(t, r, got, false)
		u, err := fs.DiskUsage(context.Background(), r)
		noErr(t, err)
		wantSize += u.Size
		wantInodes += u.Inodes
		sum.Add(got)
	}
	if sum.AllocatedBytes != uint64(wantSize) || sum.Inodes != uint64(wantInodes) {
		t.Errorf("Σ Walk: %d bytes, %d inodes; Σ continuity: %d, %d", sum.AllocatedBytes, sum.Inodes, wantSize, wantInodes)
	}
	// One du for all roots: hard links never cross layers, so du's
	// cross-argument dedup changes nothing.
	if _, err := exec.LookPath("du"); err == nil {
		for _, c := range []struct {
			flags []string
			get   func(Totals) uint64
		}{
			{[]string{"-s", "-B1"}, func(t Totals) uint64 { return t.AllocatedBytes }},
			{[]string{"-s", "--inodes"}, func(t Totals) uint64 { return t.Inodes }},
			{[]string{"-sb"}, func(t Totals) uint64 { return t.ApparentBytes }},
		} {
			got := du(t, append(c.flags, roots...)...)
			for i, r := range roots {
				if got[i] != c.get(res[r]) {
					t.Errorf("du %v %s: %d, Walk: %d", c.flags, r, got[i], c.get(res[r]))
				}
			}
		}
	}
	// What the generator made is what the walker recognised.
	if sum.Whiteouts == 0 || sum.OpaqueDirs != uint64(m.Counts.OpaqueDirs) || sum.WhiteoutFiles != uint64(m.Counts.WhiteoutFiles) {
		t.Errorf("whiteouts %d, opaque %d, .wh. files %d; generated %+v", sum.Whiteouts, sum.OpaqueDirs, sum.WhiteoutFiles, m.Counts)
	}
	if sum.Dirs != uint64(m.Counts.Dirs)+25 || sum.Symlinks != uint64(m.Counts.Symlinks) {
		t.Errorf("dirs %d, symlinks %d; generated %+v (+25 roots)", sum.Dirs, sum.Symlinks, m.Counts)
	}
}

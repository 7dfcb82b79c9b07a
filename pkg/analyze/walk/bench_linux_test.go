//go:build linux

package walk

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/containerd/continuity/fs"

	"github.com/imagefs/imagefs/pkg/analyze/walk/gentree"
)

// benchTree is one generated 100k-entry snapshotter tree shared by the
// benchmarks of a run (generating it takes seconds). Set
// IMAGEFS_BENCH_TREE to a tree made by imagefs-gentree to use it instead.
var benchTree struct {
	once  sync.Once
	roots []string
	err   error
}

func benchRoots(b *testing.B) []string {
	b.Helper()
	benchTree.once.Do(func() {
		out := os.Getenv("IMAGEFS_BENCH_TREE")
		if out == "" {
			var err error
			if out, err = os.MkdirTemp("", "imagefs-walk-bench-"); err != nil {
				benchTree.err = err
				return
			}
			// b.TempDir is per benchmark; this tree outlives them, removed
			// by TestMain.
			benchDirs = append(benchDirs, out)
			_, benchTree.err = gentree.Generate(out, gentree.Options{Entries: 100000, Seed: 1})
		}
		benchTree.roots, _ = filepath.Glob(filepath.Join(out, "snapshots", "*", "fs"))
	})
	if benchTree.err != nil {
		b.Fatal(benchTree.err)
	}
	return benchTree.roots
}

var benchDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// BenchmarkWalk walks the 40 snapshots of a 100k-entry tree (warm cache:
// the first iteration warms it) with 1 worker up to 8×GOMAXPROCS.
func BenchmarkWalk(b *testing.B) {
	roots := benchRoots(b)
	for _, workers := range []int{1, 2, 4, 8, 16} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			var inodes uint64
			for b.Loop() {
				res, err := Walk(context.Background(), roots, Options{Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				inodes = 0
				for _, t := range res {
					inodes += t.Inodes
				}
			}
			b.ReportMetric(float64(inodes)*float64(b.N)/b.Elapsed().Seconds(), "inodes/s")
		})
	}
}

// BenchmarkContinuity is the reference: continuity's DiskUsage per
// snapshot, as containerd calls it.
func BenchmarkContinuity(b *testing.B) {
	roots := benchRoots(b)
	for b.Loop() {
		for _, r := range roots {
			if _, err := fs.DiskUsage(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
	}
}

//go:build linux

package gentree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// listing describes a tree by what a walker sees: names, types, sizes,
// link counts and targets, and opaque marks; not inode numbers or times.
func listing(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d %d", rel, fi.Mode(), fi.Size(), st.Nlink)
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		if fi.Mode()&fs.ModeDevice != 0 {
			line += fmt.Sprintf(" rdev %d", st.Rdev)
		}
		if fi.IsDir() {
			for _, x := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
				v := make([]byte, 4)
				if n, err := syscall.Getxattr(p, x, v); err == nil {
					line += " " + x + "=" + string(v[:n])
				}
			}
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestDeterministic(t *testing.T) {
	o := Options{Entries: 3000, Seed: 11, Layers: 6, LargeFiles: 2}
	a, b := t.TempDir(), t.TempDir()
	o.Workers = 1
	ma, err := Generate(a, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Workers = 8
	mb, err := Generate(b, o)
	if err != nil {
		t.Fatal(err)
	}
	if ma != mb {
		t.Errorf("manifests differ:\n%+v\n%+v", ma, mb)
	}
	if la, lb := listing(t, a), listing(t, b); la != lb {
		t.Errorf("same seed, different trees")
	}
	if ma.Counts.Names != o.Entries {
		t.Errorf("%d names, want %d", ma.Counts.Names, o.Entries)
	}
	if !ma.Matches(Options{Entries: 3000, Seed: 11, Layers: 6, LargeFiles: 2}) || ma.Matches(Options{Entries: 3000, Seed: 12, Layers: 6, LargeFiles: 2}) {
		t.Errorf("Matches is wrong for %+v", ma.Options)
	}
	m, err := ReadManifest(a)
	if err != nil || m != ma {
		t.Errorf("ReadManifest: %+v, %v", m, err)
	}
	c := t.TempDir()
	o.Seed = 12
	if _, err := Generate(c, o); err != nil {
		t.Fatal(err)
	}
	if listing(t, a) == listing(t, c) {
		t.Errorf("seeds 11 and 12 made the same tree")
	}
	if _, err := Generate(a, o); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Generate into a non-empty dir: %v, want ErrNotEmpty", err)
	}
}

// TestContents checks the tree has what walkers trip on.
func TestContents(t *testing.T) {
	out := t.TempDir()
	m, err := Generate(out, Options{Entries: 20000, Seed: 1, Layers: 10, LargeFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := m.Counts
	if c.Dirs == 0 || c.Files == 0 || c.Symlinks == 0 || c.HardLinks == 0 || c.WhiteoutFiles == 0 || c.OpaqueDirs == 0 || c.FIFOs == 0 || c.SparseFiles != 1 {
		t.Errorf("counts %+v: want every kind", c)
	}
	if !m.Unprivileged && c.Whiteouts == 0 {
		t.Errorf("no whiteouts generated as root: %+v", c)
	}
	if _, err := os.Readlink(filepath.Join(out, "snapshots", "1", "fs", "loop-a")); err != nil {
		t.Errorf("layer 1 has no symlink loop: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(out, "snapshots", "1", "fs", "cycle", "up")); err != nil || target != ".." {
		t.Errorf("layer 1 has no directory loop: %q, %v", target, err)
	}
	for i := 1; i <= 10; i++ {
		if fi, err := os.Stat(filepath.Join(out, "snapshots", fmt.Sprint(i), "work")); err != nil || !fi.IsDir() {
			t.Errorf("snapshot %d has no work dir: %v", i, err)
		}
	}
}

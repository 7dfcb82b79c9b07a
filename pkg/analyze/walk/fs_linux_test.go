//go:build linux

package walk

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagefs/imagefs/pkg/analyze/walk/gentree"
)

// TestFilesystems walks a generated snapshotter tree and an 8000-entry
// directory (1.3 MB of dirents: many getdents64 calls) on the filesystems
// containerd's snapshotter dir usually lives on, and compares with
// continuity and du.
func TestFilesystems(t *testing.T) {
	requireRoot(t, "mkfs and mount loop filesystems")
	for _, fstype := range []string{"ext4", "xfs", "btrfs", "tmpfs"} {
		t.Run(fstype, func(t *testing.T) {
			mnt := t.TempDir()
			if fstype == "tmpfs" {
				mount(t, "tmpfs", mnt, "tmpfs", 0, "size=1g")
			} else {
				mkfs, err := exec.LookPath("mkfs." + fstype)
				if err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatalf("mkfs.%s not installed", fstype)
					}
					t.Skipf("mkfs.%s not installed", fstype)
				}
				img := filepath.Join(t.TempDir(), fstype+".img")
				f, err := os.Create(img)
				must(t, err)
				must(t, f.Truncate(1<<30))
				must(t, f.Close())
				args := []string{"-q", img}
				if fstype == "btrfs" {
					args = []string{"-q", "-f", img}
				}
				if out, err := exec.Command(mkfs, args...).CombinedOutput(); err != nil {
					t.Fatalf("mkfs.%s: %v\n%s", fstype, err, out)
				}
				if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
					t.Fatalf("mount %s: %v\n%s", img, err, out)
				}
				t.Cleanup(func() {
					if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
						t.Errorf("umount %s: %v\n%s", mnt, err, out)
					}
				})
			}
			tree := filepath.Join(mnt, "tree")
			if _, err := gentree.Generate(tree, gentree.Options{Entries: 4000, Seed: 3, Layers: 4, LargeFiles: -1}); err != nil {
				t.Fatal(err)
			}
			big := filepath.Join(mnt, "big")
			must(t, os.Mkdir(big, 0o755))
			for i := range 8000 {
				n := fmt.Sprintf("%s-%06d", strings.Repeat("n", 40+i%200), i)
				must(t, os.WriteFile(filepath.Join(big, n), nil, 0o644))
			}
			roots, _ := filepath.Glob(filepath.Join(tree, "snapshots", "*", "fs"))
			roots = append(roots, big, mnt)
			res, err := Walk(context.Background(), roots, Options{})
			noErr(t, err)
			for _, r := range roots {
				got := res[r]
				if got.ErrorCount != 0 {
					t.Errorf("%s: errors %v", r, got.Errors)
				}
				checkOracle(t, r, got, true)
			}
			if n := res[big].Files; n != 8000 {
				t.Errorf("big dir: %d files, want 8000", n)
			}
		})
	}
}

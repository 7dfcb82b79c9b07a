//go:build linux

package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// dirUsage is allocated bytes and inodes of a tree, each inode once, not
// crossing into other filesystems: the rules of containerd's usage walk.
func dirUsage(dir string) (bytes, inodes uint64, err error) {
	root, err := os.Lstat(dir)
	if err != nil {
		return 0, 0, err
	}
	rootDev := root.Sys().(*syscall.Stat_t).Dev
	type key struct{ dev, ino uint64 }
	seen := map[key]struct{}{}
	walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable entries are skipped, not fatal
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Dev != rootDev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		k := key{st.Dev, st.Ino}
		if _, dup := seen[k]; dup {
			return nil
		}
		seen[k] = struct{}{}
		bytes += uint64(st.Blocks) * 512
		inodes++
		return nil
	})
	return bytes, inodes, walkErr
}

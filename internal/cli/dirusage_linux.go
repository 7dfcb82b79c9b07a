//go:build linux

package cli

import (
	"context"

	"github.com/imagefs/imagefs/pkg/analyze/walk"
)

// dirUsage is allocated bytes and inodes of a tree, each inode once, not
// crossing into other filesystems: containerd's usage rules, measured by
// the du walker. Unreadable entries are skipped, not fatal.
func dirUsage(dir string) (bytes, inodes uint64, err error) {
	totals, err := walk.Walk(context.Background(), []string{dir}, walk.Options{})
	if err != nil {
		return 0, 0, err
	}
	t := totals[dir]
	return t.AllocatedBytes, t.Inodes, nil
}

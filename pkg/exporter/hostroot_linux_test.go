//go:build linux

package exporter_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imagefs/imagefs/pkg/exporter"
)

// HostRoot resolves paths inside the root, absolute symlinks and ".."
// included, as the host would resolve them.
func TestHostRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"var/lib/kubelet", "data/only-in-root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// An absolute symlink, as on a host where the kubelet root was moved.
	if err := os.Symlink("/data/only-in-root", filepath.Join(root, "var/lib/moved")); err != nil {
		t.Fatal(err)
	}
	h, err := exporter.NewHostRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	statOf := func(p string) unix.Stat_t {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}

	st, err := h.Stat("/var/lib/kubelet")
	if want := statOf(filepath.Join(root, "var/lib/kubelet")); err != nil || st.Dev != want.Dev || st.Mode != want.Mode {
		t.Errorf("Stat(/var/lib/kubelet) = %+v, %v; want dev %d mode %o", st, err, want.Dev, want.Mode)
	}
	// The symlink's target is taken inside the root, not in this process's /.
	if _, err := os.Stat(filepath.Join(root, "var/lib/moved")); err == nil {
		t.Fatal("test setup: /data/only-in-root exists outside the root")
	}
	if !h.Exists("/var/lib/moved") {
		t.Error("Exists(/var/lib/moved) false: the absolute symlink was not resolved inside the root")
	}
	// ".." does not climb out of the root.
	if st, err := h.Stat("/../../.."); err != nil || st.Dev != statOf(root).Dev {
		t.Errorf("Stat(/../../..) = %+v, %v; want the root itself", st, err)
	}
	if _, err := h.Stat("/nope"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Stat(/nope): %v, want ENOENT", err)
	}
	if h.Exists("/nope") {
		t.Error("Exists(/nope) true")
	}
	s, err := h.Statfs("/var/lib/kubelet", time.Second)
	var want unix.Statfs_t
	if err := unix.Statfs(root, &want); err != nil {
		t.Fatal(err)
	}
	if err != nil || s.Blocks != want.Blocks || s.Files != want.Files || s.Type != int64(want.Type) {
		t.Errorf("Statfs = %+v, %v; want statfs of the root's filesystem %+v", s, err, want)
	}
	if _, err := exporter.NewHostRoot(filepath.Join(root, "missing")); err == nil {
		t.Error("NewHostRoot of a missing directory succeeded")
	}
}

// Package testutil wraps internal/lab for tests: a private containerd on a
// throwaway filesystem per test, cleaned up by t.Cleanup, plus a golden-file
// helper.
package testutil

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/imagefs/imagefs/internal/lab"
)

// RequireRoot skips the test unless it runs as root. Under CI=true it fails
// instead: a green CI must mean the real runtime was exercised.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	need(t, "needs root to mount loop filesystems and run containerd: run `sudo go test -tags integration ./...`")
}

// RequireLab is RequireRoot plus b's binaries being installed, with the same
// CI rule.
func RequireLab(t testing.TB, b lab.Binary) {
	t.Helper()
	RequireRoot(t)
	if err := b.Available(); err != nil {
		need(t, err.Error())
	}
}

func need(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// MountFS mounts a fresh fstype filesystem of size bytes under t.TempDir()
// and unmounts it (and removes its image) when the test ends. The Cleanup is
// registered after TempDir's own, so it runs first (LIFO): the mount is gone
// before the temp dir is removed.
func MountFS(t testing.TB, fstype string, size int64) *lab.Mount {
	t.Helper()
	dir := t.TempDir()
	m, err := lab.MountFS(fstype, filepath.Join(dir, "img"), filepath.Join(dir, "mnt"), size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

// StartContainerd starts a private containerd b with its root at root and
// stops it when the test ends; opts adjust the Config. The instance dir is a
// short os.MkdirTemp("", "ifs-") dir, not t.TempDir(): t.TempDir paths carry
// the test name and can push the socket past the 108-byte unix socket limit.
// If the test failed, the log tail is printed before stopping.
func StartContainerd(t testing.TB, b lab.Binary, root string, opts ...func(*lab.Config)) *lab.Containerd {
	t.Helper()
	dir, err := os.MkdirTemp("", "ifs-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := lab.Config{Binary: b, Root: root, Dir: dir}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := lab.StartContainerd(ctx, cfg)
	if err != nil {
		removeInstanceDir(t, dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail (%s):\n%s", c.Binary.Name, c.LogPath, c.LogTail(40))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("cleanup: %v", err)
			return // keep the dir: something may still be mounted in it
		}
		removeInstanceDir(t, dir)
	})
	return c
}

// removeInstanceDir removes an instance dir unless something is still mounted
// below it (RemoveAll would descend into the mount).
func removeInstanceDir(t testing.TB, dir string) {
	t.Helper()
	if left, err := lab.MountsUnder(dir); err != nil || len(left) > 0 {
		t.Errorf("not removing %s: still mounted below it: %v %v", dir, left, err)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// BuildImage writes a docker-archive of ref with the given layers into a
// temp dir and returns its path.
func BuildImage(t testing.TB, ref string, layers ...[]lab.File) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), unsafeChars.ReplaceAllString(ref, "_")+".tar")
	if err := lab.BuildImage(path, ref, layers...); err != nil {
		t.Fatal(err)
	}
	return path
}

// RequirePods is RequireLab plus what running pods needs (b's own shim, runc),
// with the same CI rule.
func RequirePods(t testing.TB, b lab.Binary) {
	t.Helper()
	RequireLab(t, b)
	if err := b.ShimAvailable(); err != nil {
		need(t, err.Error())
	}
}

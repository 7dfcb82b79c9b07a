//go:build linux

package cli

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDuSkipsMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to mount a tmpfs")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	duWrite(t, dir+"/f", 4096)
	mnt := dir + "/mnt"
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	duWrite(t, mnt+"/big", 1<<20)

	r := runDuCmd(t, "--bytes", "-o", "json", dir)
	if r.code != ExitOK || !strings.Contains(r.errOut, "skipped 1 mount point(s) under "+dir) || !strings.Contains(r.errOut, mnt) {
		t.Errorf("exit %d, stderr %q: want 0 and the mount named", r.code, r.errOut)
	}
	if want := coreutilsDu(t, "-sx", "-B1", dir); !strings.Contains(r.out, `"allocatedBytes": `+strconv.FormatUint(want, 10)) {
		t.Errorf("want du -x's %d bytes in\n%s", want, r.out)
	}
	r = runDuCmd(t, "--cross-filesystems", "-o", "json", dir)
	if want := coreutilsDu(t, "-s", "-B1", dir); r.code != ExitOK || r.errOut != "" || !strings.Contains(r.out, `"allocatedBytes": `+strconv.FormatUint(want, 10)) {
		t.Errorf("--cross-filesystems: exit %d, stderr %q; want du's %d bytes in\n%s", r.code, r.errOut, want, r.out)
	}
}

// TestDuRegistered checks that imagefs itself has the du command, once
// root.go adds it.

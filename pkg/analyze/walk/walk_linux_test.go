//go:build linux

package walk

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs root (mknod, trusted.* xattrs,
// mount); under CI=true it fails instead, so a green CI ran it.
func requireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs root to %s: run the tests as root", why)
	}
	t.Skipf("needs root to %s", why)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, path string, size int) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, make([]byte, size), 0o644))
}

func mkdirs(t testing.TB, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
}

func symlink(t testing.TB, target, path string) {
	t.Helper()
	must(t, os.Symlink(target, path))
}

func walkOne(t testing.TB, root string, o Options) (Totals, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Walk(ctx, []string{root}, o)
	return res[root], err
}

// blocks is st_blocks*512 of path, as continuity counts it.
func blocks(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(path, &st))
	return uint64(st.Blocks) * 512
}

func mount(t testing.TB, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	must(t, unix.Mount(source, target, fstype, flags, data))
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
}

// tree is a crafted tree: build makes it in dir; check verifies a walk of
// it; oracle says whether continuity's DiskUsage and coreutils du must
// agree with it (see oracle_linux_test.go).
type tree struct {
	name   string
	root   bool // needs root to build
	build  func(t *testing.T, dir string)
	opts   Options
	check  func(t *testing.T, dir string, got Totals, err error)
	oracle bool
}

func wantCounts(t *testing.T, got Totals, want map[string]uint64) {
	t.Helper()
	fields := map[string]uint64{
		"inodes": got.Inodes, "files": got.Files, "dirs": got.Dirs, "symlinks": got.Symlinks,
		"whiteouts": got.Whiteouts, "whiteoutFiles": got.WhiteoutFiles, "opaque": got.OpaqueDirs,
		"other": got.Other, "hardLinked": got.HardLinked, "errors": got.ErrorCount,
		"skippedMounts": got.SkippedMountCount,
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s = %d, want %d (totals %+v)", k, fields[k], v, got)
		}
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
}

var trees = []tree{
	{
		name:  "empty root",
		build: func(*testing.T, string) {},
		check: func(t *testing.T, dir string, got Totals, err error) {
			noErr(t, err)
			wantCounts(t, got, map[string]uint64{"inodes": 1, "dirs": 1, "files": 0})
			if want := blocks(t, dir); got.AllocatedBytes != want {
				t.Errorf("AllocatedBytes = %d, want the root's own %d", got.AllocatedBytes, want)
			}
		},
		oracle: true,
	},
	{
		name: "hard links across directories counted once",
		build: func(t *testing.T, dir string) {
			write(t, dir+"/a/f", 10000)
			mkdirs(t, dir, "b/c")
			must(t, os.Link(dir+"/a/f", dir+"/b/c/g"))
			must(t, os.Link(dir+"/a/f", dir+"/a/h"))
			write(t, dir+"/b/single", 100)
		},
		check: func(t *testing.T, dir string, got Totals, err error) {
			noErr(t, err)
			// root, a, b, b/c, the linked inode, single
			wantCounts(t, got, map[string]uint64{"inodes": 6, "files": 2, "dirs": 4, "hardLinked": 1})
			want := blocks(t, dir) + blocks(t, dir+"/a") + blocks(t, dir+"/b") + blocks(t, dir+"/b/c") +
				blocks(t, dir+"/a/f") + blocks(t, dir+"/b/single")
			if got.AllocatedBytes != want {
				t.Errorf("AllocatedBytes = %d, want %d (the linked file once)", got.AllocatedBytes, want)
			}
		},
		oracle: true,
	},
	{
		name: "many hard links to many files",
		build: func(t *testing.T, dir string) {
			for i := range 200 {
				f := filepath.Join(dir, "src", string(rune('a'+i%26)), "f"+itoa(i))
				write(t, f, i*37)
				for j := range 3 {
					l := filepath.Join(dir, "links"+itoa(j), "l"+itoa(i))
					must(t, os.MkdirAll(filepath.Dir(l), 0o755))
					must(t, os.Link(f, l))
				}
			}
		},
		check: func(t *testing.T, dir string, got Totals, err error) {
			noErr(t, err)
			wantCounts(t, got, map[string]uint64{"files": 200, "hardLinked": 200, "dirs": 1 + 1 + 26 + 3})
		},
		oracle: true,
	},
	{
		name: "sparse file: allocated much less than apparent",
		build: func(t *testing.T, dir string) {
			f, err := os.Create(dir + "/sparse")
			must(t, err)
			must(t, f.Truncate(1<<30))
			_, err = f.WriteAt(make([]byte, 4096), 1<<29)
			must(t, err)
			must(t, f.Close())
		},
		check: func(t *testing.T, dir string, got Totals, err error) {
			noErr(t, err)
			if got.ApparentBytes < 1<<30 || got.AllocatedBytes > 1<<20 {
				t.Errorf("apparent %d, allocated %d: want ≥ 1 GiB apparent, ≤ 1 MiB allocated", got.ApparentBytes, got.AllocatedBytes)
			}
		},
		oracle: true,
	},
	{
		name: "symlink loops are not followed",
		build: func(t *testing.T, dir string) {
			symlink(t, "b", dir+"/a")
			symlink(t, "a", dir+"/b")
			symlink(t, "self", dir+"/self")
			mkdirs(t, dir, "d")
			symlink(t, "..", dir+"/d/up")
			symlink(t, "/nonexistent/target", dir+"/dangling")
		},
		check: func(t *testing.T, dir string, got Totals, err error) {
			noErr(t, err)
			wantCounts(t, got, map[string]uint64{"inodes": 7, "dirs": 2, "symlinks": 5, "errors": 0})
		},
		oracle: true,
	},
	{
		name: "symlink loops followed: ELOOP listed, directory loop walked once",
		build: func(t *testing.T, dir string) {
			symlink(t, "b", dir+"/a")
			symlink(t, "a", dir+"/b")
			symlink(t, "self", dir+"/self")
			mkdirs(t, dir, "d/e")
			symlink(t, "..", dir+"/d/up")
			symlink(t, "../..", dir+"/d/e/upup")
			symlink(t, "/nonexistent/target", dir+"/dangling")
			write(t, dir+"/d/e/f", 5000)
			symlink(t, "d/e/f", dir+"/tof")
		},
		opts: Options{FollowSymlinks: true},
		check: func(t *testing.T, dir string, got Totals, err error) {
			noErr(t, err)
			// root, d, e, f, and the four links that resolve to nothing
			// (a, b, self: ELOOP; dangling) counted as themselves.
			wantCounts(t, got, map[string]uint64{"inodes": 8, "dirs": 3, "files": 1, "symlinks": 7, "errors": 3})
			for _, e := range got.Errors {
				if !errors.Is(e, unix.ELOOP) || e.Op != "stat (follow)" {
					t.Errorf("error %v, want ELOOP on stat (follow)", e)
				}
			}
		},
	},
	{
		name: "symlinks to directories followed, inside and outside the root",
		build: func(t *testing.T, dir string) {
			write(t, dir+"/in/real/a", 3000)
			write(t, dir+"/in/real/b", 3000)
			write(t, dir+"/out/x/y", 5000)
			mkdirs(t, dir, "in/links")
			symlink(t, "../real", dir+"/in/links/toreal")
			symlink(t, dir+"/out/x", dir+"/in/links/toout")
		},
		check: func(t *testing.T, dir string, _ Totals, _ error) {
			got, err := walkOne(t, dir+"/in", Options{FollowSymlinks: true})
			noErr(t, err)
			// in, real, a, b, links, x (through toout), y; real once.
			wantCounts(t, got, map[string]uint64{"inodes": 7, "dirs": 4, "files": 3, "symlinks": 2, "errors": 0})
			got, err = walkOne(t, dir+"/in", Options{})
			noErr(t, err)
			wantCounts(t, got, map[string]uint64{"inodes": 7, "dirs": 3, "files": 2, "symlinks": 2})
		},
	},
	{
		name:  "whiteouts, opaque directories and .wh. files",
		root:  true,
		build: buildOverlayTree,
		check: func(t *testing.T, dir string, got Totals, err error) {
			noErr(t, err)
			// root, work, fs, o1, o2, plain; wh1, wh2, the shared whiteout
			// (3 names, 1 inode); .wh.gone, .wh..wh..opq; null, fifo.
			wantCounts(t, got, map[string]uint64{
				"inodes": 13, "dirs": 6, "whiteouts": 3, "whiteoutFiles": 2, "files": 2,
				"opaque": 2, "other": 2, "hardLinked": 1,
			})
		},
		oracle: true,
	},
	{
		name: "root is a file",
		build: func(t *testing.T, dir string) {
			write(t, dir+"/only", 3000)
		},
		check: func(t *testing.T, dir string, _ Totals, _ error) {
			got, err := walkOne(t, dir+"/only", Options{})
			noErr(t, err)
			wantCounts(t, got, map[string]uint64{"inodes": 1, "files": 1})
		},
	},
	{
		name: "root is a symlink: the link alone, or its target when following",
		build: func(t *testing.T, dir string) {
			write(t, dir+"/target/a", 3000)
			write(t, dir+"/target/b", 3000)
			symlink(t, "target", dir+"/link")
		},
		check: func(t *testing.T, dir string, _ Totals, _ error) {
			got, err := walkOne(t, dir+"/link", Options{})
			noErr(t, err)
			wantCounts(t, got, map[string]uint64{"inodes": 1, "symlinks": 1, "dirs": 0})
			got, err = walkOne(t, dir+"/link", Options{FollowSymlinks: true})
			noErr(t, err)
			wantCounts(t, got, map[string]uint64{"inodes": 3, "symlinks": 1, "dirs": 1, "files": 2})
		},
	},
	{
		name: "path longer than PATH_MAX",
		build: func(t *testing.T, dir string) {
			fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
			must(t, err)
			seg := strings.Repeat("x", 200)
			for range 30 { // 30 × 201 > 4096
				must(t, unix.Mkdirat(fd, seg, 0o755))
				nfd, err := unix.Openat(fd, seg, unix.O_DIRECTORY|unix.O_RDONLY, 0)
				must(t, err)
				unix.Close(fd)
				fd = nfd
			}
			ffd, err := unix.Openat(fd, "deep-file", unix.O_CREAT|unix.O_WRONLY, 0o644)
			must(t, err)
			_, err = unix.Write(ffd, make([]byte, 9000))
			must(t, err)
			unix.Close(ffd)
			unix.Close(fd)
			t.Cleanup(func() { removeDeep(dir, seg) })
		},
		check: func(t *testing.T, dir string, got Totals, err error) {
			noErr(t, err)
			wantCounts(t, got, map[string]uint64{"inodes": 32, "dirs": 31, "files": 1, "errors": 0})
		},
	},
}

// removeDeep removes a chain too deep for os.RemoveAll's paths.
func removeDeep(dir, seg string) {
	var fds []int
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	for err == nil {
		fds = append(fds, fd)
		fd, err = unix.Openat(fd, seg, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	}
	for i := len(fds) - 1; i >= 0; i-- {
		unix.Unlinkat(fds[i], "deep-file", 0)
		unix.Unlinkat(fds[i], seg, unix.AT_REMOVEDIR)
		unix.Close(fds[i])
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// buildOverlayTree makes what overlayfs leaves in a snapshot dir:
// whiteouts (char 0:0), one of them linked thrice as overlayfs ≥ 5.8
// does, opaque dirs in both xattr namespaces, and OCI-style .wh. files.
func buildOverlayTree(t *testing.T, dir string) {
	mkdirs(t, dir, "work", "fs/o1", "fs/o2", "fs/plain")
	must(t, unix.Mknod(dir+"/fs/wh1", unix.S_IFCHR, 0))
	must(t, unix.Mknod(dir+"/fs/plain/wh2", unix.S_IFCHR, 0))
	must(t, unix.Mknod(dir+"/work/#shared", unix.S_IFCHR, 0))
	must(t, os.Link(dir+"/work/#shared", dir+"/fs/o1/gone1"))
	must(t, os.Link(dir+"/work/#shared", dir+"/fs/o2/gone2"))
	must(t, unix.Setxattr(dir+"/fs/o1", "trusted.overlay.opaque", []byte("y"), 0))
	must(t, unix.Setxattr(dir+"/fs/o2", "user.overlay.opaque", []byte("y"), 0))
	must(t, unix.Setxattr(dir+"/fs/plain", "user.other", []byte("y"), 0))
	write(t, dir+"/fs/.wh.gone", 0)
	write(t, dir+"/fs/plain/.wh..wh..opq", 0)
	must(t, unix.Mknod(dir+"/fs/null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mkfifo(dir+"/fs/fifo", 0o644))
}

func TestWalkTrees(t *testing.T) {
	for _, tt := range trees {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				requireRoot(t, "mknod whiteouts and set trusted.* xattrs")
			}
			dir := t.TempDir()
			tt.build(t, dir)
			got, err := walkOne(t, dir, tt.opts)
			tt.check(t, dir, got, err)
			// The result does not depend on the number of workers.
			for _, n := range []int{1, 3, 16} {
				o := tt.opts
				o.Workers = n
				again, err2 := walkOne(t, dir, o)
				if (err == nil) != (err2 == nil) || !sameCounts(got, again) {
					t.Errorf("Workers=%d: %+v, %v; default: %+v, %v", n, again, err2, got, err)
				}
			}
		})
	}
}

func sameCounts(a, b Totals) bool {
	a.Errors, b.Errors, a.SkippedMounts, b.SkippedMounts = nil, nil, nil, nil
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestPermissionDeniedHook simulates EACCES on open, which root never gets
// (CAP_DAC_READ_SEARCH); TestPermissionDeniedUnprivileged gets it for real.
func TestPermissionDeniedHook(t *testing.T) {
	dir := t.TempDir()
	write(t, dir+"/ok/a", 5000)
	write(t, dir+"/locked/secret/b", 5000)
	write(t, dir+"/locked/c", 5000)
	o := Options{hooks: &hooks{open: func(path string) (int, error) {
		if strings.HasSuffix(path, "/locked") {
			return -1, unix.EACCES
		}
		return unix.Open(path, dirFlags, 0)
	}}}
	got, err := walkOne(t, dir, o)
	noErr(t, err)
	// root, ok, ok/a, locked (stat'ed by its parent, then not readable)
	wantCounts(t, got, map[string]uint64{"inodes": 4, "dirs": 3, "files": 1, "errors": 1})
	if len(got.Errors) != 1 || got.Errors[0].Path != dir+"/locked" || got.Errors[0].Op != "open" || !errors.Is(got.Errors[0], unix.EACCES) {
		t.Errorf("Errors = %+v, want open %s/locked: EACCES", got.Errors, dir)
	}

	// The root itself unreadable is a RootError, not an entry error.
	o.hooks.open = func(string) (int, error) { return -1, unix.EACCES }
	res, err := Walk(context.Background(), []string{dir}, o)
	var re *RootError
	if !errors.As(err, &re) || re.Root != dir || !errors.Is(err, unix.EACCES) {
		t.Errorf("Walk of unreadable root: %v, want *RootError EACCES", err)
	}
	if _, ok := res[dir]; ok {
		t.Errorf("unreadable root in result: %+v", res)
	}
}

const helperEnv = "IMAGEFS_WALK_HELPER_DIR"

// TestHelperUnprivilegedWalk is not a test: TestPermissionDeniedUnprivileged
// runs the test binary as nobody with this test selected.
func TestHelperUnprivilegedWalk(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper for TestPermissionDeniedUnprivileged")
	}
	res, err := Walk(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res[dir])
	os.Stdout.Write(append([]byte("RESULT "), append(b, '\n')...))
}

// TestPermissionDeniedUnprivileged walks a tree with a 000 directory and a
// 0644 (readable, not searchable) directory as an unprivileged user: as
// root, by running the test binary as nobody.
func TestPermissionDeniedUnprivileged(t *testing.T) {
	dir := t.TempDir()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		// nobody must reach the tree: open up t.TempDir()'s parents.
		if strings.HasPrefix(d, os.TempDir()+"/") {
			must(t, os.Chmod(d, 0o755))
		}
	}
	write(t, dir+"/ok/a", 5000)
	write(t, dir+"/locked/b", 5000)
	write(t, dir+"/noexec/c", 5000)
	write(t, dir+"/noexec/d", 5000)
	must(t, os.Chmod(dir+"/locked", 0o000))
	must(t, os.Chmod(dir+"/noexec", 0o644))
	t.Cleanup(func() {
		os.Chmod(dir+"/locked", 0o755)
		os.Chmod(dir+"/noexec", 0o755)
	})

	var got Totals
	if os.Geteuid() != 0 {
		var err error
		got, err = walkOne(t, dir, Options{})
		noErr(t, err)
	} else {
		exe, err := os.Executable()
		must(t, err)
		bin := filepath.Join(dir, "walk.test")
		b, err := os.ReadFile(exe)
		must(t, err)
		must(t, os.WriteFile(bin, b, 0o755))
		cmd := exec.Command(bin, "-test.run=^TestHelperUnprivilegedWalk$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as nobody: %v\n%s", err, out)
		}
		_, line, ok := strings.Cut(string(out), "RESULT ")
		if !ok {
			t.Fatalf("helper printed no result:\n%s", out)
		}
		line, _, _ = strings.Cut(line, "\n")
		must(t, json.Unmarshal([]byte(line), &got))
	}
	// root, ok, ok/a, locked, noexec, walk.test (as root); c and d listed
	// by getdents but not stat'able; locked not openable.
	want := uint64(5)
	if os.Geteuid() == 0 {
		want++
	}
	wantCounts(t, got, map[string]uint64{"inodes": want, "errors": 3})
	byPath := map[string]string{}
	for _, e := range got.Errors {
		byPath[e.Path] = e.Op + ": " + e.Message
	}
	wantErrs := map[string]string{
		dir + "/locked":   "open: permission denied",
		dir + "/noexec/c": "stat: permission denied",
		dir + "/noexec/d": "stat: permission denied",
	}
	for p, w := range wantErrs {
		if byPath[p] != w {
			t.Errorf("error for %s = %q, want %q (all: %v)", p, byPath[p], w, byPath)
		}
	}
}

// TestVanishedMidWalk removes entries between getdents and statx, and a
// directory between its stat and its open: each is an error, the rest is
// counted, and the walk goes on.
func TestVanishedMidWalk(t *testing.T) {
	dir := t.TempDir()
	for i := range 10 {
		write(t, dir+"/victims/f"+itoa(i), 100)
	}
	write(t, dir+"/gone/x", 100)
	write(t, dir+"/stays/y", 100)
	var once sync.Once
	o := Options{hooks: &hooks{
		afterReaddir: func(d string, names []string) {
			if filepath.Base(d) != "victims" {
				return
			}
			for _, n := range names {
				if n < "f5" {
					must(t, os.Remove(filepath.Join(d, n)))
				}
			}
		},
		open: func(path string) (int, error) {
			if filepath.Base(path) == "gone" {
				once.Do(func() { must(t, os.RemoveAll(path)) })
			}
			return unix.Open(path, dirFlags, 0)
		},
	}}
	got, err := walkOne(t, dir, o)
	noErr(t, err)
	// root, victims, f5..f9, gone (stat'ed, then vanished), stays, y
	wantCounts(t, got, map[string]uint64{"inodes": 10, "files": 6, "dirs": 4, "errors": 6})
	for _, e := range got.Errors {
		if !errors.Is(e, unix.ENOENT) {
			t.Errorf("error %v, want ENOENT", e)
		}
	}
}

func TestMaxErrors(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		write(t, dir+"/f"+itoa(i), 1)
	}
	o := Options{MaxErrors: 5, hooks: &hooks{afterReaddir: func(d string, names []string) {
		for _, n := range names {
			os.Remove(filepath.Join(d, n))
		}
	}}}
	got, err := walkOne(t, dir, o)
	noErr(t, err)
	if got.ErrorCount != 20 || len(got.Errors) != 5 {
		t.Errorf("ErrorCount %d, %d listed; want 20, 5", got.ErrorCount, len(got.Errors))
	}
}

// TestMountInside mounts a tmpfs and bind-mounts a directory of the same
// filesystem inside the tree: by default both are skipped and listed; with
// CrossFilesystems both are walked and the bind mount is not counted twice.
func TestMountInside(t *testing.T) {
	requireRoot(t, "mount a tmpfs inside the tree")
	dir := t.TempDir()
	write(t, dir+"/a/f", 10000)
	mkdirs(t, dir, "tmp", "bind")
	mount(t, "tmpfs", dir+"/tmp", "tmpfs", 0, "size=8m")
	write(t, dir+"/tmp/x/y", 20000)
	mount(t, dir+"/a", dir+"/bind", "", unix.MS_BIND, "")

	got, err := walkOne(t, dir, Options{})
	noErr(t, err)
	// root, a, a/f
	wantCounts(t, got, map[string]uint64{"inodes": 3, "skippedMounts": 2})
	if len(got.SkippedMounts) != 2 {
		t.Errorf("SkippedMounts = %v, want tmp and bind", got.SkippedMounts)
	}

	got, err = walkOne(t, dir, Options{CrossFilesystems: true})
	noErr(t, err)
	// root, a, a/f, tmp, tmp/x, tmp/x/y (bind = a: counted once)
	wantCounts(t, got, map[string]uint64{"inodes": 6, "skippedMounts": 0})
	want := blocks(t, dir) + blocks(t, dir+"/a") + blocks(t, dir+"/a/f") + blocks(t, dir+"/tmp") +
		blocks(t, dir+"/tmp/x") + blocks(t, dir+"/tmp/x/y")
	if got.AllocatedBytes != want {
		t.Errorf("AllocatedBytes = %d, want %d", got.AllocatedBytes, want)
	}
	// du counts the bind mount's inodes again (it dedups only
	// non-directories with st_nlink > 1): continuity only.
	checkOracle(t, dir, got, false)
}

func TestRootErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir+"/ok/f", 100)
	missing := dir + "/missing"
	res, err := Walk(context.Background(), []string{dir + "/ok", missing, dir + "/ok"}, Options{})
	var re *RootError
	if !errors.As(err, &re) || re.Root != missing || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("err = %v, want *RootError for %s, ENOENT", err, missing)
	}
	if len(res) != 1 || res[dir+"/ok"].Inodes != 2 {
		t.Errorf("result = %+v, want the readable root only", res)
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		write(t, filepath.Join(dir, "d"+itoa(i), "f"), 10)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Walk(ctx, []string{dir}, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}

	// Cancelled from the middle of a walk: returns promptly.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	o := Options{Workers: 1, hooks: &hooks{afterReaddir: func(string, []string) { cancel() }}}
	res, err := Walk(ctx, []string{dir}, o)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if res[dir].Inodes == 0 || res[dir].Inodes >= 101 {
		t.Errorf("partial totals %+v, want some but not all", res[dir])
	}
}

func TestProgress(t *testing.T) {
	dir := t.TempDir()
	for i := range 100 {
		write(t, filepath.Join(dir, "d"+itoa(i%10), "f"+itoa(i)), 10)
	}
	var (
		mu    sync.Mutex
		calls []Progress
	)
	o := Options{
		ProgressInterval: time.Millisecond,
		Progress: func(p Progress) {
			mu.Lock()
			calls = append(calls, p)
			mu.Unlock()
		},
		hooks: &hooks{afterReaddir: func(string, []string) { time.Sleep(2 * time.Millisecond) }},
	}
	got, err := walkOne(t, dir, o)
	noErr(t, err)
	if len(calls) < 2 {
		t.Fatalf("%d progress calls, want several", len(calls))
	}
	last := calls[len(calls)-1]
	// Entries are names read from directories, the root is not one.
	if last.Entries != got.Inodes-1 || last.AllocatedBytes != got.AllocatedBytes || last.Dirs != got.Dirs {
		t.Errorf("final progress %+v, totals %+v", last, got)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Entries < calls[i-1].Entries {
			t.Errorf("progress went backwards: %+v then %+v", calls[i-1], calls[i])
		}
	}
}

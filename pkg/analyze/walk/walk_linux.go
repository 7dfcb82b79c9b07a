//go:build linux

package walk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// direntBufSize is the getdents64 buffer per worker: ~1500 entries of
	// a typical layer per call. Larger buys nothing measurable (each call
	// is bounded by the directory, not the buffer, for all but huge dirs).
	direntBufSize = 64 << 10
	// statxMask asks for what we count; the kernel fills the basic stats
	// anyway, STATX_ATTR_MOUNT_ROOT comes with every call (Linux ≥ 5.8).
	statxMask  = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_NLINK | unix.STATX_INO | unix.STATX_SIZE | unix.STATX_BLOCKS
	lstatFlags = unix.AT_SYMLINK_NOFOLLOW | unix.AT_NO_AUTOMOUNT
	statFlags  = unix.AT_NO_AUTOMOUNT
	dirFlags   = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	blockSize  = 512 // st_blocks unit, continuity's blocksUnitSize
)

// item is a directory waiting to be read.
type item struct {
	path string
	root int
	fd   int // opened by the parent's worker (or a root), or -1: open by path
	// viaLink: path names a symlink to the directory (FollowSymlinks),
	// to be opened without O_NOFOLLOW.
	viaLink bool
}

// maxQueuedFDs bounds the directories opened ahead of being read. Below
// it a directory is opened relative to its parent's fd, one dcache lookup
// instead of one per path component; above it, by path when popped.
const maxQueuedFDs = 1024

type rootState struct {
	given, path string
	dev         uint64
	seen        inodeSet

	mu      sync.Mutex // guards the two lists
	errs    []EntryError
	skipped []string
}

type walker struct {
	ctx       context.Context
	o         Options
	roots     []*rootState
	maxErrors int
	// trackDirs: a directory can be reached twice (bind mounts when
	// crossing mounts; symlinks when following), so dedupe directories
	// and mount roots too. trackAll: with symlinks followed any inode
	// can have two paths.
	trackDirs, trackAll bool

	mu      sync.Mutex
	cond    sync.Cond
	stack   []item
	active  int
	waiting int // workers in cond.Wait
	stopped bool
	stop    atomic.Bool

	queuedFDs atomic.Int64

	// progress, flushed by workers once per directory
	entries, dirs, bytes, errors atomic.Uint64
}

type worker struct {
	w        *walker
	buf      []byte
	xattrs   []byte
	stx      unix.Statx_t
	totals   []Totals
	children []item
	names    []string // for hooks only
	// per-directory progress, flushed to the walker
	nEntries, nDirs, nBytes, nErrors uint64
}

func walk(ctx context.Context, roots []string, o Options) (map[string]Totals, error) {
	w := &walker{
		ctx:       ctx,
		o:         o,
		maxErrors: o.MaxErrors,
		trackDirs: o.CrossFilesystems || o.FollowSymlinks,
		trackAll:  o.FollowSymlinks,
	}
	if w.maxErrors == 0 {
		w.maxErrors = DefaultMaxErrors
	}
	w.cond.L = &w.mu
	workers := o.Workers
	if workers <= 0 {
		workers = DefaultWorkers()
	}
	start := time.Now()

	// Roots are stat'ed and opened here, so that a root that cannot be
	// read is a RootError and not an entry error.
	seen := map[string]bool{}
	main := &worker{w: w}
	var rootErrs []error
	var roots2 []*rootState
	for _, r := range roots {
		if seen[r] {
			continue
		}
		seen[r] = true
		roots2 = append(roots2, &rootState{given: r, path: filepath.Clean(r)})
	}
	w.roots = roots2
	main.totals = make([]Totals, len(w.roots))
	var failed []bool
	for i, rs := range w.roots {
		it, err := main.openRoot(i, rs)
		failed = append(failed, err != nil)
		if err != nil {
			rootErrs = append(rootErrs, err)
			continue
		}
		if it.fd >= 0 {
			w.stack = append(w.stack, it)
		}
	}
	main.flush()

	stopCtx := context.AfterFunc(ctx, func() {
		w.stop.Store(true)
		w.mu.Lock()
		w.stopped = true
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer stopCtx()

	done := make(chan struct{})
	var progressDone sync.WaitGroup
	if o.Progress != nil {
		interval := o.ProgressInterval
		if interval <= 0 {
			interval = 100 * time.Millisecond
		}
		progressDone.Add(1)
		go func() {
			defer progressDone.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-done:
					o.Progress(w.progress(start))
					return
				case <-t.C:
					o.Progress(w.progress(start))
				}
			}
		}()
	}

	ws := make([]*worker, workers)
	var wg sync.WaitGroup
	for i := range ws {
		k := &worker{
			w:      w,
			buf:    make([]byte, direntBufSize),
			xattrs: make([]byte, 1024),
			totals: make([]Totals, len(w.roots)),
		}
		ws[i] = k
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(k)
		}()
	}
	wg.Wait()
	// Cancelled: close the roots still queued.
	for _, it := range w.stack {
		if it.fd >= 0 {
			unix.Close(it.fd)
		}
	}
	close(done)
	progressDone.Wait()

	out := make(map[string]Totals, len(w.roots))
	for i, rs := range w.roots {
		if failed[i] {
			continue
		}
		t := main.totals[i]
		for _, k := range ws {
			t.Add(k.totals[i])
		}
		t.Errors = rs.errs
		t.SkippedMounts = rs.skipped
		out[rs.given] = t
	}
	var err error
	if len(rootErrs) > 0 {
		err = errors.Join(rootErrs...)
	}
	if ctx.Err() != nil {
		err = errors.Join(fmt.Errorf("walk interrupted: %w", context.Cause(ctx)), err)
	}
	return out, err
}

// cancelled reports whether ctx has ended, without waiting for AfterFunc.
func (w *walker) cancelled() bool {
	if w.stop.Load() {
		return true
	}
	if w.ctx.Err() != nil {
		w.stop.Store(true)
		return true
	}
	return false
}

func (w *walker) progress(start time.Time) Progress {
	return Progress{
		Entries:        w.entries.Load(),
		Dirs:           w.dirs.Load(),
		AllocatedBytes: w.bytes.Load(),
		Errors:         w.errors.Load(),
		Elapsed:        time.Since(start),
	}
}

// run pops directories until there are none left and no worker is reading
// one (which could push more), or the walk is stopped. The stack is LIFO so
// that the walk is depth-first and the queue stays small.
func (w *walker) run(k *worker) {
	w.mu.Lock()
	for {
		for len(w.stack) == 0 && w.active > 0 && !w.stopped {
			w.waiting++
			w.cond.Wait()
			w.waiting--
		}
		if w.stopped || len(w.stack) == 0 || w.cancelled() {
			w.mu.Unlock()
			return
		}
		it := w.stack[len(w.stack)-1]
		w.stack = w.stack[:len(w.stack)-1]
		w.active++
		w.mu.Unlock()

		k.children = k.children[:0]
		k.readDir(it)
		k.flush()

		w.mu.Lock()
		w.active--
		switch {
		case len(k.children) > 1:
			w.stack = append(w.stack, k.children...)
			// This worker takes one; wake one waiting worker per other
			// child, not all of them (each wake is a futex call and a
			// context switch).
			for range min(len(k.children)-1, w.waiting) {
				w.cond.Signal()
			}
		case len(k.children) == 1:
			w.stack = append(w.stack, k.children[0]) // this worker takes it next
		case w.active == 0 && len(w.stack) == 0:
			w.cond.Broadcast() // done: wake the others to exit
		}
	}
}

func (k *worker) flush() {
	w := k.w
	w.entries.Add(k.nEntries)
	w.dirs.Add(k.nDirs)
	w.bytes.Add(k.nBytes)
	if k.nErrors > 0 {
		w.errors.Add(k.nErrors)
	}
	k.nEntries, k.nDirs, k.nBytes, k.nErrors = 0, 0, 0, 0
}

// openRoot stats root i, counts it, and opens it if it is a directory.
func (k *worker) openRoot(i int, rs *rootState) (item, error) {
	it := item{path: rs.path, root: i, fd: -1}
	p, err := unix.BytePtrFromString(rs.path)
	if err != nil {
		return it, &RootError{Root: rs.given, Op: "stat", Err: err}
	}
	if err := statx(unix.AT_FDCWD, p, lstatFlags, &k.stx); err != nil {
		return it, &RootError{Root: rs.given, Op: "stat", Err: err}
	}
	k.follow(i, unix.AT_FDCWD, p, rs.path)
	rs.dev = unix.Mkdev(k.stx.Dev_major, k.stx.Dev_minor)
	if c, _ := k.count(i, rs, &k.stx, true); !c || k.stx.Mode&unix.S_IFMT != unix.S_IFDIR {
		return it, nil
	}
	// The root may be a symlink we followed; below it, O_NOFOLLOW.
	fd, err := k.w.openDir(rs.path, k.w.o.FollowSymlinks)
	if err != nil {
		return it, &RootError{Root: rs.given, Op: "open", Err: err}
	}
	it.fd = fd
	k.w.queuedFDs.Add(1)
	return it, nil
}

// follow replaces k.stx, an lstat of name, by a stat of what it points to
// when symlinks are followed, and reports whether it did. A link that
// cannot be resolved stays counted as itself: silently when dangling, as
// an error when looping (ELOOP) or unreadable.
func (k *worker) follow(i int, dirfd int, name *byte, path string) bool {
	if !k.w.o.FollowSymlinks || !isLink(&k.stx) {
		return false
	}
	k.totals[i].Symlinks++
	link := k.stx
	if err := statx(dirfd, name, statFlags, &k.stx); err != nil {
		if err != unix.ENOENT {
			k.fail(i, path, "stat (follow)", err)
		}
		k.stx = link
		return false
	}
	return true
}

func isMountRoot(s *unix.Statx_t) bool {
	return s.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && s.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}

func isLink(s *unix.Statx_t) bool { return s.Mode&unix.S_IFMT == unix.S_IFLNK }

// openDir opens a directory below a root by path, without following a
// symlink that replaced it since it was stat'ed.
func (w *walker) openDir(path string, follow bool) (int, error) {
	if w.o.hooks != nil && w.o.hooks.open != nil {
		return w.o.hooks.open(path)
	}
	flags := dirFlags
	if follow {
		flags &^= unix.O_NOFOLLOW
	}
	for {
		fd, err := unix.Open(path, flags, 0)
		switch err {
		case nil:
			return fd, nil
		case unix.EINTR:
			continue
		case unix.ENAMETOOLONG:
			return openLong(path)
		}
		return -1, err
	}
}

// openChild opens a directory relative to its parent's fd.
func (w *walker) openChild(dirfd int, name *byte, path string, follow bool) (int, error) {
	if w.o.hooks != nil && w.o.hooks.open != nil {
		return w.o.hooks.open(path)
	}
	flags := dirFlags
	if follow {
		flags &^= unix.O_NOFOLLOW
	}
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)), uintptr(flags), 0, 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		}
		return -1, e
	}
}

// openLong opens a path longer than PATH_MAX one component at a time.
func openLong(path string) (int, error) {
	start := "."
	if strings.HasPrefix(path, "/") {
		start = "/"
	}
	fd, err := unix.Open(start, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, c := range parts {
		if c == "" {
			continue
		}
		flags := unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
		if i == len(parts)-1 {
			flags = dirFlags
		}
		nfd, err := unix.Openat(fd, c, flags, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = nfd
	}
	return fd, nil
}

// readDir reads one directory: getdents64 into the worker's buffer, one
// statx per entry relative to the directory's fd, subdirectories opened
// relative to it too and pushed.
func (k *worker) readDir(it item) {
	w := k.w
	rs := w.roots[it.root]
	fd := it.fd
	if fd >= 0 {
		w.queuedFDs.Add(-1)
	} else {
		var err error
		if fd, err = w.openDir(it.path, it.viaLink); err != nil {
			k.fail(it.root, it.path, "open", err)
			return
		}
	}
	defer unix.Close(fd)
	k.nDirs++
	if k.opaque(fd) {
		k.totals[it.root].OpaqueDirs++
	}
	hook := w.o.hooks != nil && w.o.hooks.afterReaddir != nil
	for !w.cancelled() {
		n, err := unix.Getdents(fd, k.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			k.fail(it.root, it.path, "readdir", err)
			return
		}
		if n <= 0 {
			// Only an empty read is the end: a short one is not, filldir64
			// stops early when a signal is pending, and the Go runtime
			// preempts with SIGURG.
			return
		}
		buf := k.buf[:n]
		if hook {
			k.names = k.names[:0]
			forEachDirent(buf, func(name []byte) { k.names = append(k.names, string(cstring(name))) })
			w.o.hooks.afterReaddir(it.path, k.names)
		}
		for off := 0; off < n; {
			reclen := int(*(*uint16)(unsafe.Pointer(&buf[off+16])))
			name := buf[off+19 : off+reclen]
			off += reclen
			if name[0] == '.' && (name[1] == 0 || name[1] == '.' && name[2] == 0) {
				continue
			}
			k.entry(it, rs, fd, name)
		}
	}
}

// forEachDirent calls f with each linux_dirent64 name (NUL-padded) in buf.
func forEachDirent(buf []byte, f func(name []byte)) {
	for off := 0; off < len(buf); {
		reclen := int(*(*uint16)(unsafe.Pointer(&buf[off+16])))
		name := buf[off+19 : off+reclen]
		off += reclen
		if name[0] == '.' && (name[1] == 0 || name[1] == '.' && name[2] == 0) {
			continue
		}
		f(name)
	}
}

func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func join(dir string, name []byte) string {
	if strings.HasSuffix(dir, "/") {
		return dir + string(cstring(name))
	}
	return dir + "/" + string(cstring(name))
}

// entry stats one name of dir (NUL-terminated in the getdents buffer, so
// it is passed to the kernel as is) and counts it.
func (k *worker) entry(it item, rs *rootState, dirfd int, name []byte) {
	k.nEntries++
	if err := statx(dirfd, &name[0], lstatFlags, &k.stx); err != nil {
		k.fail(it.root, join(it.path, name), "stat", err)
		return
	}
	var viaLink bool
	if k.w.o.FollowSymlinks && isLink(&k.stx) {
		viaLink = k.follow(it.root, dirfd, &name[0], join(it.path, name))
	}
	counted, mount := k.count(it.root, rs, &k.stx, false)
	if mount {
		k.skip(it.root, join(it.path, name))
	}
	if !counted {
		return
	}
	switch k.stx.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		child := item{path: join(it.path, name), root: it.root, fd: -1, viaLink: viaLink}
		if k.w.queuedFDs.Load() < maxQueuedFDs {
			fd, err := k.w.openChild(dirfd, &name[0], child.path, viaLink)
			switch err {
			case nil:
				child.fd = fd
				k.w.queuedFDs.Add(1)
			case unix.EMFILE, unix.ENFILE: // open it by path later
			default:
				k.fail(it.root, child.path, "open", err)
				return
			}
		}
		k.children = append(k.children, child)
	case unix.S_IFREG:
		if name[0] == '.' && name[1] == 'w' && name[2] == 'h' && name[3] == '.' {
			k.totals[it.root].WhiteoutFiles++
		}
	}
}

// count adds an inode to root i's totals unless it was counted already, or
// is a mount point to skip (mount); it reports whether it counted it.
func (k *worker) count(i int, rs *rootState, s *unix.Statx_t, isRoot bool) (counted, mount bool) {
	w := k.w
	dev := unix.Mkdev(s.Dev_major, s.Dev_minor)
	mode := s.Mode & unix.S_IFMT
	isDir := mode == unix.S_IFDIR
	mountRoot := isMountRoot(s)
	if !isRoot && !w.o.CrossFilesystems && (dev != rs.dev || mountRoot) {
		return false, true
	}
	multi := !isDir && s.Nlink > 1
	if multi || w.trackAll || (w.trackDirs && (isDir || mountRoot)) {
		if !rs.seen.add(inodeKey{dev, s.Ino}) {
			return false, false
		}
	}
	t := &k.totals[i]
	t.Inodes++
	t.AllocatedBytes += s.Blocks * blockSize
	t.ApparentBytes += s.Size
	k.nBytes += s.Blocks * blockSize
	if multi {
		t.HardLinked++
	}
	switch mode {
	case unix.S_IFREG:
		t.Files++
	case unix.S_IFDIR:
		t.Dirs++
	case unix.S_IFLNK:
		if !w.o.FollowSymlinks {
			t.Symlinks++
		}
	case unix.S_IFCHR:
		if s.Rdev_major == 0 && s.Rdev_minor == 0 {
			t.Whiteouts++
		} else {
			t.Other++
		}
	default:
		t.Other++
	}
	return true, false
}

// opaque reports whether an open directory is marked opaque by overlayfs:
// one flistxattr, and a getxattr only if an opaque name is listed.
func (k *worker) opaque(fd int) bool {
	n, err := unix.Flistxattr(fd, k.xattrs)
	if err == unix.ERANGE {
		k.xattrs = make([]byte, 64<<10)
		n, err = unix.Flistxattr(fd, k.xattrs)
	}
	if err != nil || n <= 0 {
		return false
	}
	for _, name := range bytes.Split(k.xattrs[:n], []byte{0}) {
		if s := string(name); s == "trusted.overlay.opaque" || s == "user.overlay.opaque" {
			var v [4]byte
			if m, err := unix.Fgetxattr(fd, s, v[:]); err == nil && m == 1 && v[0] == 'y' {
				return true
			}
		}
	}
	return false
}

func (k *worker) fail(i int, path, op string, err error) {
	k.totals[i].ErrorCount++
	k.nErrors++
	rs := k.w.roots[i]
	rs.mu.Lock()
	if len(rs.errs) < k.w.maxErrors {
		rs.errs = append(rs.errs, EntryError{Path: path, Op: op, Err: err, Message: err.Error()})
	}
	rs.mu.Unlock()
}

func (k *worker) skip(i int, path string) {
	k.totals[i].SkippedMountCount++
	rs := k.w.roots[i]
	rs.mu.Lock()
	if len(rs.skipped) < k.w.maxErrors {
		rs.skipped = append(rs.skipped, path)
	}
	rs.mu.Unlock()
}

// statx is statx(2) on a NUL-terminated name, without the allocation of
// unix.Statx's string argument.
func statx(dirfd int, name *byte, flags int, stx *unix.Statx_t) error {
	for {
		_, _, e := unix.Syscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(name)),
			uintptr(flags), statxMask, uintptr(unsafe.Pointer(stx)), 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mkfsArgs are the quiet, forced (the target is a fresh image file) mkfs calls.
var mkfsArgs = map[string][]string{
	"ext4":  {"mkfs.ext4", "-q", "-F"},
	"xfs":   {"mkfs.xfs", "-q", "-f"}, // xfsprogs 6.x refuses images under 300 MB
	"btrfs": {"mkfs.btrfs", "-q", "-f"},
}

// MountFS makes a filesystem of type fstype and sizeBytes and mounts it at
// mountDir (created). ext4, xfs and btrfs get a sparse image file in imgDir,
// mkfs'd and mounted with `mount -o loop` (which sets autoclear, so unmounting
// frees the loop device); "tmpfs" mounts a tmpfs with size=sizeBytes.
func MountFS(fstype, imgDir, mountDir string, sizeBytes int64) (*Mount, error) {
	if sizeBytes <= 0 {
		return nil, fmt.Errorf("mount %s: size %d must be positive", fstype, sizeBytes)
	}
	mkfs, ok := mkfsArgs[fstype]
	if !ok && fstype != "tmpfs" {
		return nil, fmt.Errorf("mount %s: unsupported filesystem type (want ext4, xfs, btrfs or tmpfs)", fstype)
	}
	if err := os.MkdirAll(mountDir, 0o755); err != nil {
		return nil, fmt.Errorf("mount %s: %w", fstype, err)
	}
	// mountinfo shows resolved paths; compare and record those.
	dir, err := filepath.EvalSymlinks(mountDir)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", fstype, err)
	}
	if mounted, _ := mountinfo.Mounted(dir); mounted {
		return nil, fmt.Errorf("mount %s: %s is already a mountpoint", fstype, dir)
	}

	if fstype == "tmpfs" {
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", sizeBytes)); err != nil {
			return nil, fmt.Errorf("mount tmpfs at %s: %w", dir, err)
		}
		return &Mount{FSType: fstype, Dir: dir, Device: "tmpfs"}, nil
	}

	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return nil, fmt.Errorf("mount %s: %w", fstype, err)
	}
	f, err := os.CreateTemp(imgDir, fstype+"-*.img") // unique: several mounts may share imgDir
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", fstype, err)
	}
	img := f.Name()
	m := &Mount{FSType: fstype, Dir: dir, Image: img}
	err = f.Truncate(sizeBytes) // sparse: mkfs only writes metadata
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(img)
		return nil, fmt.Errorf("mount %s: sizing %s: %w", fstype, img, err)
	}
	if err := run(append(mkfs, img)...); err != nil {
		os.Remove(img)
		return nil, fmt.Errorf("mount %s: %w", fstype, err)
	}
	if err := run("mount", "-t", fstype, "-o", "loop", img, dir); err != nil {
		os.Remove(img)
		return nil, fmt.Errorf("mount %s: %w", fstype, err)
	}
	// Never assume which loop device we got: other users may hold some.
	dev, err := mountSource(dir)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mount %s: %w", fstype, err), m.Unmount())
	}
	m.Device = dev
	return m, nil
}

// Unmount unmounts m (lazily only if it is busy) and removes its image file
// and mountpoint directory. Calling it again is harmless.
func (m *Mount) Unmount() error {
	if mounted, err := mountinfo.Mounted(m.Dir); err == nil && mounted {
		if err := unmount(m.Dir); err != nil {
			return fmt.Errorf("unmount %s: %w", m.Dir, err)
		}
	}
	if m.Image != "" {
		// With a lazy unmount the loop device keeps the unlinked file until the
		// last user goes; autoclear then frees both.
		if err := os.Remove(m.Image); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unmount %s: %w", m.Dir, err)
		}
	}
	_ = os.Remove(m.Dir) // only succeeds if empty, which is all we want
	return nil
}

// unmount unmounts dir, falling back to a lazy (detach) unmount only when busy.
func unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if errors.Is(err, unix.EINVAL) { // raced: not a mountpoint any more
		return nil
	}
	return err
}

// MountsUnder lists the mountpoints at or below dir, deepest first (the order
// to unmount them in).
func MountsUnder(dir string) ([]string, error) {
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	var dirs []string
	for _, in := range infos {
		dirs = append(dirs, in.Mountpoint)
	}
	sort.Slice(dirs, func(i, j int) bool {
		if ci, cj := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/"); ci != cj {
			return ci > cj
		}
		return dirs[i] > dirs[j]
	})
	return dirs, nil
}

// unmountUnder unmounts everything strictly below dir, deepest first. dir
// itself is left alone: it may be a mount the caller owns (a Root on a lab fs).
func unmountUnder(dir string) error {
	mounts, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range mounts {
		if mp == filepath.Clean(dir) {
			continue
		}
		if err := unmount(mp); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// mountSource returns the source (device) of the topmost mount at dir.
func mountSource(dir string) (string, error) {
	infos, err := mountinfo.GetMounts(func(in *mountinfo.Info) (skip, stop bool) {
		return in.Mountpoint != dir, false
	})
	if err != nil {
		return "", fmt.Errorf("reading mountinfo: %w", err)
	}
	if len(infos) == 0 {
		return "", fmt.Errorf("%s is not in mountinfo after mounting", dir)
	}
	return infos[len(infos)-1].Source, nil
}

// run runs a command quietly, returning its output in the error on failure.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

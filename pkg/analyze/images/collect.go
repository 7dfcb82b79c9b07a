package images

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imagefs/imagefs/pkg/analyze/walk"
	"github.com/imagefs/imagefs/pkg/containerd"
)

// CollectOptions are the inputs of Collect besides the client.
type CollectOptions struct {
	// Runtime is CRI's side (name, version, endpoint); Collect fills
	// Runtime.Containerd.
	Runtime Runtime
	// Snapshotter, if set, is used as CRI's snapshotter (--snapshotter).
	Snapshotter string
	// CRIConfigSnapshotter is the snapshotter CRI Status reports ("" if
	// unknown; containerd 2.x does not report it).
	CRIConfigSnapshotter string
	// CRI is ImageFsInfo's image filesystem; its Mountpoint also helps find
	// the snapshotter.
	CRI *CRIUsage
	// SkipOtherNamespaces skips measuring snapshots of other namespaces.
	SkipOtherNamespaces bool
	// SkipLeftovers skips the leftover-dir check.
	SkipLeftovers bool
	// UsageWorkers bounds concurrent Usage calls (0 => 4).
	UsageWorkers int
	Now          func() time.Time
	Log          *slog.Logger
}

// Collect reads everything Analyze needs from containerd, read-only. Errors
// of the core calls (images, content, snapshots, containers) fail it;
// everything else becomes a note.
func Collect(ctx context.Context, c *containerd.Client, o CollectOptions) (*Inventory, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	inv := &Inventory{
		CollectedAt: now().UTC(),
		Runtime:     o.Runtime,
		Namespace:   c.Namespace(),
		Configs:     map[string]ConfigResult{},
		Usage:       map[string]containerd.Usage{},
	}
	ci := &ContainerdInfo{Address: c.Address(), Namespace: c.Namespace()}
	inv.Runtime.Containerd = ci
	if v, err := c.Version(ctx); err != nil {
		return nil, err // the first call: an unreachable containerd ends here
	} else {
		ci.Version = v.Version
	}

	plugins, err := c.Snapshotters(ctx)
	if err != nil {
		inv.Notes = append(inv.Notes, fmt.Sprintf("snapshotter plugins unknown (%v)", err))
	}
	mountpoint := ""
	if o.CRI != nil {
		mountpoint = o.CRI.Mountpoint
	}
	ci.Snapshotter, ci.SnapshotterSource = chooseSnapshotter(o.Snapshotter, o.CRIConfigSnapshotter, mountpoint, plugins)
	inv.Snapshotter = ci.Snapshotter
	for _, p := range plugins {
		if p.ID == ci.Snapshotter {
			ci.SnapshotterRoot = p.Root
		}
	}
	if ci.SnapshotterRoot == "" && mountpoint != "" {
		ci.SnapshotterRoot = mountpoint
	}
	log.Debug("snapshotter", "name", ci.Snapshotter, "source", ci.SnapshotterSource, "root", ci.SnapshotterRoot)

	if inv.Images, err = c.Images(ctx); err != nil {
		return nil, err
	}
	for _, im := range inv.Images {
		if _, done := inv.Configs[im.Target.Digest]; done {
			continue
		}
		cfg, err := c.ImageConfig(ctx, im.Target)
		if err != nil {
			if errors.Is(err, containerd.ErrUnavailable) || errors.Is(err, containerd.ErrTimeout) {
				return nil, err
			}
			inv.Configs[im.Target.Digest] = ConfigResult{Error: lastPart(err)}
			continue
		}
		inv.Configs[im.Target.Digest] = ConfigResult{Config: &cfg}
	}
	if inv.Blobs, err = c.Blobs(ctx); err != nil {
		return nil, err
	}
	if inv.Snapshots, err = c.Snapshots(ctx, inv.Snapshotter); err != nil {
		return nil, err
	}
	workers := o.UsageWorkers
	if workers <= 0 {
		workers = 4
	}
	var gone map[string]bool
	inv.Usage, inv.UsageErrors, gone, err = usageOf(ctx, c, inv.Snapshotter, inv.Snapshots, workers)
	if err != nil {
		return nil, err
	}
	if len(gone) > 0 { // removed between Walk and Usage: CRI drops them too
		kept := inv.Snapshots[:0]
		for _, s := range inv.Snapshots {
			if !gone[s.Key] {
				kept = append(kept, s)
			}
		}
		inv.Snapshots = kept
	}
	if inv.Containers, err = c.Containers(ctx); err != nil {
		return nil, err
	}
	if inv.Leases, err = c.Leases(ctx); err != nil {
		inv.Notes = append(inv.Notes, fmt.Sprintf("leases unknown (%s): content and snapshots they hold may show as unreferenced", lastPart(err)))
	}

	// What CRI does not count: other snapshotters here, this snapshotter
	// in other namespaces.
	for _, p := range plugins {
		if p.ID == inv.Snapshotter || !p.OK {
			continue
		}
		snaps, err := c.Snapshots(ctx, p.ID)
		if err != nil {
			inv.NotCounted = append(inv.NotCounted, OtherUsage{Namespace: inv.Namespace, Snapshotter: p.ID, Error: lastPart(err)})
			continue
		}
		if len(snaps) == 0 {
			continue
		}
		if inv.OtherSnapshots == nil {
			inv.OtherSnapshots = map[string][]containerd.Snapshot{}
		}
		inv.OtherSnapshots[p.ID] = snaps
		inv.NotCounted = append(inv.NotCounted, otherUsage(ctx, c, inv.Namespace, p.ID, snaps, workers))
	}
	if !o.SkipOtherNamespaces {
		nss, err := c.Namespaces(ctx)
		if err != nil {
			inv.Notes = append(inv.Notes, fmt.Sprintf("other namespaces unknown (%s)", lastPart(err)))
		}
		for _, ns := range nss {
			if ns == inv.Namespace {
				continue
			}
			oc := c.InNamespace(ns)
			snaps, err := oc.Snapshots(ctx, inv.Snapshotter)
			if err != nil {
				inv.NotCounted = append(inv.NotCounted, OtherUsage{Namespace: ns, Snapshotter: inv.Snapshotter, Error: lastPart(err)})
				continue
			}
			if len(snaps) > 0 {
				inv.NotCounted = append(inv.NotCounted, otherUsage(ctx, oc, ns, inv.Snapshotter, snaps, workers))
			}
		}
	}

	if o.CRI != nil {
		cri := *o.CRI
		if !cri.Timestamp.IsZero() {
			cri.AgeSeconds = inv.CollectedAt.Sub(cri.Timestamp).Seconds()
		}
		inv.CRI = &cri
	}
	if !o.SkipLeftovers {
		inv.SnapshotDirs, inv.Leftovers = scanSnapshotDirs(ctx, ci.SnapshotterRoot, inv.Snapshotter, inv.Namespace)
	}
	return inv, nil
}

// chooseSnapshotter picks CRI's snapshotter: the flag; else CRI's config;
// else the snapshotter plugin whose root is ImageFsInfo's mountpoint (what
// containerd's CRI plugin reports there); else the mountpoint's
// "io.containerd.snapshotter.v1.<name>" dir name; else overlayfs.
func chooseSnapshotter(flag, fromCRI, mountpoint string, plugins []containerd.Plugin) (name, source string) {
	switch {
	case flag != "":
		return flag, "--snapshotter"
	case fromCRI != "":
		return fromCRI, "CRI config (Status verbose: containerd.snapshotter)"
	}
	if mountpoint != "" {
		for _, p := range plugins {
			if p.Root != "" && filepath.Clean(p.Root) == filepath.Clean(mountpoint) {
				return p.ID, "the snapshotter plugin whose root is ImageFsInfo's mountpoint " + mountpoint
			}
		}
		const prefix = "io.containerd.snapshotter.v1."
		if b := filepath.Base(mountpoint); strings.HasPrefix(b, prefix) {
			return strings.TrimPrefix(b, prefix), "ImageFsInfo's mountpoint " + mountpoint
		}
	}
	return containerd.DefaultSnapshotter, "CRI's default (not reported by the runtime)"
}

// usageOf calls Usage for every snapshot, workers at a time. A NotFound
// snapshot was removed meanwhile (gone); other per-snapshot errors are
// recorded; an unreachable or hung containerd fails the whole call.
func usageOf(ctx context.Context, c *containerd.Client, sn string, snaps []containerd.Snapshot, workers int) (map[string]containerd.Usage, map[string]string, map[string]bool, error) {
	var (
		mu    sync.Mutex
		usage = map[string]containerd.Usage{}
		errs  map[string]string
		gone  map[string]bool
		fatal error
		wg    sync.WaitGroup
		keys  = make(chan string)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				u, err := c.Usage(ctx, sn, k)
				mu.Lock()
				switch {
				case err == nil:
					usage[k] = u
				case errors.Is(err, containerd.ErrNotFound):
					if gone == nil {
						gone = map[string]bool{}
					}
					gone[k] = true
				case errors.Is(err, containerd.ErrUnavailable) || errors.Is(err, containerd.ErrTimeout):
					if fatal == nil {
						fatal = err
					}
				default:
					if errs == nil {
						errs = map[string]string{}
					}
					errs[k] = lastPart(err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, s := range snaps {
		keys <- s.Key
	}
	close(keys)
	wg.Wait()
	return usage, errs, gone, fatal
}

func otherUsage(ctx context.Context, c *containerd.Client, ns, sn string, snaps []containerd.Snapshot, workers int) OtherUsage {
	o := OtherUsage{Namespace: ns, Snapshotter: sn}
	usage, errs, _, err := usageOf(ctx, c, sn, snaps, workers)
	if err != nil {
		o.Error = lastPart(err)
		return o
	}
	for _, u := range usage {
		o.add(u.Bytes, u.Inodes)
	}
	if len(errs) > 0 {
		o.Error = fmt.Sprintf("usage unknown for %d snapshot(s)", len(errs))
	}
	return o
}

// scanSnapshotDirs maps the namespace's snapshot keys to their dirs and
// finds dirs under <root>/snapshots that no snapshot ID names, as the
// overlay snapshotter's own Cleanup would (getCleanupDirectories).
//
// Known IDs come from a private copy of <root>/metadata.db (see
// containerd.ReadSnapshotDB for why the file is never opened in place). The
// dirs are listed first and the metadata read after, so a snapshot created
// in between is known; candidates are confirmed by a second read of the
// metadata (a creation commits its row and renames its dir in one
// transaction) and must still exist.
func scanSnapshotDirs(ctx context.Context, root, snapshotter, ns string) (map[string]string, *Leftovers) {
	l := &Leftovers{Dirs: []LeftoverDir{}}
	if snapshotter != "overlayfs" && snapshotter != "native" {
		l.Reason = fmt.Sprintf("only the overlayfs and native snapshotters keep snapshots/<id> dirs and a metadata.db imagefs can read; this is %s", snapshotter)
		return nil, l
	}
	if root == "" {
		l.Reason = "the snapshotter's root dir is unknown"
		return nil, l
	}
	l.SnapshotsDir = filepath.Join(root, "snapshots")
	l.Method = "dirs under " + l.SnapshotsDir + " compared with the snapshot IDs in a private in-memory copy of " + filepath.Join(root, containerd.SnapshotDBName) + " (containerd holds an exclusive lock on it, so it is never opened in place)"
	ents, err := os.ReadDir(l.SnapshotsDir)
	if err != nil {
		l.Reason = fmt.Sprintf("cannot list %s (%v): run imagefs as root in the runtime's mount namespace", l.SnapshotsDir, err)
		return nil, l
	}
	db, err := containerd.ReadSnapshotDB(filepath.Join(root, containerd.SnapshotDBName))
	if err != nil {
		l.Reason = fmt.Sprintf("snapshot IDs unknown: %v", err)
		return nil, l
	}
	ids := db.IDs()
	dirs := map[string]string{}
	for _, r := range db.Records {
		if r.Namespace == ns && r.Name != "" {
			dirs[r.Name] = "snapshots/" + r.ID
		}
	}
	var cands []os.DirEntry
	for _, e := range ents {
		if _, ok := ids[e.Name()]; !ok {
			cands = append(cands, e)
		}
	}
	if len(cands) > 0 {
		if db2, err := containerd.ReadSnapshotDB(filepath.Join(root, containerd.SnapshotDBName)); err == nil {
			ids2 := db2.IDs()
			kept := cands[:0]
			for _, e := range cands {
				if _, ok := ids2[e.Name()]; !ok {
					kept = append(kept, e)
				}
			}
			cands = kept
		}
	}
	l.Checked = true
	l.DirsOnDisk = len(ents)
	l.KnownIDs = len(ids)
	var roots []string
	for _, e := range cands {
		p := filepath.Join(l.SnapshotsDir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			continue // gone meanwhile: removed by containerd
		}
		d := LeftoverDir{Name: e.Name(), Path: p, ModTime: fi.ModTime().UTC(), Temp: strings.HasPrefix(e.Name(), "new-")}
		l.Dirs = append(l.Dirs, d)
		roots = append(roots, p)
	}
	if len(roots) > 0 {
		tot, err := walk.Walk(ctx, roots, walk.Options{})
		for i := range l.Dirs {
			d := &l.Dirs[i]
			t, ok := tot[d.Path]
			if !ok {
				d.Error = "could not be measured"
				if err != nil {
					d.Error = lastPart(err)
				}
				continue
			}
			d.Bytes, d.Inodes = ptr(t.AllocatedBytes), ptr(t.Inodes)
			if t.ErrorCount > 0 {
				d.Error = fmt.Sprintf("%d entries unreadable: sizes are lower bounds", t.ErrorCount)
			}
			l.Total.add(t.AllocatedBytes, t.Inodes)
		}
	}
	sort.Slice(l.Dirs, func(i, j int) bool { return l.Dirs[i].Name < l.Dirs[j].Name })
	return dirs, l
}

// lastPart drops the call context pkg/containerd wraps errors in ("containerd
// <call> (namespace …) on … (timeout …): "), keeping the cause.
func lastPart(err error) string {
	s := err.Error()
	if i := strings.Index(s, "(timeout "); i >= 0 {
		if j := strings.Index(s[i:], "): "); j >= 0 {
			return s[i+j+3:]
		}
	}
	return s
}

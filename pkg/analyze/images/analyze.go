package images

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/imagefs/imagefs/pkg/containerd"
)

// Errors callers branch on (all are the user's input: exit code 2).
var (
	ErrBadSort        = errors.New("unknown sort order")
	ErrNoSuchImage    = errors.New("no image matches")
	ErrAmbiguousImage = errors.New("more than one image matches")
)

// row is one image ID being built.
type row struct {
	img          Image
	names        []string // every record name, CRI's "sha256:<id>" included
	targets      []string // target digests (content nodes)
	labelContent []string // content the records' gc.ref labels name
	cfg          *containerd.ImageConfig
}

// owners of one snapshot: image rows whose chain holds it, containers whose
// chain (active snapshot and parents) holds it.
type owners struct {
	images     []int
	containers []string
}

// analysis holds the indexes Analyze and WhatIf share.
type analysis struct {
	inv        *Inventory
	rows       []*row
	snaps      map[string]*containerd.Snapshot
	owners     map[string]*owners
	rw         map[string]string // active snapshot key -> container ID
	blobs      map[string]*containerd.Blob
	contentOf  []map[string]bool // per row: content nodes it reaches
	contentOwn map[string][]int  // content node -> rows reaching it
	graph      *graph
	reachAll   reach // from every GC root
	reachOther reach // from every GC root except images
	now        time.Time
}

// Analyze builds the report from an inventory.
func Analyze(inv *Inventory, o Options) (*Report, error) {
	if o.Sort == "" {
		o.Sort = SortUnique
	}
	if !validSort(o.Sort) {
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrBadSort, o.Sort, strings.Join(SortOrders, ", "))
	}
	a := newAnalysis(inv, o.Now)
	rep := &Report{
		CollectedAt: inv.CollectedAt,
		Source:      SourceContainerd,
		Runtime:     inv.Runtime,
		Sort:        o.Sort,
		Notes:       append([]string(nil), inv.Notes...),
	}
	var whatIf *WhatIf
	if len(o.WhatIf) > 0 {
		w, err := a.whatIf(o.WhatIf)
		if err != nil {
			return nil, err
		}
		whatIf = w
	}
	imgs := a.images()
	rep.Totals = a.totals()
	rep.Unaccounted = a.unaccounted()
	rep.WhatIf = whatIf
	sortImages(imgs, o.Sort)
	rep.ImageCount = len(imgs)
	if o.Top > 0 && len(imgs) > o.Top {
		imgs = imgs[:o.Top]
	}
	rep.Images = imgs
	return rep, nil
}

func validSort(s string) bool {
	for _, v := range SortOrders {
		if v == s {
			return true
		}
	}
	return false
}

func newAnalysis(inv *Inventory, now time.Time) *analysis {
	if now.IsZero() {
		now = inv.CollectedAt
	}
	a := &analysis{
		inv:        inv,
		snaps:      map[string]*containerd.Snapshot{},
		owners:     map[string]*owners{},
		rw:         map[string]string{},
		blobs:      map[string]*containerd.Blob{},
		contentOwn: map[string][]int{},
		now:        now,
	}
	for i := range inv.Snapshots {
		s := &inv.Snapshots[i]
		a.snaps[s.Key] = s
	}
	for i := range inv.Blobs {
		b := &inv.Blobs[i]
		a.blobs[b.Digest] = b
	}
	a.groupImages()
	for i, r := range a.rows {
		if r.cfg == nil {
			continue
		}
		for _, c := range r.cfg.ChainIDs {
			if _, ok := a.snaps[c]; ok {
				a.owner(c).images = append(a.owner(c).images, i)
			}
		}
	}
	for _, c := range inv.Containers {
		if c.SnapshotKey == "" || (c.Snapshotter != "" && c.Snapshotter != inv.Snapshotter) {
			continue
		}
		s, ok := a.snaps[c.SnapshotKey]
		if !ok {
			continue
		}
		a.rw[c.SnapshotKey] = c.ID
		seen := map[string]bool{c.SnapshotKey: true}
		for p := s.Parent; p != "" && !seen[p]; {
			seen[p] = true
			ps, ok := a.snaps[p]
			if !ok {
				break
			}
			a.owner(p).containers = append(a.owner(p).containers, c.ID)
			p = ps.Parent
		}
	}
	a.graph = inv.buildGraph()
	a.reachAll = inv.markRoots(a.graph, now, false)
	a.reachOther = inv.markRoots(a.graph, now, true)
	for i, r := range a.rows {
		start := append(append([]string(nil), r.targets...), r.labelContent...)
		a.contentOf = append(a.contentOf, contentClosure(a.graph, start))
		for n := range a.contentOf[i] {
			a.contentOwn[n] = append(a.contentOwn[n], i)
		}
	}
	return a
}

func (a *analysis) owner(key string) *owners {
	o := a.owners[key]
	if o == nil {
		o = &owners{}
		a.owners[key] = o
	}
	return o
}

// groupImages makes one row per image ID (config digest) from the records.
func (a *analysis) groupImages() {
	byID := map[string]*row{}
	var order []string
	for _, im := range a.inv.Images {
		cr := a.inv.Configs[im.Target.Digest]
		id := im.Target.Digest
		if cr.Config != nil {
			id = cr.Config.ConfigDigest
		}
		r := byID[id]
		if r == nil {
			r = &row{img: Image{ID: id, Created: im.CreatedAt}, cfg: cr.Config}
			if cr.Config == nil {
				r.img.Notes = append(r.img.Notes, fmt.Sprintf("manifest or config of %s not readable for this platform (%s): ID is the target digest, layers unknown", im.Target.Digest, cr.Error))
			}
			byID[id] = r
			order = append(order, id)
		}
		r.names = append(r.names, im.Name)
		if !contains(r.targets, contentNode(im.Target.Digest)) {
			r.targets = append(r.targets, contentNode(im.Target.Digest))
		}
		for k, v := range im.Labels {
			if refName(k, containerd.LabelGCRefContent) {
				r.labelContent = append(r.labelContent, contentNode(v))
			}
		}
		if im.CreatedAt.Before(r.img.Created) {
			r.img.Created = im.CreatedAt
		}
		if im.Labels[containerd.LabelCRIPinned] == "pinned" {
			r.img.Pinned = true
		}
		switch {
		case im.Name == id: // CRI's "sha256:<id>" record
		case strings.Contains(im.Name, "@"):
			r.img.RepoDigests = append(r.img.RepoDigests, im.Name)
		default:
			r.img.RepoTags = append(r.img.RepoTags, im.Name)
		}
	}
	sort.Strings(order)
	for _, id := range order {
		r := byID[id]
		sort.Strings(r.img.RepoTags)
		sort.Strings(r.img.RepoDigests)
		sort.Strings(r.names)
		a.rows = append(a.rows, r)
	}
}

// freedBy reports whether snapshot key would be freed by removing the image
// rows in set alone: every image whose chain holds it is in set, and no
// other GC root (container, lease, gc.root label) reaches it.
func (a *analysis) freedBy(key string, set map[int]bool) bool {
	o := a.owners[key]
	if o == nil || len(o.images) == 0 || len(o.containers) > 0 || a.rw[key] != "" {
		return false
	}
	for _, i := range o.images {
		if !set[i] {
			return false
		}
	}
	_, held := a.reachOther[snapshotNode(a.inv.Snapshotter, key)]
	return !held
}

// contentFreedBy is freedBy for a content node.
func (a *analysis) contentFreedBy(n string, set map[int]bool) bool {
	rows := a.contentOwn[n]
	if len(rows) == 0 {
		return false
	}
	for _, i := range rows {
		if !set[i] {
			return false
		}
	}
	_, held := a.reachOther[n]
	return !held
}

func (a *analysis) usage(key string) (containerd.Usage, bool) {
	u, ok := a.inv.Usage[key]
	return u, ok
}

// images builds the per-image rows.
func (a *analysis) images() []Image {
	nameOf := func(i int) string { return a.rows[i].img.Name() }
	byName := map[string][]int{}
	topChain := map[string][]int{}
	for i, r := range a.rows {
		for _, n := range r.names {
			byName[n] = append(byName[n], i)
		}
		if r.cfg != nil && len(r.cfg.ChainIDs) > 0 {
			top := r.cfg.ChainIDs[len(r.cfg.ChainIDs)-1]
			topChain[top] = append(topChain[top], i)
		}
	}
	users := make([][]string, len(a.rows))
	for _, c := range a.inv.Containers {
		matched := byName[c.Image]
		if len(matched) == 0 && c.SnapshotKey != "" {
			if s, ok := a.snaps[c.SnapshotKey]; ok {
				matched = topChain[s.Parent]
			}
		}
		for _, i := range matched {
			users[i] = append(users[i], c.ID)
		}
	}

	out := make([]Image, 0, len(a.rows))
	for i, r := range a.rows {
		img := r.img
		img.Notes = append([]string(nil), r.img.Notes...)
		sort.Strings(users[i])
		img.Containers, img.ContainerIDs = len(users[i]), users[i]

		// Compressed: blobs present that the image reaches.
		var comp, compUnique uint64
		missing := 0
		self := map[int]bool{i: true}
		for n := range a.contentOf[i] {
			b := a.blobs[strings.TrimPrefix(n, "content/")]
			if b == nil {
				missing++
				continue
			}
			comp += uint64(max(b.Size, 0))
			if a.contentFreedBy(n, self) {
				compUnique += uint64(max(b.Size, 0))
			}
		}
		img.CompressedBytes, img.UniqueContentBytes = ptr(comp), ptr(compUnique)
		if missing > 0 {
			img.Notes = append(img.Notes, fmt.Sprintf("%d blob(s) it references are not in the content store (other platforms never fetched, or discard_unpacked_layers)", missing))
		}
		if r.cfg == nil {
			out = append(out, img)
			continue
		}

		var unpacked, unique, shared containerd.Usage
		present, known := 0, 0
		for li, chain := range r.cfg.ChainIDs {
			l := Layer{ChainID: chain}
			if li < len(r.cfg.DiffIDs) {
				l.DiffID = r.cfg.DiffIDs[li]
			}
			if li < len(r.cfg.Layers) {
				l.Blob = r.cfg.Layers[li].Digest
				if b := a.blobs[l.Blob]; b != nil {
					l.BlobBytes = ptr(uint64(max(b.Size, 0)))
				}
			}
			if _, ok := a.snaps[chain]; ok {
				l.Snapshot = true
				present++
				l.Dir = a.inv.SnapshotDirs[chain]
				if u, ok := a.usage(chain); ok {
					known++
					l.Bytes, l.Inodes = ptr(u.Bytes), ptr(u.Inodes)
					unpacked.Bytes += u.Bytes
					unpacked.Inodes += u.Inodes
					if a.freedBy(chain, self) {
						l.Unique = true
						unique.Bytes += u.Bytes
						unique.Inodes += u.Inodes
					} else {
						shared.Bytes += u.Bytes
						shared.Inodes += u.Inodes
					}
				}
				o := a.owners[chain]
				for _, j := range o.images {
					if j != i {
						l.SharedWith = append(l.SharedWith, nameOf(j))
					}
				}
				for _, c := range o.containers {
					l.SharedWith = append(l.SharedWith, "container "+c)
				}
				if id := a.rw[chain]; id != "" {
					l.SharedWith = append(l.SharedWith, "container "+id)
				}
				if why, held := a.reachOther[snapshotNode(a.inv.Snapshotter, chain)]; held && !strings.HasPrefix(why, "container ") {
					l.SharedWith = append(l.SharedWith, why)
				}
			}
			img.Layers = append(img.Layers, l)
		}
		n := len(r.cfg.ChainIDs)
		switch {
		case present == 0 && n > 0:
			img.Notes = append(img.Notes, fmt.Sprintf("not unpacked in snapshotter %s: none of its %d layer snapshots exists (pulled for another snapshotter, or unpack failed)", a.inv.Snapshotter, n))
		case present < n:
			img.Notes = append(img.Notes, fmt.Sprintf("%d of %d layer snapshots missing in snapshotter %s: sizes cover the present ones", n-present, n, a.inv.Snapshotter))
		}
		if known < present {
			img.Notes = append(img.Notes, fmt.Sprintf("usage unknown for %d layer snapshot(s): sizes are lower bounds", present-known))
		}
		if present > 0 || n == 0 {
			img.UnpackedBytes, img.UnpackedInodes = ptr(unpacked.Bytes), ptr(unpacked.Inodes)
			img.UniqueBytes, img.UniqueInodes = ptr(unique.Bytes), ptr(unique.Inodes)
			img.SharedBytes, img.SharedInodes = ptr(shared.Bytes), ptr(shared.Inodes)
		}
		out = append(out, img)
	}
	return out
}

// totals puts every snapshot in one bucket and reconciles with CRI.
func (a *analysis) totals() *Totals {
	t := &Totals{}
	for _, s := range a.inv.Snapshots {
		u, ok := a.usage(s.Key)
		if !ok {
			t.UsageUnknown++
			continue
		}
		o := a.owners[s.Key]
		switch {
		case o != nil && len(o.images) > 0:
			t.ImageLayers.add(u.Bytes, u.Inodes)
			if len(o.images) == 1 && a.freedBy(s.Key, map[int]bool{o.images[0]: true}) {
				t.Unique.add(u.Bytes, u.Inodes)
			} else {
				t.Shared.add(u.Bytes, u.Inodes)
			}
		case a.rw[s.Key] != "":
			t.ContainerLayers.add(u.Bytes, u.Inodes)
		case o != nil && len(o.containers) > 0:
			t.KeptByContainers.add(u.Bytes, u.Inodes)
		default:
			t.Unreferenced.add(u.Bytes, u.Inodes)
		}
		t.Snapshotter.add(u.Bytes, u.Inodes)
	}
	for _, b := range a.inv.Blobs {
		t.Content.Blobs++
		t.Content.Bytes += uint64(max(b.Size, 0))
		if _, ok := a.reachAll[contentNode(b.Digest)]; !ok {
			t.Content.Unreferenced++
			t.Content.UnreferencedBytes += uint64(max(b.Size, 0))
		}
	}
	referenced := map[string]bool{}
	for i := range a.rows {
		for n := range a.contentOf[i] {
			referenced[n] = true
		}
	}
	for n := range referenced {
		if a.blobs[strings.TrimPrefix(n, "content/")] == nil {
			t.Content.Missing++
		}
	}
	t.NotCounted = a.inv.NotCounted
	if c := a.inv.CRI; c != nil {
		cc := *c
		if c.UsedBytes != nil {
			d := int64(t.Snapshotter.Bytes) - int64(*c.UsedBytes)
			cc.DiffBytes = &d
		}
		if c.InodesUsed != nil {
			d := int64(t.Snapshotter.Inodes) - int64(*c.InodesUsed)
			cc.DiffInodes = &d
		}
		t.CRI = &cc
	}
	t.Reconciliation = a.reconcile(t)
	return t
}

// reconcile explains CRI's usedBytes against the snapshotter's sum.
func (a *analysis) reconcile(t *Totals) []string {
	var out []string
	ns, sn := a.inv.Namespace, a.inv.Snapshotter
	if c := t.CRI; c != nil && c.DiffBytes != nil {
		if *c.DiffBytes == 0 && (c.DiffInodes == nil || *c.DiffInodes == 0) {
			out = append(out, fmt.Sprintf("CRI ImageFsInfo usedBytes equals the sum above: containerd's CRI plugin sums exactly the snapshots of snapshotter %s in namespace %s", sn, ns))
		} else {
			di := int64(0)
			if c.DiffInodes != nil {
				di = *c.DiffInodes
			}
			out = append(out, fmt.Sprintf("CRI ImageFsInfo differs from the sum above by %+d bytes, %+d inodes: containerd answers from a cache refreshed every stats_collect_period (10 s by default; its oldest entry was %.1f s old), so snapshots created or removed since, and container layers written since, are not in it yet", *c.DiffBytes, di, c.AgeSeconds))
		}
	}
	if t.UsageUnknown > 0 {
		out = append(out, fmt.Sprintf("%d snapshot(s) whose Usage failed are left out of both sums (containerd's CRI plugin skips them too)", t.UsageUnknown))
	}
	for _, o := range a.inv.NotCounted {
		if o.Error != "" {
			out = append(out, fmt.Sprintf("not counted by CRI: snapshotter %s in namespace %s (could not be read: %s)", o.Snapshotter, o.Namespace, o.Error))
			continue
		}
		out = append(out, fmt.Sprintf("not counted by CRI: %d snapshot(s), %d bytes, %d inodes of snapshotter %s in namespace %s", o.Count, o.Bytes, o.Inodes, o.Snapshotter, o.Namespace))
	}
	out = append(out, fmt.Sprintf("not counted by CRI: the content store, %d blob(s), %d bytes (compressed; containerd's TODO \"Handle storage consumed by content store\")", t.Content.Blobs, t.Content.Bytes))
	if l := a.inv.Leftovers; l != nil && l.Checked && len(l.Dirs) > 0 {
		out = append(out, fmt.Sprintf("not counted by CRI: %d leftover dir(s) under %s, %d bytes, that the snapshotter's metadata no longer knows", len(l.Dirs), l.SnapshotsDir, l.Total.Bytes))
	}
	return out
}

// unaccounted lists unreferenced snapshots, unreferenced blobs, leases and
// leftover dirs.
func (a *analysis) unaccounted() *Unaccounted {
	u := &Unaccounted{Snapshots: []OrphanSnapshot{}, Blobs: []OrphanBlob{}, Leases: []LeaseInfo{}, LeftoverDirs: a.inv.Leftovers}
	for _, s := range a.inv.Snapshots {
		if o := a.owners[s.Key]; (o != nil && (len(o.images) > 0 || len(o.containers) > 0)) || a.rw[s.Key] != "" {
			continue
		}
		os := OrphanSnapshot{Key: s.Key, Kind: s.Kind, Parent: s.Parent, Dir: a.inv.SnapshotDirs[s.Key], Created: s.Created}
		if us, ok := a.usage(s.Key); ok {
			os.Bytes, os.Inodes = ptr(us.Bytes), ptr(us.Inodes)
		}
		why, held := a.reachAll[snapshotNode(a.inv.Snapshotter, s.Key)]
		os.Collectable, os.HeldBy = !held, why
		u.Snapshots = append(u.Snapshots, os)
	}
	sort.Slice(u.Snapshots, func(i, j int) bool { return u.Snapshots[i].Key < u.Snapshots[j].Key })
	for _, b := range a.inv.Blobs {
		if _, ok := a.reachAll[contentNode(b.Digest)]; ok {
			continue
		}
		u.Blobs = append(u.Blobs, OrphanBlob{Digest: b.Digest, Bytes: uint64(max(b.Size, 0)), Created: b.CreatedAt, Kind: blobKind(b, a.blobs)})
	}
	sort.Slice(u.Blobs, func(i, j int) bool {
		if u.Blobs[i].Bytes != u.Blobs[j].Bytes {
			return u.Blobs[i].Bytes > u.Blobs[j].Bytes
		}
		return u.Blobs[i].Digest < u.Blobs[j].Digest
	})
	for _, l := range a.inv.Leases {
		li := LeaseInfo{ID: l.ID, Created: l.CreatedAt, Labels: l.Labels, Resources: len(l.Resources)}
		exp, at := expired(l.Labels, a.now)
		li.Expires = at
		switch {
		case exp:
			li.Stale, li.StaleReason = true, fmt.Sprintf("expired %s ago (%s)", a.now.Sub(*at).Round(time.Second), containerd.LabelGCExpire)
		case !l.CreatedAt.IsZero() && a.now.Sub(l.CreatedAt) > StaleLeaseAge:
			li.Stale, li.StaleReason = true, fmt.Sprintf("created %s ago (older than %s)", a.now.Sub(l.CreatedAt).Round(time.Minute), StaleLeaseAge)
		}
		u.Leases = append(u.Leases, li)
	}
	sort.Slice(u.Leases, func(i, j int) bool { return u.Leases[i].ID < u.Leases[j].ID })
	return u
}

// blobKind guesses what a blob is from its labels and who names it.
func blobKind(b containerd.Blob, all map[string]*containerd.Blob) string {
	if _, ok := b.Labels["containerd.io/uncompressed"]; ok {
		return "layer"
	}
	for k := range b.Labels {
		if strings.HasPrefix(k, "containerd.io/gc.ref.content.m.") {
			return "index"
		}
		if refName(k, containerd.LabelGCRefContent) {
			return "manifest"
		}
		if strings.HasPrefix(k, containerd.LabelGCRefSnapshot) {
			return "config"
		}
	}
	for _, o := range all {
		for k, v := range o.Labels {
			if v == b.Digest && strings.HasPrefix(k, "containerd.io/gc.ref.content.config") {
				return "config"
			}
		}
	}
	return ""
}

// whatIf simulates removing the named images.
func (a *analysis) whatIf(names []string) (*WhatIf, error) {
	set := map[int]bool{}
	w := &WhatIf{Images: names}
	for _, q := range names {
		i, err := a.resolve(q)
		if err != nil {
			return nil, err
		}
		if !set[i] {
			set[i] = true
			w.IDs = append(w.IDs, a.rows[i].img.ID)
		}
	}
	sort.Strings(w.IDs)
	kept := map[string]bool{}
	for i := range set {
		r := a.rows[i]
		if r.cfg == nil {
			continue
		}
		for _, c := range r.cfg.ChainIDs {
			if _, ok := a.snaps[c]; ok && !a.freedBy(c, set) {
				kept[c] = true
			}
		}
	}
	for key := range a.snaps {
		u, ok := a.usage(key)
		if !ok {
			continue
		}
		if a.freedBy(key, set) {
			w.Freed.add(u.Bytes, u.Inodes)
		} else if kept[key] {
			w.Kept.add(u.Bytes, u.Inodes)
		}
	}
	for n := range a.contentOwn {
		if b := a.blobs[strings.TrimPrefix(n, "content/")]; b != nil && a.contentFreedBy(n, set) {
			w.FreedContent.add(uint64(max(b.Size, 0)), 0)
		}
	}
	imgs := a.images()
	for i := range set {
		if imgs[i].Containers > 0 {
			w.InUse = append(w.InUse, imgs[i].Name())
		}
	}
	sort.Strings(w.InUse)
	return w, nil
}

// resolve finds the row an image reference names: a record name, the same
// name normalized (nginx → docker.io/library/nginx:latest), or an image ID
// or unique ID prefix (with or without "sha256:").
func (a *analysis) resolve(q string) (int, error) {
	for i, r := range a.rows {
		if contains(r.names, q) || r.img.ID == q {
			return i, nil
		}
	}
	if n, ok := normalize(q); ok {
		for i, r := range a.rows {
			if contains(r.names, n) {
				return i, nil
			}
		}
	}
	hex := strings.TrimPrefix(q, "sha256:")
	if len(hex) >= 3 && isHex(hex) {
		var hits []int
		for i, r := range a.rows {
			if strings.HasPrefix(strings.TrimPrefix(r.img.ID, "sha256:"), hex) {
				hits = append(hits, i)
			}
		}
		switch len(hits) {
		case 1:
			return hits[0], nil
		case 0:
		default:
			var ids []string
			for _, i := range hits {
				ids = append(ids, a.rows[i].img.ID)
			}
			return 0, fmt.Errorf("%w %q: %s", ErrAmbiguousImage, q, strings.Join(ids, ", "))
		}
	}
	return 0, fmt.Errorf("%w %q (give a tag, digest reference, image ID or ID prefix as imagefs images lists them)", ErrNoSuchImage, q)
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func ptr(v uint64) *uint64 { return &v }

func val(p *uint64) int64 {
	if p == nil {
		return -1
	}
	return int64(*p)
}

// sortImages orders images: by unique, shared or unpacked bytes, largest
// first (unknown last), or by age, oldest first; ties by name.
func sortImages(imgs []Image, by string) {
	key := func(im *Image) int64 {
		switch by {
		case SortShared:
			return val(im.SharedBytes)
		case SortSize:
			if im.UnpackedBytes == nil {
				return val(im.Size)
			}
			return val(im.UnpackedBytes)
		case SortAge:
			return 0
		}
		if im.UniqueBytes == nil && im.Size != nil {
			return val(im.Size)
		}
		return val(im.UniqueBytes)
	}
	sort.SliceStable(imgs, func(i, j int) bool {
		a, b := &imgs[i], &imgs[j]
		if by == SortAge {
			if !a.Created.Equal(b.Created) {
				return a.Created.Before(b.Created)
			}
		} else if ka, kb := key(a), key(b); ka != kb {
			return ka > kb
		}
		if a.Name() != b.Name() {
			return a.Name() < b.Name()
		}
		return a.ID < b.ID
	})
}

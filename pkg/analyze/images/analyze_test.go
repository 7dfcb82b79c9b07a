package images

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imagefs/imagefs/pkg/containerd"
)

func find(t *testing.T, r *Report, name string) Image {
	t.Helper()
	for _, im := range r.Images {
		if contains(im.RepoTags, name) || contains(im.RepoDigests, name) {
			return im
		}
	}
	t.Fatalf("no image %s in report (%d images)", name, len(r.Images))
	return Image{}
}

func analyze(t *testing.T, f *fixture, o Options) *Report {
	t.Helper()
	r, err := Analyze(f.inv, o)
	if err != nil {
		t.Fatal(err)
	}
	checkReconciles(t, r)
	return r
}

// checkReconciles asserts the invariants every report must satisfy.
func checkReconciles(t *testing.T, r *Report) {
	t.Helper()
	tt := r.Totals
	if tt.ImageLayers.Bytes != tt.Unique.Bytes+tt.Shared.Bytes || tt.ImageLayers.Inodes != tt.Unique.Inodes+tt.Shared.Inodes {
		t.Errorf("image layers %+v != unique %+v + shared %+v", tt.ImageLayers, tt.Unique, tt.Shared)
	}
	sum := tt.ImageLayers.Bytes + tt.ContainerLayers.Bytes + tt.KeptByContainers.Bytes + tt.Unreferenced.Bytes
	if sum != tt.Snapshotter.Bytes {
		t.Errorf("buckets sum to %d, snapshotter total %d", sum, tt.Snapshotter.Bytes)
	}
	if r.ImageCount == len(r.Images) { // Σ unique over all images is the unique bucket
		var uniq uint64
		for _, im := range r.Images {
			if im.UniqueBytes != nil {
				uniq += *im.UniqueBytes
			}
			if im.UnpackedBytes != nil && *im.UnpackedBytes != *im.UniqueBytes+*im.SharedBytes {
				t.Errorf("%s: unpacked %d != unique %d + shared %d", im.Name(), *im.UnpackedBytes, *im.UniqueBytes, *im.SharedBytes)
			}
		}
		if uniq != tt.Unique.Bytes {
			t.Errorf("Σ per-image unique %d != unique total %d", uniq, tt.Unique.Bytes)
		}
	}
}

func TestUniqueShared(t *testing.T) {
	base, a, b, c := layerSize["base"], layerSize["a"], layerSize["b"], layerSize["c"]
	type want struct {
		unique, shared uint64
		containers     int
	}
	tests := []struct {
		name   string
		build  func() *fixture
		want   map[string]want
		totals map[string]uint64 // bucket -> bytes
	}{
		{
			name: "shared base layer",
			build: func() *fixture {
				return newFixture().image("a:1", []string{"base", "a"}).image("b:1", []string{"base", "b"}).image("c:1", []string{"c"})
			},
			want:   map[string]want{"a:1": {a, base, 0}, "b:1": {b, base, 0}, "c:1": {c, 0, 0}},
			totals: map[string]uint64{"imageLayers": base + a + b + c, "unique": a + b + c, "shared": base, "snapshotter": base + a + b + c},
		},
		{
			name: "container holds its image's whole chain",
			build: func() *fixture {
				return newFixture().image("a:1", []string{"base", "a"}).image("c:1", []string{"c"}).container("ctr1", "c:1", 4096)
			},
			want:   map[string]want{"a:1": {base + a, 0, 0}, "c:1": {0, c, 1}},
			totals: map[string]uint64{"unique": base + a, "shared": c, "containerLayers": 4096, "snapshotter": base + a + c + 4096},
		},
		{
			name: "same layers in one image twice is still one image",
			build: func() *fixture {
				return newFixture().image("a:1", []string{"base", "a"}, "a:latest", "registry/a@sha256:0123")
			},
			want:   map[string]want{"a:1": {base + a, 0, 0}},
			totals: map[string]uint64{"unique": base + a},
		},
		{
			name: "image removed while its container runs: layers kept by the container",
			build: func() *fixture {
				return newFixture().image("a:1", []string{"base", "a"}).image("b:1", []string{"base", "b"}).container("ctr1", "b:1", 0).removeImage("b:1")
			},
			// base is used by a:1 and by the container: shared
			want:   map[string]want{"a:1": {a, base, 0}},
			totals: map[string]uint64{"unique": a, "shared": base, "keptByContainers": b, "unreferenced": 0},
		},
		{
			name: "removed image's snapshots are unreferenced until GC",
			build: func() *fixture {
				return newFixture().image("a:1", []string{"base", "a"}).image("b:1", []string{"base", "b"}).removeImage("b:1")
			},
			want:   map[string]want{"a:1": {base + a, 0, 0}},
			totals: map[string]uint64{"unique": base + a, "unreferenced": b},
		},
		{
			name: "a lease keeps a layer: not unique",
			build: func() *fixture {
				f := newFixture().image("a:1", []string{"base", "a"})
				return f.lease("pull-1", nil, containerd.LeaseResource{ID: f.top("a:1"), Type: "snapshots/overlayfs"})
			},
			// the lease holds a and, through the parent edge, base
			want:   map[string]want{"a:1": {0, base + a, 0}},
			totals: map[string]uint64{"unique": 0, "shared": base + a},
		},
		{
			name: "an expired lease keeps nothing",
			build: func() *fixture {
				f := newFixture().image("a:1", []string{"base", "a"})
				return f.lease("old", map[string]string{containerd.LabelGCExpire: t0.Add(-time.Minute).Format(time.RFC3339)},
					containerd.LeaseResource{ID: f.top("a:1"), Type: "snapshots/overlayfs"})
			},
			want:   map[string]want{"a:1": {base + a, 0, 0}},
			totals: map[string]uint64{"unique": base + a},
		},
		{
			name: "a gc.root label keeps a snapshot",
			build: func() *fixture {
				f := newFixture().image("a:1", []string{"base", "a"})
				f.inv.Snapshots[0].Labels = map[string]string{containerd.LabelGCRoot: "2026-01-01T00:00:00Z"}
				return f
			},
			want:   map[string]want{"a:1": {a, base, 0}},
			totals: map[string]uint64{"unique": a, "shared": base},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := analyze(t, tt.build(), Options{})
			for name, w := range tt.want {
				im := find(t, r, name)
				if im.UniqueBytes == nil || im.SharedBytes == nil {
					t.Fatalf("%s: unique/shared unknown: %+v", name, im)
				}
				if *im.UniqueBytes != w.unique || *im.SharedBytes != w.shared || im.Containers != w.containers {
					t.Errorf("%s: unique %d shared %d containers %d, want %d %d %d", name, *im.UniqueBytes, *im.SharedBytes, im.Containers, w.unique, w.shared, w.containers)
				}
			}
			got := map[string]uint64{
				"imageLayers": r.Totals.ImageLayers.Bytes, "unique": r.Totals.Unique.Bytes, "shared": r.Totals.Shared.Bytes,
				"containerLayers": r.Totals.ContainerLayers.Bytes, "keptByContainers": r.Totals.KeptByContainers.Bytes,
				"unreferenced": r.Totals.Unreferenced.Bytes, "snapshotter": r.Totals.Snapshotter.Bytes,
			}
			for k, v := range tt.totals {
				if got[k] != v {
					t.Errorf("totals %s = %d, want %d", k, got[k], v)
				}
			}
		})
	}
}

func TestWhatIf(t *testing.T) {
	base, a, b, c := layerSize["base"], layerSize["a"], layerSize["b"], layerSize["c"]
	build := func() *fixture {
		return newFixture().image("a:1", []string{"base", "a"}).image("b:1", []string{"base", "b"}).image("c:1", []string{"c"})
	}
	tests := []struct {
		name    string
		build   func() *fixture
		set     []string
		freed   uint64
		kept    uint64
		content uint64 // compressed bytes freed
		inUse   []string
	}{
		{name: "one image: its own layer", build: build, set: []string{"a:1"}, freed: a, kept: base,
			content: a/2 + 500 + 300},
		{name: "two images sharing base: base freed too", build: build, set: []string{"a:1", "b:1"}, freed: base + a + b,
			content: base/2 + a/2 + b/2 + 2*(500+300)},
		{name: "unrelated images add up", build: build, set: []string{"a:1", "c:1"}, freed: a + c, kept: base,
			content: a/2 + c/2 + 2*(500+300)},
		{name: "same image twice counts once", build: build, set: []string{"a:1", "a:1"}, freed: a, kept: base,
			content: a/2 + 500 + 300},
		{name: "image in use frees nothing", build: func() *fixture { return build().container("x", "c:1", 10) },
			set: []string{"c:1"}, freed: 0, kept: c, content: c/2 + 500 + 300, inUse: []string{"c:1"}},
		{name: "by ID prefix and short name", build: build, set: []string{strings.TrimPrefix(dg("config-a:1"), "sha256:")[:10], "c:1"},
			freed: a + c, kept: base, content: a/2 + c/2 + 2*(500+300)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := analyze(t, tt.build(), Options{WhatIf: tt.set})
			w := r.WhatIf
			if w == nil {
				t.Fatal("no what-if")
			}
			if w.Freed.Bytes != tt.freed || w.Kept.Bytes != tt.kept || w.FreedContent.Bytes != tt.content {
				t.Errorf("freed %d kept %d content %d, want %d %d %d", w.Freed.Bytes, w.Kept.Bytes, w.FreedContent.Bytes, tt.freed, tt.kept, tt.content)
			}
			if !reflect.DeepEqual(w.InUse, tt.inUse) {
				t.Errorf("in use %v, want %v", w.InUse, tt.inUse)
			}
		})
	}
}

func TestWhatIfErrors(t *testing.T) {
	f := newFixture().image("docker.io/library/nginx:latest", []string{"a"}).image("b:1", []string{"b"})
	// Short names are normalized like docker and crictl do.
	r := analyze(t, f, Options{WhatIf: []string{"nginx"}})
	if r.WhatIf.Freed.Bytes != layerSize["a"] {
		t.Errorf("nginx freed %d, want %d", r.WhatIf.Freed.Bytes, layerSize["a"])
	}
	if _, err := Analyze(f.inv, Options{WhatIf: []string{"nope:1"}}); !errors.Is(err, ErrNoSuchImage) {
		t.Errorf("unknown image: err %v, want ErrNoSuchImage", err)
	}
	// Two config digests share no long prefix, but every ID matches "sha256:" + "".
	f2 := newFixture()
	f2.image("x:1", []string{"a"})
	f2.image("y:1", []string{"b"})
	ids := []string{}
	for _, im := range f2.inv.Images {
		if strings.HasPrefix(im.Name, "sha256:") {
			ids = append(ids, strings.TrimPrefix(im.Name, "sha256:"))
		}
	}
	common := commonPrefix(ids[0], ids[1])
	if len(common) >= 3 {
		if _, err := Analyze(f2.inv, Options{WhatIf: []string{common}}); !errors.Is(err, ErrAmbiguousImage) {
			t.Errorf("prefix %q of two IDs: err %v, want ErrAmbiguousImage", common, err)
		}
	}
	if _, err := Analyze(f.inv, Options{Sort: "bogus"}); !errors.Is(err, ErrBadSort) {
		t.Errorf("bad sort: %v", err)
	}
}

func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

func TestNamesAndContainers(t *testing.T) {
	f := newFixture().image("a:1", []string{"base", "a"}, "a:latest", "registry/a@sha256:0123").image("b:1", []string{"base", "b"})
	f.container("by-name", "a:latest", 0)
	// a container whose Image names nothing known is matched by its
	// snapshot's parent (the image's top layer)
	f.container("by-chain", "b:1", 0)
	f.inv.Containers[1].Image = "gone:1"
	r := analyze(t, f, Options{})
	a := find(t, r, "a:1")
	if !reflect.DeepEqual(a.RepoTags, []string{"a:1", "a:latest"}) || !reflect.DeepEqual(a.RepoDigests, []string{"registry/a@sha256:0123"}) {
		t.Errorf("names: tags %v digests %v", a.RepoTags, a.RepoDigests)
	}
	if a.ID != dg("config-a:1") {
		t.Errorf("ID %s, want the config digest", a.ID)
	}
	if !reflect.DeepEqual(a.ContainerIDs, []string{"by-name"}) {
		t.Errorf("a containers %v", a.ContainerIDs)
	}
	if b := find(t, r, "b:1"); !reflect.DeepEqual(b.ContainerIDs, []string{"by-chain"}) {
		t.Errorf("b containers %v", b.ContainerIDs)
	}
	if len(r.Images) != 2 {
		t.Errorf("%d rows, want 2 (one per image ID)", len(r.Images))
	}
	if *a.CompressedBytes != layerSize["base"]/2+layerSize["a"]/2+500+300 {
		t.Errorf("compressed %d", *a.CompressedBytes)
	}
	// layers: base shared with b:1 and both containers, a's own layer
	// with the container that runs a
	if len(a.Layers) != 2 || a.Layers[0].Unique || a.Layers[1].Unique ||
		!reflect.DeepEqual(a.Layers[0].SharedWith, []string{"b:1", "container by-name", "container by-chain"}) ||
		!reflect.DeepEqual(a.Layers[1].SharedWith, []string{"container by-name"}) {
		t.Errorf("layers %+v", a.Layers)
	}
}

func TestUnaccounted(t *testing.T) {
	f := newFixture().image("a:1", []string{"base", "a"}).image("b:1", []string{"base", "b"})
	orphanParent := f.chain("a:1", 0)
	f.removeImage("b:1")
	// an active snapshot nothing uses (an unpack interrupted, a test's Prepare)
	f.snapshot("extract-1 sha256:xyz", orphanParent, containerd.KindActive, 8192, 2)
	// a blob nothing references, and one a lease holds
	f.blob(dg("garbage"), 12345, nil)
	f.blob(dg("leased"), 999, nil)
	f.lease("held", nil, containerd.LeaseResource{ID: dg("leased"), Type: "content"})
	f.lease("expired", map[string]string{containerd.LabelGCExpire: t0.Add(-time.Hour).Format(time.RFC3339)})
	f.inv.Leases = append(f.inv.Leases, containerd.Lease{ID: "old", CreatedAt: t0.Add(-25 * time.Hour)})
	r := analyze(t, f, Options{})
	un := r.Unaccounted

	var keys []string
	for _, s := range un.Snapshots {
		keys = append(keys, s.Key)
		if !s.Collectable {
			t.Errorf("%s held by %s, want collectable", s.Key, s.HeldBy)
		}
	}
	wantKeys := []string{"extract-1 sha256:xyz", f.chain("b:1", 1)}
	if !reflect.DeepEqual(sortedCopy(keys), sortedCopy(wantKeys)) {
		t.Errorf("unreferenced snapshots %v, want %v", keys, wantKeys)
	}
	if r.Totals.Unreferenced.Bytes != 8192+layerSize["b"] {
		t.Errorf("unreferenced bytes %d", r.Totals.Unreferenced.Bytes)
	}
	var blobs []string
	for _, b := range un.Blobs {
		blobs = append(blobs, b.Digest)
	}
	// b's manifest, config and b layer blob, plus the garbage blob; not the leased one
	want := []string{dg("garbage"), dg("manifest-b:1"), dg("config-b:1"), dg("blob-b")}
	if !reflect.DeepEqual(sortedCopy(blobs), sortedCopy(want)) {
		t.Errorf("unreferenced blobs %v, want %v", blobs, want)
	}
	kinds := map[string]string{}
	for _, b := range un.Blobs {
		kinds[b.Digest] = b.Kind
	}
	if kinds[dg("blob-b")] != "layer" || kinds[dg("manifest-b:1")] != "manifest" || kinds[dg("config-b:1")] != "config" {
		t.Errorf("blob kinds %v", kinds)
	}
	stale := map[string]bool{}
	for _, l := range un.Leases {
		stale[l.ID] = l.Stale
	}
	if !reflect.DeepEqual(stale, map[string]bool{"held": false, "expired": true, "old": true}) {
		t.Errorf("stale leases %v", stale)
	}
	if r.Totals.Content.Unreferenced != 4 {
		t.Errorf("content unreferenced %d", r.Totals.Content.Unreferenced)
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

func TestNotUnpackedAndUnknownUsage(t *testing.T) {
	f := newFixture().image("a:1", []string{"base", "a"}).image("b:1", []string{"base", "b"})
	// b's top layer was never unpacked; a's top layer Usage failed
	bTop, aTop := f.top("b:1"), f.top("a:1")
	var kept []containerd.Snapshot
	for _, s := range f.inv.Snapshots {
		if s.Key != bTop {
			kept = append(kept, s)
		}
	}
	f.inv.Snapshots = kept
	delete(f.inv.Usage, bTop)
	delete(f.inv.Usage, aTop)
	r := analyze(t, f, Options{})
	b := find(t, r, "b:1")
	if b.Layers[1].Snapshot || b.UnpackedBytes == nil || *b.UnpackedBytes != layerSize["base"] {
		t.Errorf("b: %+v", b)
	}
	if len(b.Notes) == 0 || !strings.Contains(b.Notes[0], "1 of 2 layer snapshots missing") {
		t.Errorf("b notes %v", b.Notes)
	}
	a := find(t, r, "a:1")
	if a.Layers[1].Bytes != nil || !strings.Contains(strings.Join(a.Notes, ";"), "usage unknown") {
		t.Errorf("a: %+v", a)
	}
	if r.Totals.UsageUnknown != 1 {
		t.Errorf("usage unknown %d", r.Totals.UsageUnknown)
	}
	// nothing unpacked at all: sizes unknown, not 0
	g := newFixture().image("x:1", []string{"c"})
	g.inv.Snapshots = nil
	rx := analyze(t, g, Options{})
	if x := find(t, rx, "x:1"); x.UnpackedBytes != nil || x.UniqueBytes != nil {
		t.Errorf("x: unpacked %v unique %v, want unknown", x.UnpackedBytes, x.UniqueBytes)
	}
}

func TestSortAndTop(t *testing.T) {
	f := newFixture().image("a:1", []string{"base", "a"}).image("b:1", []string{"base", "b"}).image("c:1", []string{"c"}).image("d:1", []string{"base", "d"})
	names := func(r *Report) []string {
		var out []string
		for _, im := range r.Images {
			out = append(out, im.Name())
		}
		return out
	}
	for _, tt := range []struct {
		sort string
		top  int
		want []string
	}{
		{SortUnique, 0, []string{"c:1", "a:1", "d:1", "b:1"}},
		{SortShared, 0, []string{"a:1", "b:1", "d:1", "c:1"}},
		{SortSize, 2, []string{"c:1", "a:1"}},
		{SortAge, 0, []string{"d:1", "c:1", "b:1", "a:1"}}, // fixture: later images are older
	} {
		r := analyze(t, f, Options{Sort: tt.sort, Top: tt.top})
		if got := names(r); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("sort %s top %d: %v, want %v", tt.sort, tt.top, got, tt.want)
		}
		if r.ImageCount != 4 {
			t.Errorf("image count %d", r.ImageCount)
		}
	}
}

func TestReconciliationWithCRI(t *testing.T) {
	f := newFixture().image("a:1", []string{"base", "a"})
	total := layerSize["base"] + layerSize["a"]
	for _, tt := range []struct {
		name string
		used uint64
		want string
	}{
		{"equal", total, "equals the sum above"},
		{"stale cache", total - 100, "differs from the sum above by +100 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.inv.CRI = &CRIUsage{UsedBytes: u(tt.used), InodesUsed: u(21), AgeSeconds: 3}
			r := analyze(t, f, Options{})
			if !strings.Contains(r.Totals.Reconciliation[0], tt.want) {
				t.Errorf("reconciliation %q, want %q", r.Totals.Reconciliation[0], tt.want)
			}
			if *r.Totals.CRI.DiffBytes != int64(total-tt.used) {
				t.Errorf("diff %d", *r.Totals.CRI.DiffBytes)
			}
		})
	}
}

func TestChooseSnapshotter(t *testing.T) {
	plugins := []containerd.Plugin{{ID: "native", Root: "/r/io.containerd.snapshotter.v1.native", OK: true}, {ID: "overlayfs", Root: "/split/overlay", OK: true}}
	for _, tt := range []struct {
		flag, cri, mp string
		want          string
	}{
		{"native", "overlayfs", "", "native"},
		{"", "native", "", "native"},
		{"", "", "/split/overlay", "overlayfs"}, // root_path: only the plugin root says which
		{"", "", "/r/io.containerd.snapshotter.v1.zfs", "zfs"},
		{"", "", "", "overlayfs"},
	} {
		if got, src := chooseSnapshotter(tt.flag, tt.cri, tt.mp, plugins); got != tt.want {
			t.Errorf("chooseSnapshotter(%q, %q, %q) = %s (%s), want %s", tt.flag, tt.cri, tt.mp, got, src, tt.want)
		}
	}
}

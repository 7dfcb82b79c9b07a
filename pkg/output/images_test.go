package output_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/analyze/images"
	"github.com/imagefs/imagefs/pkg/output"
)

var imgNow = time.Date(2026, 12, 4, 15, 20, 31, 0, time.UTC)

func u64(v uint64) *uint64 { return &v }
func i64(v int64) *int64   { return &v }

// imagesReport is a small node as containerd 2.4 shows it: two apps sharing
// a base layer, a tool a container runs, the pinned pause image, and what
// no image accounts for.
func imagesReport() *images.Report {
	exp := imgNow.Add(-2 * time.Hour)
	return &images.Report{
		CollectedAt: imgNow,
		Source:      images.SourceContainerd,
		Runtime: images.Runtime{Name: "containerd", Version: "v2.4.2", Endpoint: "unix:///run/containerd/containerd.sock",
			Containerd: &images.ContainerdInfo{Address: "/run/containerd/containerd.sock", Version: "2.4.2", Namespace: "k8s.io",
				Snapshotter: "overlayfs", SnapshotterSource: "the snapshotter plugin whose root is ImageFsInfo's mountpoint /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs",
				SnapshotterRoot: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"}},
		Sort:       images.SortUnique,
		ImageCount: 5,
		Images: []images.Image{
			{ID: "sha256:a6a0a6b82648109173b1e8e945c99798c7ec28dc10f983c4480c0ad508483c1c", RepoTags: []string{"registry.example.com/shop/app-a:v1", "registry.example.com/shop/app-a:latest"},
				RepoDigests: []string{"registry.example.com/shop/app-a@sha256:30b836c4f255837b303b34beb61691121bd5c2d06e638c7256631b5ee5f9d559"},
				Created:     imgNow.Add(-50 * time.Hour), CompressedBytes: u64(5_250_000), UniqueContentBytes: u64(3_150_000),
				UnpackedBytes: u64(5_373_952), UnpackedInodes: u64(30), UniqueBytes: u64(3_149_824), UniqueInodes: u64(4), SharedBytes: u64(2_224_128), SharedInodes: u64(26),
				Layers: []images.Layer{
					{DiffID: "sha256:90770110d0630c615e6da339ec952b708155e72a475c00c22654d538e6fcf9dc", ChainID: "sha256:90770110d0630c615e6da339ec952b708155e72a475c00c22654d538e6fcf9dc",
						Blob: "sha256:199ef15e2818def4802bfd5a7e34dea9a1fb36f2be9462ac5dd8e9f182227938", BlobBytes: u64(2_106_000), Snapshot: true, Dir: "snapshots/1",
						Bytes: u64(2_224_128), Inodes: u64(26), SharedWith: []string{"registry.example.com/shop/app-b:v1"}},
					{DiffID: "sha256:574123594d905b92b266313df80f28766109b04033c968ac22c74f5a108a153b", ChainID: "sha256:fb962e5e41c4e642f7648116f336f069ed012800aae6d22147ff5a0a3100e554",
						Blob: "sha256:acaf612c06a6462f65436160952165f0f216f751a064e8b5d3608f8b4c5fc4a6", BlobBytes: u64(3_147_000), Snapshot: true, Dir: "snapshots/2",
						Bytes: u64(3_149_824), Inodes: u64(4), Unique: true},
				}},
			{ID: "sha256:0769676fb0eb32672ee5f10fcb14f189b87270651f410fabc74061e7538eea86", RepoTags: []string{"registry.example.com/shop/app-b:v1"},
				Created: imgNow.Add(-50 * time.Hour), CompressedBytes: u64(2_212_000), UniqueContentBytes: u64(106_000),
				UnpackedBytes: u64(3_055_616), UnpackedInodes: u64(230), UniqueBytes: u64(831_488), UniqueInodes: u64(204), SharedBytes: u64(2_224_128), SharedInodes: u64(26),
				Layers: []images.Layer{
					{ChainID: "sha256:90770110d0630c615e6da339ec952b708155e72a475c00c22654d538e6fcf9dc", BlobBytes: u64(2_106_000), Snapshot: true, Dir: "snapshots/1", Bytes: u64(2_224_128), Inodes: u64(26), SharedWith: []string{"registry.example.com/shop/app-a:v1"}},
					{ChainID: "sha256:513a162a4afc15e056f91d047621e0b4595ce1de0378f7ff913cd12f3b8e9b83", BlobBytes: u64(106_000), Snapshot: true, Dir: "snapshots/3", Bytes: u64(831_488), Inodes: u64(204), Unique: true},
				}},
			{ID: "sha256:c192a034bbee1675ca99ba6d4fab614de08137cf268964d6f1e260add5feb547", RepoTags: []string{"registry.example.com/tools/tool:v1"},
				Created: imgNow.Add(-3 * time.Hour), Containers: 1, ContainerIDs: []string{"4f1c9a0b77e2"},
				CompressedBytes: u64(4_196_000), UniqueContentBytes: u64(4_196_000), UnpackedBytes: u64(4_202_496), UnpackedInodes: u64(3),
				UniqueBytes: u64(0), UniqueInodes: u64(0), SharedBytes: u64(4_202_496), SharedInodes: u64(3),
				Layers: []images.Layer{{ChainID: "sha256:119637ac0d49594e4a6b1ea1687c6ccd53689834a00632aeda0ac3acca9261a4", BlobBytes: u64(4_196_000), Snapshot: true, Dir: "snapshots/4", Bytes: u64(4_202_496), Inodes: u64(3), SharedWith: []string{"container 4f1c9a0b77e2"}}}},
			{ID: "sha256:0f0f0f0f0f0f1111222233334444555566667777888899990000aaaabbbbcccc", RepoTags: []string{"registry.k8s.io/pause:3.10"}, Pinned: true,
				Created: imgNow.Add(-400 * time.Hour), Containers: 1, ContainerIDs: []string{"9d8e7f6a5b4c"},
				CompressedBytes: u64(320_000), UniqueContentBytes: u64(320_000), UnpackedBytes: u64(745_472), UnpackedInodes: u64(5),
				UniqueBytes: u64(0), UniqueInodes: u64(0), SharedBytes: u64(745_472), SharedInodes: u64(5),
				Layers: []images.Layer{{ChainID: "sha256:5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f", BlobBytes: u64(320_000), Snapshot: true, Dir: "snapshots/5", Bytes: u64(745_472), Inodes: u64(5), SharedWith: []string{"container 9d8e7f6a5b4c"}}}},
			{ID: "sha256:9999888877776666555544443333222211110000ffffeeeeddddccccbbbbaaaa", RepoDigests: []string{"registry.example.com/tools/debug@sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"},
				Created: imgNow.Add(-10 * time.Minute), CompressedBytes: u64(1_000), UniqueContentBytes: u64(1_000),
				Layers: []images.Layer{{ChainID: "sha256:7777777777777777777777777777777777777777777777777777777777777777", BlobBytes: nil}},
				Notes:  []string{"not unpacked in snapshotter overlayfs: none of its 1 layer snapshots exists (pulled for another snapshotter, or unpack failed)", "1 blob(s) it references are not in the content store (other platforms never fetched, or discard_unpacked_layers)"}},
		},
		Totals: &images.Totals{
			ImageLayers:      images.Amount{Count: 5, Bytes: 11_153_536, Inodes: 264},
			Unique:           images.Amount{Count: 2, Bytes: 3_981_312, Inodes: 208},
			Shared:           images.Amount{Count: 3, Bytes: 7_172_224, Inodes: 56},
			ContainerLayers:  images.Amount{Count: 2, Bytes: 5_251_072, Inodes: 12},
			KeptByContainers: images.Amount{},
			Unreferenced:     images.Amount{Count: 1, Bytes: 69_632, Inodes: 3},
			Snapshotter:      images.Amount{Count: 8, Bytes: 16_474_240, Inodes: 279},
			CRI: &images.CRIUsage{Mountpoint: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs", UsedBytes: u64(16_404_608), InodesUsed: u64(276),
				Timestamp: imgNow.Add(-4 * time.Second), AgeSeconds: 4.2, DiffBytes: i64(69_632), DiffInodes: i64(3)},
			Reconciliation: []string{
				"CRI ImageFsInfo differs from the sum above by +69632 bytes, +3 inodes: containerd answers from a cache refreshed every stats_collect_period (10 s by default; its oldest entry was 4.2 s old), so snapshots created or removed since, and container layers written since, are not in it yet",
				"not counted by CRI: 2 snapshot(s), 8192 bytes, 4 inodes of snapshotter overlayfs in namespace default",
				"not counted by CRI: the content store, 14 blob(s), 12301234 bytes (compressed; containerd's TODO \"Handle storage consumed by content store\")",
			},
			Content:    images.ContentTotals{Blobs: 14, Bytes: 12_301_234, Unreferenced: 2, UnreferencedBytes: 307_500, Missing: 1},
			NotCounted: []images.OtherUsage{{Namespace: "default", Snapshotter: "overlayfs", Amount: images.Amount{Count: 2, Bytes: 8192, Inodes: 4}}},
		},
		WhatIf: &images.WhatIf{
			Images: []string{"registry.example.com/shop/app-a:v1", "registry.example.com/shop/app-b:v1"},
			IDs:    []string{"sha256:0769676fb0eb32672ee5f10fcb14f189b87270651f410fabc74061e7538eea86", "sha256:a6a0a6b82648109173b1e8e945c99798c7ec28dc10f983c4480c0ad508483c1c"},
			Freed:  images.Amount{Count: 3, Bytes: 6_205_440, Inodes: 234}, FreedContent: images.Amount{Count: 7, Bytes: 7_462_000},
		},
		Unaccounted: &images.Unaccounted{
			Snapshots: []images.OrphanSnapshot{
				{Key: "imagefs-orphan", Kind: "Active", Parent: "sha256:90770110d0630c615e6da339ec952b708155e72a475c00c22654d538e6fcf9dc", Dir: "snapshots/9",
					Bytes: u64(69_632), Inodes: u64(3), Created: imgNow.Add(-90 * time.Second), Collectable: true},
			},
			Blobs: []images.OrphanBlob{
				{Digest: "sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e", Bytes: 307_200, Created: imgNow.Add(-2 * time.Minute), Kind: "layer"},
				{Digest: "sha256:6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a", Bytes: 300, Created: imgNow.Add(-2 * time.Minute), Kind: "config"},
			},
			Leases: []images.LeaseInfo{
				{ID: "k8s.io/pull-1234", Created: imgNow.Add(-26 * time.Hour), Labels: map[string]string{"containerd.io/gc.expire": exp.Format(time.RFC3339)}, Expires: &exp, Resources: 3, Stale: true, StaleReason: "expired 2h0m0s ago (containerd.io/gc.expire)"},
				{ID: "unpack-5678", Created: imgNow.Add(-30 * time.Second), Resources: 1},
			},
			LeftoverDirs: &images.Leftovers{Checked: true, Method: "dirs compared with a private copy of metadata.db",
				SnapshotsDir: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots", DirsOnDisk: 11, KnownIDs: 9,
				Dirs: []images.LeftoverDir{
					{Name: "999999", Path: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/999999", Bytes: u64(110_592), Inodes: u64(3), ModTime: imgNow.Add(-3 * time.Minute)},
					{Name: "new-123456", Path: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/new-123456", Bytes: u64(4096), Inodes: u64(2), ModTime: imgNow.Add(-5 * time.Second), Temp: true},
				},
				Total: images.Amount{Count: 2, Bytes: 114_688, Inodes: 5}},
		},
		Notes: []string{"namespace default: example note"},
	}
}

// criReport is what a CRI-O node gives: ListImages sizes only.
func criReport() *images.Report {
	return &images.Report{
		CollectedAt: imgNow,
		Source:      images.SourceCRI,
		Runtime:     images.Runtime{Name: "cri-o", Version: "1.30.3", Endpoint: "unix:///run/crio/crio.sock"},
		Sort:        images.SortUnique,
		ImageCount:  3,
		Images: []images.Image{
			{ID: "sha256:aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666", RepoTags: []string{"quay.io/shop/app:v2"}, Size: u64(187_000_000), Containers: 2, ContainerIDs: []string{"c1", "c2"}},
			{ID: "sha256:bbbb2222", RepoTags: []string{"docker.io/library/nginx:1.27"}, RepoDigests: []string{"docker.io/library/nginx@sha256:0123"}, Size: u64(72_000_000)},
			{ID: "sha256:cccc3333", RepoTags: []string{"registry.k8s.io/pause:3.10"}, Size: u64(320_000), Pinned: true, Containers: 1, ContainerIDs: []string{"p1"}},
		},
		WhatIf: &images.WhatIf{Images: []string{"nginx:1.27"}, IDs: []string{"sha256:bbbb2222"}, Freed: images.Amount{Count: 1, Bytes: 72_000_000}, Approximate: true},
		CRIOnly: &images.CRIOnly{
			ImageFs: &images.CRIUsage{Mountpoint: "/var/lib/containers/storage/overlay-images", UsedBytes: u64(250_123_456), InodesUsed: u64(12_345), AgeSeconds: 0.1},
			SizeSum: 259_320_000,
			Unavailable: []string{
				"layers, unique and shared bytes: CRI does not say which layers images share; SIZE is cri-o's ListImages size (containerd: compressed content; CRI-O: uncompressed image size), which counts shared layers in every image",
				"containers' writable layers, unreferenced snapshots and blobs, leases and leftover snapshot dirs: they need the runtime's own API (containerd's is supported)",
			},
		},
		Notes: []string{`the runtime is "cri-o", not containerd: only CRI is used`},
	}
}

func TestImagesGolden(t *testing.T) {
	unchecked := imagesReport()
	unchecked.WhatIf = nil
	unchecked.ImageCount = 7 // as with --top 5
	unchecked.Unaccounted.LeftoverDirs = &images.Leftovers{Reason: "cannot list /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots (permission denied): run imagefs as root in the runtime's mount namespace", Dirs: []images.LeftoverDir{}}
	unchecked.Unaccounted.Snapshots, unchecked.Unaccounted.Blobs, unchecked.Unaccounted.Leases = nil, nil, nil
	for _, tt := range []struct {
		name string
		rep  *images.Report
		opts output.ImagesOptions
	}{
		{"containerd.table", imagesReport(), output.ImagesOptions{Format: output.FormatTable}},
		{"containerd-layers-bytes.table", imagesReport(), output.ImagesOptions{Format: output.FormatTable, Layers: true, ExactBytes: true}},
		{"containerd.json", imagesReport(), output.ImagesOptions{Format: output.FormatJSON}},
		{"containerd.yaml", imagesReport(), output.ImagesOptions{Format: output.FormatYAML}},
		{"unchecked-top.table", unchecked, output.ImagesOptions{Format: output.FormatTable}},
		{"cri.table", criReport(), output.ImagesOptions{Format: output.FormatTable}},
		{"cri.json", criReport(), output.ImagesOptions{Format: output.FormatJSON}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := output.Images(&buf, tt.rep, tt.opts); err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, buf.Bytes())
		})
	}
	if err := output.Images(&bytes.Buffer{}, imagesReport(), output.ImagesOptions{Format: "xml"}); err == nil {
		t.Error("unknown format accepted")
	}
}

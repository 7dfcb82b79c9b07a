package images

import (
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"

	"github.com/imagefs/imagefs/pkg/containerd"
)

// The fixture builds inventories the way containerd lays them out: layers
// named by a word get a diff ID (sha256 of the word), chain IDs follow from
// identity.ChainIDs, committed snapshots are keyed by chain ID with the
// previous chain ID as parent, and each image has a manifest blob labelled
// with gc.ref.content.* to its config and layer blobs, and a config blob
// labelled gc.ref.snapshot.overlayfs to its top chain ID.

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func dg(s string) string { return digest.FromString(s).String() }

// layerSize is the unpacked usage of a layer named w, by name.
var layerSize = map[string]uint64{
	"base": 100_000, "a": 20_000, "b": 3_000, "c": 400_000, "d": 5_000, "pause": 700,
}

type fixture struct {
	inv      *Inventory
	chainsOf map[string][]string // image name -> chain IDs
}

func newFixture() *fixture {
	return &fixture{
		inv: &Inventory{
			CollectedAt: t0,
			Namespace:   "k8s.io",
			Snapshotter: "overlayfs",
			Configs:     map[string]ConfigResult{},
			Usage:       map[string]containerd.Usage{},
			Runtime:     Runtime{Name: "containerd", Version: "v2.4.2", Containerd: &ContainerdInfo{Namespace: "k8s.io", Snapshotter: "overlayfs"}},
		},
		chainsOf: map[string][]string{},
	}
}

// image adds an image record name with the given layer words; extra names
// (tags, digest references) point to the same target. Snapshots and blobs
// are added once per distinct chain ID / digest.
func (f *fixture) image(name string, layers []string, extra ...string) *fixture {
	var diffs []digest.Digest
	for _, l := range layers {
		diffs = append(diffs, digest.FromString("diff-"+l))
	}
	chains := identity.ChainIDs(diffs)
	cfg := &containerd.ImageConfig{ConfigDigest: dg("config-" + name)}
	manifest := dg("manifest-" + name)
	mlabels := map[string]string{"containerd.io/gc.ref.content.config": cfg.ConfigDigest}
	for i, c := range chains {
		cfg.DiffIDs = append(cfg.DiffIDs, diffs[i].String())
		cfg.ChainIDs = append(cfg.ChainIDs, c.String())
		blob := dg("blob-" + layers[i])
		cfg.Layers = append(cfg.Layers, containerd.Descriptor{Digest: blob, Size: int64(layerSize[layers[i]] / 2)})
		mlabels[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", i)] = blob
		f.blob(blob, int64(layerSize[layers[i]]/2), map[string]string{"containerd.io/uncompressed": diffs[i].String()})
		parent := ""
		if i > 0 {
			parent = chains[i-1].String()
		}
		f.snapshot(c.String(), parent, containerd.KindCommitted, layerSize[layers[i]], uint64(10+i))
	}
	top := ""
	if len(chains) > 0 {
		top = chains[len(chains)-1].String()
	}
	f.blob(manifest, 500, mlabels)
	f.blob(cfg.ConfigDigest, 300, map[string]string{"containerd.io/gc.ref.snapshot.overlayfs": top})
	f.inv.Configs[manifest] = ConfigResult{Config: cfg}
	target := containerd.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: manifest, Size: 500}
	for _, n := range append([]string{name, cfg.ConfigDigest}, extra...) {
		f.inv.Images = append(f.inv.Images, containerd.Image{Name: n, Target: target, CreatedAt: t0.Add(-time.Duration(len(f.inv.Images)+1) * time.Hour)})
	}
	for _, n := range append([]string{name}, extra...) {
		f.chainsOf[n] = cfg.ChainIDs
	}
	return f
}

func (f *fixture) blob(d string, size int64, labels map[string]string) {
	for _, b := range f.inv.Blobs {
		if b.Digest == d {
			return
		}
	}
	f.inv.Blobs = append(f.inv.Blobs, containerd.Blob{Digest: d, Size: size, Labels: labels, CreatedAt: t0.Add(-time.Hour)})
}

func (f *fixture) snapshot(key, parent, kind string, bytes, inodes uint64) {
	for _, s := range f.inv.Snapshots {
		if s.Key == key {
			return
		}
	}
	f.inv.Snapshots = append(f.inv.Snapshots, containerd.Snapshot{Key: key, Parent: parent, Kind: kind, Created: t0.Add(-time.Hour)})
	f.inv.Usage[key] = containerd.Usage{Bytes: bytes, Inodes: inodes}
}

// top is an image's top chain ID.
func (f *fixture) top(image string) string {
	c := f.chainsOf[image]
	return c[len(c)-1]
}

// chain is an image's i-th chain ID.
func (f *fixture) chain(image string, i int) string { return f.chainsOf[image][i] }

// container adds a container of image with an active snapshot of rw bytes.
func (f *fixture) container(id, image string, rw uint64) *fixture {
	key := "ctr-" + id
	f.snapshot(key, f.top(image), containerd.KindActive, rw, 3)
	f.inv.Containers = append(f.inv.Containers, containerd.Container{ID: id, Image: image, Snapshotter: "overlayfs", SnapshotKey: key})
	return f
}

// removeImage deletes an image's records but keeps its snapshots and blobs,
// as a non-synchronous delete does until the next GC.
func (f *fixture) removeImage(name string) *fixture {
	var target string
	for _, im := range f.inv.Images {
		if im.Name == name {
			target = im.Target.Digest
		}
	}
	kept := f.inv.Images[:0]
	for _, im := range f.inv.Images {
		if im.Target.Digest != target {
			kept = append(kept, im)
		}
	}
	f.inv.Images = kept
	return f
}

func (f *fixture) lease(id string, labels map[string]string, res ...containerd.LeaseResource) *fixture {
	f.inv.Leases = append(f.inv.Leases, containerd.Lease{ID: id, CreatedAt: t0.Add(-time.Hour), Labels: labels, Resources: res})
	return f
}

func u(v uint64) *uint64 { return &v }

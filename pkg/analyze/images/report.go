package images

import "time"

// Sources of a report.
const (
	SourceContainerd = "containerd"
	SourceCRI        = "cri"
)

// Sort orders for Report.Images.
const (
	SortUnique = "unique"
	SortShared = "shared"
	SortSize   = "size"
	SortAge    = "age"
)

// SortOrders are the accepted --sort values.
var SortOrders = []string{SortUnique, SortShared, SortSize, SortAge}

// Report is the result of imagefs images.
type Report struct {
	CollectedAt time.Time `json:"collectedAt"`
	// Source is "containerd" (its own API) or "cri" (ListImages only).
	Source  string  `json:"source"`
	Runtime Runtime `json:"runtime"`
	Sort    string  `json:"sort"`
	// ImageCount is the number of images before --top.
	ImageCount int     `json:"imageCount"`
	Images     []Image `json:"images"`
	// Totals reconcile the images with the snapshotter and with CRI.
	Totals *Totals `json:"totals,omitempty"`
	// WhatIf is what removing a set of images would free.
	WhatIf *WhatIf `json:"whatIf,omitempty"`
	// Unaccounted is what no image accounts for.
	Unaccounted *Unaccounted `json:"unaccounted,omitempty"`
	// CRIOnly replaces Totals and Unaccounted for the CRI source.
	CRIOnly *CRIOnly `json:"criOnly,omitempty"`
	// Notes say what is not available or was not measured, one line each.
	Notes []string `json:"notes,omitempty"`
}

// Runtime names what was asked.
type Runtime struct {
	// Name and Version as CRI Version reports them.
	Name     string `json:"name"`
	Version  string `json:"version"`
	Endpoint string `json:"endpoint"`
	// Containerd is set when containerd's own API was used.
	Containerd *ContainerdInfo `json:"containerd,omitempty"`
}

// ContainerdInfo is the containerd side of a report.
type ContainerdInfo struct {
	Address   string `json:"address"`
	Version   string `json:"version,omitempty"`
	Namespace string `json:"namespace"`
	// Snapshotter is the snapshotter CRI uses (and ImageFsInfo sums);
	// SnapshotterSource says how it was found.
	Snapshotter       string `json:"snapshotter"`
	SnapshotterSource string `json:"snapshotterSource"`
	// SnapshotterRoot is the snapshotter's root dir (snapshots/ and
	// metadata.db live there), from introspection.
	SnapshotterRoot string `json:"snapshotterRoot,omitempty"`
}

// Image is one image: every name (tag, digest reference) sharing one image
// ID. Byte counts are nil when not known; never 0 for unknown.
type Image struct {
	// ID is the config digest, CRI's image ID.
	ID          string    `json:"id"`
	RepoTags    []string  `json:"repoTags,omitempty"`
	RepoDigests []string  `json:"repoDigests,omitempty"`
	Created     time.Time `json:"created"` // earliest of its records' creation
	Pinned      bool      `json:"pinned,omitempty"`
	// Containers using the image (CRI pod sandboxes included).
	Containers   int      `json:"containers"`
	ContainerIDs []string `json:"containerIDs,omitempty"`
	// CompressedBytes is the sum of the image's blobs present in the
	// content store (index, manifest, config, layers), each once; not
	// counted by CRI ImageFsInfo. UniqueContentBytes are those only this
	// image references.
	CompressedBytes    *uint64 `json:"compressedBytes,omitempty"`
	UniqueContentBytes *uint64 `json:"uniqueContentBytes,omitempty"`
	// UnpackedBytes is the sum of its layer snapshots' usage;
	// UniqueBytes + SharedBytes = UnpackedBytes.
	UnpackedBytes  *uint64 `json:"unpackedBytes,omitempty"`
	UnpackedInodes *uint64 `json:"unpackedInodes,omitempty"`
	UniqueBytes    *uint64 `json:"uniqueBytes,omitempty"`
	UniqueInodes   *uint64 `json:"uniqueInodes,omitempty"`
	SharedBytes    *uint64 `json:"sharedBytes,omitempty"`
	SharedInodes   *uint64 `json:"sharedInodes,omitempty"`
	// Size is the runtime's own ListImages size (CRI source only).
	Size   *uint64  `json:"size,omitempty"`
	Layers []Layer  `json:"layers,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// Name is the image's first tag, else its first digest reference, else its ID.
func (i *Image) Name() string {
	switch {
	case len(i.RepoTags) > 0:
		return i.RepoTags[0]
	case len(i.RepoDigests) > 0:
		return i.RepoDigests[0]
	}
	return i.ID
}

// Layer is one layer of an image: its compressed blob and its snapshot.
type Layer struct {
	DiffID  string `json:"diffID"`
	ChainID string `json:"chainID"` // the snapshot key
	Blob    string `json:"blob,omitempty"`
	// BlobBytes is the compressed blob's size if it is in the content store.
	BlobBytes *uint64 `json:"blobBytes,omitempty"`
	// Snapshot says whether the committed snapshot exists; Dir is its
	// directory under the snapshotter root ("snapshots/<id>"), if known.
	Snapshot bool    `json:"snapshot"`
	Dir      string  `json:"dir,omitempty"`
	Bytes    *uint64 `json:"bytes,omitempty"`
	Inodes   *uint64 `json:"inodes,omitempty"`
	Unique   bool    `json:"unique"`
	// SharedWith lists the other images (by name) and containers (by
	// "container <id>") whose chains hold this snapshot.
	SharedWith []string `json:"sharedWith,omitempty"`
}

// Amount is a number of snapshots or blobs and their usage.
type Amount struct {
	Count  int    `json:"count"`
	Bytes  uint64 `json:"bytes"`
	Inodes uint64 `json:"inodes"`
}

func (a *Amount) add(bytes, inodes uint64) {
	a.Count++
	a.Bytes += bytes
	a.Inodes += inodes
}

// Totals reconcile per-image numbers with the snapshotter and CRI.
type Totals struct {
	// ImageLayers = Unique + Shared: every snapshot in an image chain once.
	ImageLayers Amount `json:"imageLayers"`
	Unique      Amount `json:"unique"`
	Shared      Amount `json:"shared"`
	// ContainerLayers are containers' active (writable) snapshots.
	ContainerLayers Amount `json:"containerLayers"`
	// KeptByContainers are committed snapshots only containers still use.
	KeptByContainers Amount `json:"keptByContainers"`
	// Unreferenced snapshots: no image, no container (see Unaccounted).
	Unreferenced Amount `json:"unreferenced"`
	// Snapshotter is the sum of the four: every snapshot of the CRI
	// snapshotter in the namespace, as CRI ImageFsInfo sums them.
	Snapshotter Amount `json:"snapshotter"`
	// UsageUnknown counts snapshots whose Usage call failed (left out of
	// every sum, as CRI leaves them out).
	UsageUnknown int `json:"usageUnknown,omitempty"`
	// CRI is ImageFsInfo image_filesystems[0] beside Snapshotter.
	CRI *CRIUsage `json:"cri,omitempty"`
	// Reconciliation explains CRI's number against Snapshotter, one line each.
	Reconciliation []string `json:"reconciliation,omitempty"`
	// Content is the content store (compressed blobs), not counted by CRI.
	Content ContentTotals `json:"content"`
	// NotCounted is snapshot usage CRI does not count: other namespaces,
	// other snapshotters.
	NotCounted []OtherUsage `json:"notCounted,omitempty"`
}

// CRIUsage is the runtime's ImageFsInfo for the image filesystem.
type CRIUsage struct {
	Mountpoint string    `json:"mountpoint"`
	UsedBytes  *uint64   `json:"usedBytes,omitempty"`
	InodesUsed *uint64   `json:"inodesUsed,omitempty"`
	Timestamp  time.Time `json:"timestamp"`
	// AgeSeconds is how old the timestamp was at collection: containerd
	// stamps the oldest entry of its stats cache.
	AgeSeconds float64 `json:"ageSeconds"`
	// DiffBytes/DiffInodes are Snapshotter minus CRI.
	DiffBytes  *int64 `json:"diffBytes,omitempty"`
	DiffInodes *int64 `json:"diffInodes,omitempty"`
}

// ContentTotals describe the content store.
type ContentTotals struct {
	Blobs int    `json:"blobs"`
	Bytes uint64 `json:"bytes"` // Σ blob sizes (apparent, compressed)
	// Unreferenced are blobs no GC root reaches: removed at the next GC.
	Unreferenced      int    `json:"unreferenced"`
	UnreferencedBytes uint64 `json:"unreferencedBytes"`
	// Missing are blobs images reference that are not present (e.g.
	// discard_unpacked_layers, or other platforms never fetched).
	Missing int `json:"missing"`
}

// OtherUsage is snapshot usage outside what CRI counts.
type OtherUsage struct {
	Namespace   string `json:"namespace"`
	Snapshotter string `json:"snapshotter"`
	Amount
	Error string `json:"error,omitempty"`
}

// WhatIf is what removing a set of images would free.
type WhatIf struct {
	Images []string `json:"images"` // as asked
	IDs    []string `json:"ids"`    // resolved image IDs
	// Freed snapshots: in the chains of these images only, and in no
	// container's chain (layers shared only among the set count).
	Freed Amount `json:"freed"`
	// FreedContent are blobs only these images reference.
	FreedContent Amount `json:"freedContent"`
	// Kept are the set's snapshots that stay, used by other images or
	// containers.
	Kept Amount `json:"kept"`
	// InUse are images of the set that containers use (the kubelet never
	// removes those; their layers stay while the containers exist).
	InUse []string `json:"inUse,omitempty"`
	// Approximate is set when sharing is unknown (CRI source): Freed is
	// then the sum of the runtime's image sizes, an upper bound.
	Approximate bool `json:"approximate,omitempty"`
}

// Unaccounted lists what no image accounts for.
type Unaccounted struct {
	// Snapshots whose chain belongs to no image and no container.
	Snapshots []OrphanSnapshot `json:"snapshots"`
	// Blobs no GC root reaches (garbage not yet collected).
	Blobs  []OrphanBlob `json:"blobs"`
	Leases []LeaseInfo  `json:"leases"`
	// LeftoverDirs are dirs under the snapshotter's snapshots/ its
	// metadata no longer knows.
	LeftoverDirs *Leftovers `json:"leftoverDirs,omitempty"`
}

// OrphanSnapshot is a snapshot no image or container uses.
type OrphanSnapshot struct {
	Key     string    `json:"key"`
	Kind    string    `json:"kind"`
	Parent  string    `json:"parent,omitempty"`
	Dir     string    `json:"dir,omitempty"`
	Bytes   *uint64   `json:"bytes,omitempty"`
	Inodes  *uint64   `json:"inodes,omitempty"`
	Created time.Time `json:"created"`
	// Collectable: no GC root reaches it, so containerd's next GC removes
	// it. Otherwise HeldBy names what keeps it (a lease, a gc.root label).
	Collectable bool   `json:"collectable"`
	HeldBy      string `json:"heldBy,omitempty"`
}

// OrphanBlob is a content blob no GC root reaches.
type OrphanBlob struct {
	Digest  string    `json:"digest"`
	Bytes   uint64    `json:"bytes"`
	Created time.Time `json:"created"`
	// Kind is a guess from labels: "layer" (has containerd.io/uncompressed),
	// "manifest"/"index" (has gc.ref.content labels), "config", or "".
	Kind string `json:"kind,omitempty"`
}

// LeaseInfo is one lease.
type LeaseInfo struct {
	ID        string            `json:"id"`
	Created   time.Time         `json:"created"`
	Expires   *time.Time        `json:"expires,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Resources int               `json:"resources"`
	// Stale: expired per containerd.io/gc.expire, or older than 24h.
	Stale       bool   `json:"stale"`
	StaleReason string `json:"staleReason,omitempty"`
}

// Leftovers is the leftover-directory check.
type Leftovers struct {
	// Checked is false when it could not be done; Reason says why.
	Checked bool   `json:"checked"`
	Reason  string `json:"reason,omitempty"`
	// Method says how known IDs were read.
	Method       string        `json:"method,omitempty"`
	SnapshotsDir string        `json:"snapshotsDir,omitempty"`
	DirsOnDisk   int           `json:"dirsOnDisk"`
	KnownIDs     int           `json:"knownIDs"`
	Dirs         []LeftoverDir `json:"dirs"`
	Total        Amount        `json:"total"`
}

// LeftoverDir is a dir under snapshots/ whose name is no snapshot ID.
type LeftoverDir struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"`
	Bytes   *uint64   `json:"bytes,omitempty"`
	Inodes  *uint64   `json:"inodes,omitempty"`
	ModTime time.Time `json:"modTime"`
	// Temp marks "new-*" dirs: a snapshot being created (in progress while
	// containerd holds the transaction) or left by a crash mid-creation.
	Temp  bool   `json:"temp,omitempty"`
	Error string `json:"error,omitempty"`
}

// CRIOnly summarises a report made from CRI alone.
type CRIOnly struct {
	ImageFs *CRIUsage `json:"imageFs,omitempty"`
	// SizeSum is Σ of ListImages sizes: layers shared between images are
	// counted in each, so it can exceed what the images occupy.
	SizeSum uint64 `json:"sizeSum"`
	// Unavailable says what this source cannot tell, one line each.
	Unavailable []string `json:"unavailable"`
}

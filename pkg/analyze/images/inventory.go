package images

import (
	"time"

	"github.com/imagefs/imagefs/pkg/containerd"
)

// Inventory is everything read from containerd for one report, raw. Analyze
// derives the Report from it alone.
type Inventory struct {
	CollectedAt time.Time          `json:"collectedAt"`
	Runtime     Runtime            `json:"runtime"`
	Namespace   string             `json:"namespace"`
	Snapshotter string             `json:"snapshotter"`
	Images      []containerd.Image `json:"images"`
	// Configs by image target digest: the resolved config, or why not.
	Configs map[string]ConfigResult `json:"configs"`
	Blobs   []containerd.Blob       `json:"blobs"`
	// Snapshots of the CRI snapshotter in the namespace.
	Snapshots []containerd.Snapshot `json:"snapshots"`
	// Usage by snapshot key; UsageErrors for the keys whose Usage failed.
	Usage       map[string]containerd.Usage `json:"usage"`
	UsageErrors map[string]string           `json:"usageErrors,omitempty"`
	// OtherSnapshots are snapshots of other snapshotters in the namespace,
	// keyed by snapshotter, for GC references and what CRI does not count.
	OtherSnapshots map[string][]containerd.Snapshot `json:"otherSnapshots,omitempty"`
	Containers     []containerd.Container           `json:"containers"`
	Leases         []containerd.Lease               `json:"leases"`
	// SnapshotDirs maps snapshot keys to their dir under the snapshotter
	// root ("snapshots/<id>"), when the snapshotter's metadata was readable.
	SnapshotDirs map[string]string `json:"snapshotDirs,omitempty"`
	// NotCounted is usage of other namespaces and snapshotters.
	NotCounted []OtherUsage `json:"notCounted,omitempty"`
	CRI        *CRIUsage    `json:"cri,omitempty"`
	Leftovers  *Leftovers   `json:"leftovers,omitempty"`
	Notes      []string     `json:"notes,omitempty"`
}

// ConfigResult is an image target's resolved config, or the error.
type ConfigResult struct {
	Config *containerd.ImageConfig `json:"config,omitempty"`
	Error  string                  `json:"error,omitempty"`
}

// Options tune Analyze.
type Options struct {
	Sort string // SortUnique (default), SortShared, SortSize, SortAge
	Top  int    // keep the first Top images; 0 keeps all
	// WhatIf names images (tag, digest reference, ID or unique ID prefix)
	// whose removal is simulated.
	WhatIf []string
	// Now is the time leases are judged against; zero means CollectedAt.
	Now time.Time
}

// StaleLeaseAge is the age past which a lease without an expiry is stale.
const StaleLeaseAge = 24 * time.Hour

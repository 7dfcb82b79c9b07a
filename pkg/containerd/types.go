package containerd

import (
	"errors"
	"time"
)

// Errors callers branch on; every error of this package wraps at most one,
// plus the call, namespace and socket that failed.
var (
	ErrSocketMissing = errors.New("socket does not exist")
	ErrNotSocket     = errors.New("not a unix socket")
	ErrPermission    = errors.New("permission denied")
	ErrUnavailable   = errors.New("containerd not reachable")
	ErrTimeout       = errors.New("containerd did not answer in time")
	ErrNotFound      = errors.New("not found")
	ErrUnimplemented = errors.New("containerd does not implement the call")
)

// Version is containerd's version.
type Version struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
}

// Plugin is a snapshotter plugin as introspection reports it.
type Plugin struct {
	ID    string `json:"id"`
	Root  string `json:"root,omitempty"` // exported root dir
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Image is one image record: containerd keeps one per name (tag, digest
// reference or CRI's "sha256:<id>" name).
type Image struct {
	Name      string            `json:"name"`
	Target    Descriptor        `json:"target"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
}

// ImageConfig is what an image's manifest and config say for this host's
// platform.
type ImageConfig struct {
	// ConfigDigest is the config blob's digest: CRI's image ID.
	ConfigDigest string       `json:"configDigest"`
	Config       Descriptor   `json:"config"`
	Layers       []Descriptor `json:"layers"`  // compressed layer blobs, in order
	DiffIDs      []string     `json:"diffIDs"` // uncompressed layer digests
	// ChainIDs are identity.ChainIDs(DiffIDs): the keys of the committed
	// snapshots an unpacked image's layers live in.
	ChainIDs []string `json:"chainIDs"`
}

// Blob is one blob of the content store.
type Blob struct {
	Digest    string            `json:"digest"`
	Size      int64             `json:"size"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
}

// Snapshot is one snapshot as the (namespaced) snapshotter reports it.
type Snapshot struct {
	Key     string            `json:"key"`
	Parent  string            `json:"parent,omitempty"`
	Kind    string            `json:"kind"` // "Committed", "Active" or "View"
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
}

// Snapshot kinds as snapshots.Kind.String() spells them.
const (
	KindCommitted = "Committed"
	KindActive    = "Active"
	KindView      = "View"
)

// Usage is a snapshot's allocated bytes and inodes.
type Usage struct {
	Bytes  uint64 `json:"bytes"`
	Inodes uint64 `json:"inodes"`
}

// Container is one containerd container.
type Container struct {
	ID          string            `json:"id"`
	Image       string            `json:"image,omitempty"`
	Snapshotter string            `json:"snapshotter,omitempty"`
	SnapshotKey string            `json:"snapshotKey,omitempty"`
	SandboxID   string            `json:"sandboxID,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
}

// Lease is one lease and what it holds.
type Lease struct {
	ID        string            `json:"id"`
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels,omitempty"`
	Resources []LeaseResource   `json:"resources,omitempty"`
}

// LeaseResource is one object a lease holds. Type is "content", "ingests",
// "images" or "snapshots/<snapshotter>".
type LeaseResource struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// GC labels containerd's garbage collector reads (core/metadata/gc.go).
const (
	LabelGCRoot        = "containerd.io/gc.root"
	LabelGCRef         = "containerd.io/gc.ref."
	LabelGCRefContent  = "containerd.io/gc.ref.content"
	LabelGCRefSnapshot = "containerd.io/gc.ref.snapshot."
	LabelGCRefImage    = "containerd.io/gc.ref.image"
	LabelGCBref        = "containerd.io/gc.bref."
	LabelGCExpire      = "containerd.io/gc.expire"
	LabelGCFlat        = "containerd.io/gc.flat"
	// LabelCRIPinned marks an image CRI pins (sandbox image, pinned_images).
	LabelCRIPinned = "io.cri-containerd.pinned"
)

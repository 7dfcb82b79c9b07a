// Package images accounts for the image filesystem image by image: which
// snapshots (unpacked layers) and content blobs belong to which image, how
// many bytes removing an image (or a set of images) would free, and what no
// image accounts for (snapshots and blobs nothing references, leases,
// snapshot dirs the snapshotter no longer knows).
//
// Collect gathers an Inventory from containerd's own API (pkg/containerd,
// read-only); Analyze turns it into a Report and consults nothing else, so it
// is tested on constructed inventories. For runtimes other than containerd,
// FromCRI builds a reduced Report from CRI ListImages.
//
// # Images
//
// containerd keeps one image record per name (tag, digest reference and
// CRI's own "sha256:<id>" name); records whose config digest (CRI's image
// ID) is the same are one image. Its layers are the chain IDs of its
// config's diff IDs for this host's platform: the keys of the committed
// snapshots an unpacked image lives in. Its compressed size is the sum of
// the blobs present that its targets reach through containerd.io/gc.ref.content
// labels (index, manifests, config, layers), each once.
//
// # Accounting
//
// Every snapshot of CRI's snapshotter in the namespace falls in exactly one
// bucket, so the buckets add up to what CRI ImageFsInfo sums:
//
//	image layers       committed snapshots in at least one image's chain,
//	                   split into
//	  unique           in exactly one image's chain and reached by no other
//	                   GC root (no container's chain, no lease, no gc.root
//	                   label): freed if that image alone is removed
//	  shared           the rest, each snapshot counted once
//	container layers   active snapshots that are a container's SnapshotKey
//	                   (writable layers, CRI pod sandboxes included)
//	kept by containers committed snapshots in a container's parent chain but
//	                   in no image's chain (the image was removed)
//	unreferenced       everything else: no image, no container
//
// Sizes are the snapshotter's Usage: for overlayfs, allocated bytes
// (st_blocks*512) and inodes, hard links once (continuity fs.DiskUsage),
// stored at commit for committed snapshots and measured at the call for
// active ones. CRI ImageFsInfo sums the same Usage over the same snapshots
// from a cache refreshed every stats_collect_period, so the two are equal
// once the cache has caught up; the report prints both and explains a
// difference. What neither counts is listed beside them: other namespaces,
// other snapshotters, the content store, leftover dirs.
//
// --what-if (Options.WhatIf) frees the snapshots every image of whose chain
// is in the set and no other GC root reaches (so a layer shared only among
// the set is freed), and the blobs only the set's images reach.
//
// # Garbage
//
// gc.go models containerd's garbage collector (core/metadata/gc.go):
// roots are unexpired images, containers, unexpired leases' resources and
// objects labelled containerd.io/gc.root; edges are image targets, snapshot
// parents, container snapshot keys and the containerd.io/gc.ref.* labels
// (containerd.io/gc.bref.* in reverse). A blob or snapshot no root reaches is
// collectable: containerd removes it at its next GC. containerd schedules a
// GC soon after any deletion (with the default deletion_threshold 0, within
// about a second; CRI RemoveImage even waits for it), so garbage that
// lasts is what was written outside any lease with no deletion since: an
// interrupted pull or unpack, a tool's content write.
//
// # Leftover snapshot dirs
//
// The overlayfs (and native) snapshotter names each snapshot's dir
// <root>/snapshots/<id> by a numeric ID that only its own metadata.db
// records; the API never returns it. Its Cleanup removes every dir whose name
// is no ID in that file, so imagefs reports exactly those, before Cleanup
// does. The IDs are read from metadata.db without opening it in place:
// containerd holds an exclusive flock on it for as long as it runs
// (measured: /proc/locks shows FLOCK WRITE by containerd's PID on both
// containerd versions), so a bbolt read-only Open (a shared flock) would only
// ever time out while containerd runs, and would block a starting containerd
// while it held the lock. Instead the file is read whole, twice, until two
// reads agree (a commit in between shows as a difference), and bbolt opens
// that private in-memory copy (pkg/containerd.ReadSnapshotDB). Comparing
// with mountinfo (only mounted snapshots) or matching Usage sizes (ambiguous)
// cannot tell every dir apart; the copy gives every ID, all namespaces
// together, and maps the namespace's snapshot keys to their dirs
// ("snapshots/<id>") for the report. Dirs are listed before the metadata is
// read and candidates are confirmed by a second read, so a snapshot created
// meanwhile (its dir is renamed into place inside the creating transaction)
// is not reported; "new-*" dirs are marked as possibly in progress.
package images

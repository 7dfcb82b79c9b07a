package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagefs/imagefs/pkg/analyze/images"
	"github.com/imagefs/imagefs/pkg/containerd"
	"github.com/imagefs/imagefs/pkg/output"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

type imagesOptions struct {
	namespace   string
	address     string
	snapshotter string
	sort        string
	top         int
	whatIf      []string
	exactBytes  bool
	layers      bool
	criOnly     bool
	noLeftovers bool
}

func newImagesCommand(g *GlobalOptions, streams IO) *cobra.Command {
	o := &imagesOptions{}
	cmd := &cobra.Command{
		Use:   "images [--what-if IMAGE...]",
		Short: "Account for the image filesystem image by image: unique and shared layers, and what no image accounts for",
		Long: `images shows, for every image, its compressed size in the content store,
its unpacked size (the usage of its layer snapshots), and how that splits into
  unique  bytes freed if only this image were removed: layer snapshots in no
          other image's chain and no container's chain
  shared  layers other images or containers also use
with the number of containers using it. All names (tags, digests) of one
image ID are one row.

The totals reconcile: unique + shared (each snapshot once) are the image
layers; with the containers' writable layers, layers only containers still
use, and unreferenced snapshots they are every snapshot of CRI's snapshotter
in the namespace, which is what CRI ImageFsInfo usedBytes sums (printed
beside it, with the difference explained: cache refresh, other namespaces and
snapshotters, the content store, which CRI does not count).

It then lists what no image accounts for: snapshots no image or container
uses, content blobs no garbage-collection root reaches (containerd.io/gc.ref
labels followed from images, containers, leases and gc.root labels; they go
at containerd's next GC), leases (stale: expired per containerd.io/gc.expire,
or older than 24h), and dirs under the snapshotter's snapshots/ its metadata
no longer knows (their names compared with the snapshot IDs in a private
in-memory copy of its metadata.db, which containerd keeps locked).

With containerd, everything comes from containerd's own API on the CRI
socket (or --containerd-address), read-only: List, Get, Walk, Info and Usage
calls only; no lease is created and nothing under the runtime's root is
written. Sizes are allocated bytes and inodes as containerd counts them. For
other runtimes (CRI-O, cri-dockerd), or with --cri, only CRI ListImages is
used: each image's size as the runtime reports it, no sharing.

--what-if IMAGE... shows what removing those images together would free
(layers shared only among them count). IMAGE is a tag, digest reference,
image ID or unique ID prefix.

Exit codes: 0 ok; 1 nothing could be computed (runtime or containerd
unreachable); 2 usage error (bad flag, unknown image in --what-if).`,
		Example: `  imagefs images
  imagefs images --sort shared --top 10
  imagefs images --what-if registry.example.com/app:v1 registry.example.com/app:v2
  imagefs images --layers --bytes
  imagefs images -o json | jq '.unaccounted.blobs[].digest'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch g.Output {
			case output.FormatTable, output.FormatJSON, output.FormatYAML:
			default:
				return usageError{fmt.Errorf("unknown --output %q: use table, json or yaml", g.Output)}
			}
			if len(args) > 0 && !cmd.Flags().Changed("what-if") {
				return usageError{fmt.Errorf("unexpected arguments %q: image names are only taken with --what-if", args)}
			}
			o.whatIf = append(o.whatIf, args...)
			if o.top < 0 {
				return usageError{fmt.Errorf("--top must be 0 (all) or positive, got %d", o.top)}
			}
			opts := images.Options{Sort: o.sort, Top: o.top, WhatIf: o.whatIf}
			if !validImagesSort(o.sort) {
				return usageError{fmt.Errorf("unknown --sort %q: use unique, shared, size or age", o.sort)}
			}
			rep, err := runImages(cmd.Context(), g, o, opts, streams)
			if err != nil {
				if errors.Is(err, images.ErrNoSuchImage) || errors.Is(err, images.ErrAmbiguousImage) || errors.Is(err, images.ErrBadSort) {
					return usageError{err}
				}
				return err
			}
			return output.Images(streams.Out, rep, output.ImagesOptions{Format: g.Output, ExactBytes: o.exactBytes, Layers: o.layers})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", containerd.DefaultNamespace, "containerd namespace (CRI uses and counts only k8s.io)")
	f.StringVar(&o.address, "containerd-address", "", "containerd socket (default: the CRI endpoint's socket)")
	f.StringVar(&o.snapshotter, "snapshotter", "", "snapshotter CRI uses (default: from CRI's config, else the one whose root is ImageFsInfo's mountpoint, else overlayfs)")
	f.StringVar(&o.sort, "sort", images.SortUnique, "order images by unique, shared or size (unpacked; largest first), or age (oldest first)")
	f.IntVar(&o.top, "top", 0, "show only the first N images (totals still cover all)")
	f.StringSliceVar(&o.whatIf, "what-if", nil, "images whose removal to simulate (repeatable, comma-separated, or as arguments after it)")
	f.BoolVar(&o.exactBytes, "bytes", false, "print exact byte counts instead of human sizes (table)")
	f.BoolVar(&o.layers, "layers", false, "list each image's layers: snapshot dir, compressed and unpacked size, who shares it (table)")
	f.BoolVar(&o.criOnly, "cri", false, "use only CRI ListImages, as for a runtime other than containerd")
	f.BoolVar(&o.noLeftovers, "no-leftover-dirs", false, "skip the check for dirs under the snapshotter's snapshots/ its metadata no longer knows")
	return cmd
}

func validImagesSort(s string) bool {
	for _, v := range images.SortOrders {
		if v == s {
			return true
		}
	}
	return false
}

// runImages collects and analyses: containerd's API when the runtime is
// containerd, else CRI only.
func runImages(ctx context.Context, g *GlobalOptions, o *imagesOptions, opts images.Options, streams IO) (*images.Report, error) {
	res, err := collect(ctx, g)
	if err != nil {
		return nil, err
	}
	rt := images.Runtime{Name: res.Runtime.Name, Version: res.Runtime.Version, Endpoint: res.Runtime.Endpoint.URL}
	imageFs := criImageFs(res)
	if o.criOnly || res.Runtime.Name != "containerd" {
		rep, err := criImages(ctx, g, res, rt, imageFs, opts)
		if err == nil && !o.criOnly {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the runtime is %q, not containerd: only CRI is used", res.Runtime.Name))
		}
		return rep, err
	}
	address := o.address
	if address == "" {
		address = res.Runtime.Endpoint.Path
	}
	rep, err := containerdImages(ctx, g, o, address, rt, imageFs, opts)
	if err == nil || o.address != "" || errors.Is(err, images.ErrNoSuchImage) || errors.Is(err, images.ErrAmbiguousImage) {
		return rep, err
	}
	// containerd answers CRI on this socket but its own API failed: say so
	// and fall back to what CRI alone tells.
	fmt.Fprintf(streams.ErrOut, "imagefs: %s; falling back to CRI ListImages\n", err)
	rep, cerr := criImages(ctx, g, res, rt, imageFs, opts)
	if cerr != nil {
		return nil, errors.Join(err, cerr)
	}
	rep.Notes = append(rep.Notes, "containerd's own API failed ("+err.Error()+"): only CRI is used")
	return rep, nil
}

func containerdImages(ctx context.Context, g *GlobalOptions, o *imagesOptions, address string, rt images.Runtime, imageFs *images.CRIUsage, opts images.Options) (*images.Report, error) {
	c, err := containerd.Dial(address, o.namespace, g.Timeout)
	if err != nil {
		return nil, containerdError{address: address, timeout: g.Timeout, err: err}
	}
	defer c.Close()
	fromCRI := ""
	if o.snapshotter == "" {
		if s, err := containerd.CRIConfigSnapshotter(ctx, address, g.Timeout); err == nil {
			fromCRI = s
		} else {
			slog.Debug("CRI Status verbose", "err", err)
		}
	}
	inv, err := images.Collect(ctx, c, images.CollectOptions{
		Runtime:              rt,
		Snapshotter:          o.snapshotter,
		CRIConfigSnapshotter: fromCRI,
		CRI:                  imageFs,
		SkipLeftovers:        o.noLeftovers,
		Log:                  slog.Default(),
	})
	if err != nil {
		return nil, containerdError{address: address, timeout: g.Timeout, err: err}
	}
	if o.namespace != containerd.DefaultNamespace {
		inv.Notes = append(inv.Notes, fmt.Sprintf("namespace %s: CRI counts only namespace %s, so its usedBytes is not comparable", o.namespace, containerd.DefaultNamespace))
	}
	return images.Analyze(inv, opts)
}

func criImages(ctx context.Context, g *GlobalOptions, res *stats.Result, rt images.Runtime, imageFs *images.CRIUsage, opts images.Options) (*images.Report, error) {
	ep := res.Runtime.Endpoint
	client, err := runtime.Dial(ep, g.Timeout)
	if err != nil {
		return nil, runtimeError{ep: ep, timeout: g.Timeout.String(), err: err}
	}
	defer client.Close()
	imgs, err := client.ListImages(ctx)
	if err != nil {
		return nil, runtimeError{ep: ep, timeout: g.Timeout.String(), err: err}
	}
	ctrs, err := client.ListContainers(ctx)
	if err != nil {
		return nil, runtimeError{ep: ep, timeout: g.Timeout.String(), err: err}
	}
	return images.FromCRI(rt, imgs, ctrs, imageFs, res.CollectedAt, opts)
}

// criImageFs is ImageFsInfo's first image filesystem, as the kubelet reads it.
func criImageFs(res *stats.Result) *images.CRIUsage {
	fss := res.ImageFsInfo.GetImageFilesystems()
	if len(fss) == 0 {
		return nil
	}
	fs := fss[0]
	u := &images.CRIUsage{Mountpoint: fs.GetFsId().GetMountpoint()}
	if fs.GetUsedBytes() != nil {
		v := fs.GetUsedBytes().GetValue()
		u.UsedBytes = &v
	}
	if fs.GetInodesUsed() != nil {
		v := fs.GetInodesUsed().GetValue()
		u.InodesUsed = &v
	}
	if ts := fs.GetTimestamp(); ts > 0 {
		u.Timestamp = time.Unix(0, ts).UTC()
	}
	return u
}

// containerdError is a failure of containerd's own API, as one sentence.
type containerdError struct {
	address string
	timeout time.Duration
	err     error
}

func (e containerdError) Unwrap() error { return e.err }

func (e containerdError) Error() string {
	switch {
	case errors.Is(e.err, containerd.ErrSocketMissing):
		return fmt.Sprintf("the containerd socket %s does not exist: pass --containerd-address with the socket containerd listens on (its [grpc] address)", e.address)
	case errors.Is(e.err, containerd.ErrNotSocket):
		return fmt.Sprintf("%s is not a unix socket: pass --containerd-address with containerd's socket", e.address)
	case errors.Is(e.err, containerd.ErrPermission):
		return fmt.Sprintf("permission denied on the containerd socket %s: run imagefs as root", e.address)
	case errors.Is(e.err, containerd.ErrTimeout):
		return fmt.Sprintf("containerd at %s did not answer within %s (%v): it may be hung or overloaded; raise --timeout", e.address, e.timeout, e.err)
	case errors.Is(e.err, containerd.ErrUnimplemented):
		return fmt.Sprintf("the socket %s does not serve containerd's API (%v): it is not containerd's, or containerd's services are disabled; pass --containerd-address with containerd's socket, or --cri", e.address, e.err)
	case errors.Is(e.err, containerd.ErrUnavailable):
		return fmt.Sprintf("cannot reach containerd's API at %s (%v): check that containerd listens there, or pass --containerd-address", e.address, e.err)
	}
	return fmt.Sprintf("containerd at %s: %v", e.address, e.err)
}

// Package containerd is a thin, read-only wrapper over containerd's own API
// (github.com/containerd/containerd/v2/client), for what CRI does not say:
// which snapshots and blobs belong to which image, what containers hold,
// leases, and the overlay snapshotter's on-disk IDs.
//
// Only calls that read are made: image, content, snapshot, container, lease
// and namespace List/Get/Walk/Info/Usage, content reads of manifests and
// configs, introspection and version. Nothing here creates a lease, writes a
// label or deletes anything, and the snapshotter's metadata.db is read from a
// private in-memory copy (see ReadSnapshotDB), never opened in place.
//
// Every call gets its own deadline (the client's timeout), as pkg/runtime
// does for CRI. Results are plain structs, so pkg/analyze needs no
// containerd types.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/status"
)

// DefaultNamespace is the containerd namespace CRI uses (and counts).
const DefaultNamespace = "k8s.io"

// DefaultSnapshotter is CRI's default snapshotter.
const DefaultSnapshotter = "overlayfs"

// DefaultTimeout bounds each call when Dial is given none.
const DefaultTimeout = 2 * time.Second

// Client is a read-only containerd client in one namespace.
type Client struct {
	c         *ctrd.Client
	address   string
	namespace string
	timeout   time.Duration
	platform  platforms.MatchComparer
}

// Dial checks that address is a unix socket and prepares a client in
// namespace ns; the connection is made by the first call, under that call's
// deadline.
func Dial(address, ns string, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if ns == "" {
		ns = DefaultNamespace
	}
	path := strings.TrimPrefix(address, "unix://")
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("containerd socket %s: %w", path, ErrSocketMissing)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("containerd socket %s: %w", path, ErrPermission)
	case err != nil:
		return nil, fmt.Errorf("containerd socket %s: %w", path, err)
	case fi.Mode()&fs.ModeSocket == 0:
		return nil, fmt.Errorf("containerd socket %s (%s): %w", path, fi.Mode().Type(), ErrNotSocket)
	}
	c, err := ctrd.New(path, ctrd.WithDefaultNamespace(ns), ctrd.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", path, err)
	}
	return &Client{c: c, address: path, namespace: ns, timeout: timeout, platform: platforms.Default()}, nil
}

// Address is the socket path.
func (c *Client) Address() string { return c.address }

// Namespace is the namespace calls are made in.
func (c *Client) Namespace() string { return c.namespace }

// Close releases the connection.
func (c *Client) Close() error { return c.c.Close() }

// InNamespace returns a client sharing the connection that works in ns.
func (c *Client) InNamespace(ns string) *Client {
	cp := *c
	cp.namespace = ns
	return &cp
}

// call runs fn in the client's namespace under its per-call deadline and
// names the call, namespace and socket in any error.
func (c *Client) call(ctx context.Context, name string, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, c.namespace), c.timeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		return fmt.Errorf("containerd %s (namespace %s) on %s (timeout %s): %w", name, c.namespace, c.address, c.timeout, classify(err))
	}
	return nil
}

// Version is containerd's own version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v ctrd.Version
	err := c.call(ctx, "Version", func(ctx context.Context) (err error) {
		v, err = c.c.Version(ctx)
		return err
	})
	return Version{Version: v.Version, Revision: v.Revision}, err
}

// Namespaces lists containerd's namespaces.
func (c *Client) Namespaces(ctx context.Context) ([]string, error) {
	var out []string
	err := c.call(ctx, "namespaces List", func(ctx context.Context) (err error) {
		out, err = c.c.NamespaceService().List(ctx)
		return err
	})
	sort.Strings(out)
	return out, err
}

// Snapshotters lists the snapshotter plugins with their exported root dir.
func (c *Client) Snapshotters(ctx context.Context) ([]Plugin, error) {
	var out []Plugin
	err := c.call(ctx, "introspection Plugins", func(ctx context.Context) error {
		resp, err := c.c.IntrospectionService().Plugins(ctx, `type=="io.containerd.snapshotter.v1"`)
		if err != nil {
			return err
		}
		for _, p := range resp.GetPlugins() {
			pl := Plugin{ID: p.GetID(), Root: p.GetExports()["root"], OK: p.GetInitErr() == nil}
			if e := p.GetInitErr(); e != nil {
				pl.Error = e.GetMessage()
			}
			out = append(out, pl)
		}
		return nil
	})
	return out, err
}

// Images lists every image record in the namespace (one per name).
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var list []images.Image
	err := c.call(ctx, "images List", func(ctx context.Context) (err error) {
		list, err = c.c.ImageService().List(ctx)
		return err
	})
	out := make([]Image, 0, len(list))
	for _, i := range list {
		out = append(out, Image{
			Name:      i.Name,
			Target:    descriptor(i.Target),
			Labels:    i.Labels,
			CreatedAt: i.CreatedAt,
			UpdatedAt: i.UpdatedAt,
		})
	}
	return out, err
}

// ImageConfig reads the manifest of target for this host's platform and its
// config blob: the config digest (CRI's image ID), the layer diff IDs and
// their chain IDs (the snapshot keys of an unpacked image), and the
// manifest's layer blobs.
func (c *Client) ImageConfig(ctx context.Context, target Descriptor) (ImageConfig, error) {
	var ic ImageConfig
	err := c.call(ctx, "read image config "+target.Digest, func(ctx context.Context) error {
		cs := c.c.ContentStore()
		desc := ocispec.Descriptor{MediaType: target.MediaType, Digest: digest.Digest(target.Digest), Size: target.Size}
		m, err := images.Manifest(ctx, cs, desc, c.platform)
		if err != nil {
			return err
		}
		diffIDs, err := images.RootFS(ctx, cs, m.Config)
		if err != nil {
			return err
		}
		ic.ConfigDigest = m.Config.Digest.String()
		ic.Config = descriptor(m.Config)
		for _, l := range m.Layers {
			ic.Layers = append(ic.Layers, descriptor(l))
		}
		for _, d := range diffIDs {
			ic.DiffIDs = append(ic.DiffIDs, d.String())
		}
		for _, d := range identity.ChainIDs(diffIDs) {
			ic.ChainIDs = append(ic.ChainIDs, d.String())
		}
		return nil
	})
	return ic, err
}

// Blobs walks the content store: every blob present, with its labels.
func (c *Client) Blobs(ctx context.Context) ([]Blob, error) {
	var out []Blob
	err := c.call(ctx, "content Walk", func(ctx context.Context) error {
		return c.c.ContentStore().Walk(ctx, func(i content.Info) error {
			out = append(out, Blob{Digest: i.Digest.String(), Size: i.Size, Labels: i.Labels, CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt})
			return nil
		})
	})
	return out, err
}

// Snapshots walks one snapshotter's snapshots in the namespace.
func (c *Client) Snapshots(ctx context.Context, snapshotter string) ([]Snapshot, error) {
	var out []Snapshot
	err := c.call(ctx, "snapshots Walk ("+snapshotter+")", func(ctx context.Context) error {
		return c.c.SnapshotService(snapshotter).Walk(ctx, func(_ context.Context, i snapshots.Info) error {
			out = append(out, Snapshot{Key: i.Name, Parent: i.Parent, Kind: i.Kind.String(), Labels: i.Labels, Created: i.Created, Updated: i.Updated})
			return nil
		})
	})
	return out, err
}

// Usage is one snapshot's usage as the snapshotter reports it: for overlayfs
// a committed snapshot's value stored at commit, an active one's measured now.
func (c *Client) Usage(ctx context.Context, snapshotter, key string) (Usage, error) {
	var u snapshots.Usage
	err := c.call(ctx, "snapshots Usage ("+snapshotter+") "+key, func(ctx context.Context) (err error) {
		u, err = c.c.SnapshotService(snapshotter).Usage(ctx, key)
		return err
	})
	return Usage{Bytes: nonNeg(u.Size), Inodes: nonNeg(u.Inodes)}, err
}

// Containers lists the namespace's containers (CRI pod sandboxes included).
func (c *Client) Containers(ctx context.Context) ([]Container, error) {
	var out []Container
	err := c.call(ctx, "containers List", func(ctx context.Context) error {
		list, err := c.c.ContainerService().List(ctx)
		for _, ct := range list {
			out = append(out, Container{
				ID: ct.ID, Image: ct.Image, Snapshotter: ct.Snapshotter, SnapshotKey: ct.SnapshotKey,
				Labels: ct.Labels, CreatedAt: ct.CreatedAt, SandboxID: ct.SandboxID,
			})
		}
		return err
	})
	return out, err
}

// Leases lists the namespace's leases with the resources each holds.
func (c *Client) Leases(ctx context.Context) ([]Lease, error) {
	var list []leases.Lease
	err := c.call(ctx, "leases List", func(ctx context.Context) (err error) {
		list, err = c.c.LeasesService().List(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Lease, 0, len(list))
	for _, l := range list {
		ls := Lease{ID: l.ID, CreatedAt: l.CreatedAt, Labels: l.Labels}
		err := c.call(ctx, "leases ListResources "+l.ID, func(ctx context.Context) error {
			rs, err := c.c.LeasesService().ListResources(ctx, l)
			for _, r := range rs {
				ls.Resources = append(ls.Resources, LeaseResource{ID: r.ID, Type: r.Type})
			}
			return err
		})
		if err != nil && !errors.Is(err, ErrNotFound) { // a lease may end between List and ListResources
			return out, err
		}
		out = append(out, ls)
	}
	return out, nil
}

func descriptor(d ocispec.Descriptor) Descriptor {
	return Descriptor{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size}
}

func nonNeg(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// classify wraps err with the sentinel callers branch on.
func classify(err error) error {
	if _, ok := status.FromError(err); ok {
		err = errgrpc.ToNative(err)
	}
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errdefs.IsDeadlineExceeded(err):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errdefs.IsNotImplemented(err):
		return fmt.Errorf("%w: %v", ErrUnimplemented, err)
	case errdefs.IsUnavailable(err) || strings.Contains(msg, "connection refused") || strings.Contains(msg, "Unavailable"):
		if strings.Contains(msg, "permission denied") {
			return fmt.Errorf("%w: %v", ErrPermission, err)
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

package images

import (
	"strings"
	"time"

	"github.com/imagefs/imagefs/pkg/containerd"
)

// The reachability model of containerd's garbage collector
// (core/metadata/gc.go, v2.4.2; 1.6 has the same rules), over what the API
// shows of one namespace. Nodes are "content/<digest>",
// "snapshot/<snapshotter>/<key>", "image/<name>", "container/<id>",
// "ingest/<ref>".
//
// Roots: images without an expired containerd.io/gc.expire label; every
// container; the resources of every unexpired lease (a lease labelled
// containerd.io/gc.flat holds only the objects themselves); content and
// snapshots labelled containerd.io/gc.root.
// Edges: image → its target and its gc.ref labels; content → its
// containerd.io/gc.ref.content*, gc.ref.snapshot.<sn>, gc.ref.image labels;
// snapshot → its parent and its gc.ref labels; container → its
// snapshotter/snapshot key and its gc.ref labels; and for each
// containerd.io/gc.bref.* label on an object, an edge from the named object
// to it.
// Not modelled: conditional references (containerd.io/gc.cond.*), sandbox
// records' labels, and resources in use by running transfers; an object
// held only by those is reported as unreferenced.

type graph struct {
	edges map[string][]string
	// parent is each snapshot node's parent node.
	parent map[string]string
}

func (g *graph) add(from, to string) {
	if g.edges == nil {
		g.edges = map[string][]string{}
	}
	g.edges[from] = append(g.edges[from], to)
}

func contentNode(d string) string        { return "content/" + d }
func snapshotNode(sn, key string) string { return "snapshot/" + sn + "/" + key }
func imageNode(name string) string       { return "image/" + name }
func containerNode(id string) string     { return "container/" + id }

// labelEdges adds from's edges for its gc.ref labels and the reverse edges
// of its gc.bref labels.
func (g *graph) labelEdges(from string, labels map[string]string) {
	for k, v := range labels {
		switch {
		case refName(k, containerd.LabelGCRefContent):
			g.add(from, contentNode(v))
		case strings.HasPrefix(k, containerd.LabelGCRefSnapshot):
			g.add(from, snapshotNode(snapshotterOf(k[len(containerd.LabelGCRefSnapshot):]), v))
		case refName(k, containerd.LabelGCRefImage):
			g.add(from, imageNode(v))
		case refName(k, "containerd.io/gc.bref.content"):
			g.add(contentNode(v), from)
		case refName(k, "containerd.io/gc.bref.image"):
			g.add(imageNode(v), from)
		case refName(k, "containerd.io/gc.bref.container"):
			g.add(containerNode(v), from)
		case strings.HasPrefix(k, "containerd.io/gc.bref.snapshot."):
			g.add(snapshotNode(snapshotterOf(k[len("containerd.io/gc.bref.snapshot."):]), v), from)
		}
	}
}

// refName matches a label key equal to prefix or prefix followed by "." or
// "/" and a name, as containerd's label handlers do.
func refName(k, prefix string) bool {
	if !strings.HasPrefix(k, prefix) {
		return false
	}
	return len(k) == len(prefix) || k[len(prefix)] == '.' || k[len(prefix)] == '/'
}

// snapshotterOf strips a "/name" suffix from a gc.ref.snapshot label's
// snapshotter part.
func snapshotterOf(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

// expired reports whether labels carry a gc.expire before now.
func expired(labels map[string]string, now time.Time) (bool, *time.Time) {
	v, ok := labels[containerd.LabelGCExpire]
	if !ok {
		return false, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return false, nil // containerd ignores an unparsable value
	}
	return now.After(t), &t
}

// reach marks what GC roots reach: for each reached node, the first root
// (in the order images, containers, leases, gc.root labels) that reached it.
type reach map[string]string

func (inv *Inventory) buildGraph() *graph {
	g := &graph{}
	for _, im := range inv.Images {
		n := imageNode(im.Name)
		g.add(n, contentNode(im.Target.Digest))
		g.labelEdges(n, im.Labels)
	}
	for _, b := range inv.Blobs {
		g.labelEdges(contentNode(b.Digest), b.Labels)
	}
	addSnaps := func(sn string, list []containerd.Snapshot) {
		for _, s := range list {
			n := snapshotNode(sn, s.Key)
			if s.Parent != "" {
				p := snapshotNode(sn, s.Parent)
				g.add(n, p)
				if g.parent == nil {
					g.parent = map[string]string{}
				}
				g.parent[n] = p
			}
			g.labelEdges(n, s.Labels)
		}
	}
	addSnaps(inv.Snapshotter, inv.Snapshots)
	for sn, list := range inv.OtherSnapshots {
		addSnaps(sn, list)
	}
	for _, c := range inv.Containers {
		n := containerNode(c.ID)
		if c.Snapshotter != "" && c.SnapshotKey != "" {
			g.add(n, snapshotNode(c.Snapshotter, c.SnapshotKey))
		}
		g.labelEdges(n, c.Labels)
	}
	return g
}

// markRoots walks the graph from every GC root; with noImages, from every
// root but the images (what would stay if every image were removed).
func (inv *Inventory) markRoots(g *graph, now time.Time, noImages bool) reach {
	r := reach{}
	var visit func(n, why string, follow bool)
	visit = func(n, why string, follow bool) {
		if _, done := r[n]; done {
			return
		}
		r[n] = why
		if !follow {
			return
		}
		for _, m := range g.edges[n] {
			visit(m, why, true)
		}
	}
	for _, im := range inv.Images {
		if exp, _ := expired(im.Labels, now); !exp && !noImages {
			visit(imageNode(im.Name), "image "+im.Name, true)
		}
	}
	for _, c := range inv.Containers {
		visit(containerNode(c.ID), "container "+c.ID, true)
	}
	for _, l := range inv.Leases {
		if exp, _ := expired(l.Labels, now); exp {
			continue
		}
		_, flat := l.Labels[containerd.LabelGCFlat]
		for _, res := range l.Resources {
			why := "lease " + l.ID
			switch {
			case res.Type == "content":
				visit(contentNode(res.ID), why, !flat)
			case res.Type == "images":
				visit(imageNode(res.ID), why, !flat)
				if flat { // a flat image lease keeps its target blob only
					for _, im := range inv.Images {
						if im.Name == res.ID {
							visit(contentNode(im.Target.Digest), why, false)
						}
					}
				}
			case strings.HasPrefix(res.Type, "snapshots/"):
				sn := strings.TrimPrefix(res.Type, "snapshots/")
				if flat {
					// flat snapshots still keep their parents
					n := snapshotNode(sn, res.ID)
					for n != "" {
						if _, done := r[n]; !done {
							r[n] = why
						}
						n = g.parent[n]
					}
					continue
				}
				visit(snapshotNode(sn, res.ID), why, true)
			case res.Type == "ingests":
				visit("ingest/"+res.ID, why, false)
			}
		}
	}
	for _, b := range inv.Blobs {
		if _, ok := b.Labels[containerd.LabelGCRoot]; ok {
			visit(contentNode(b.Digest), "label "+containerd.LabelGCRoot+" on "+b.Digest, true)
		}
	}
	rootSnaps := func(sn string, list []containerd.Snapshot) {
		for _, s := range list {
			if _, ok := s.Labels[containerd.LabelGCRoot]; ok {
				visit(snapshotNode(sn, s.Key), "label "+containerd.LabelGCRoot+" on snapshot "+s.Key, true)
			}
		}
	}
	rootSnaps(inv.Snapshotter, inv.Snapshots)
	for sn, list := range inv.OtherSnapshots {
		rootSnaps(sn, list)
	}
	return r
}

// contentClosure is every blob reachable from start through content-to-
// content label references only.
func contentClosure(g *graph, start []string) map[string]bool {
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if seen[n] || !strings.HasPrefix(n, "content/") {
			return
		}
		seen[n] = true
		for _, m := range g.edges[n] {
			visit(m)
		}
	}
	for _, s := range start {
		visit(s)
	}
	return seen
}

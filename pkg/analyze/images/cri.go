package images

import (
	"fmt"
	"sort"
	"strings"
	"time"

	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FromCRI builds a report from CRI ListImages and ListContainers alone: what
// any runtime (CRI-O, cri-dockerd, or containerd with --cri) offers. Each
// image's size is the runtime's own figure; sharing, layers, orphans, leases
// and leftover dirs are not available.
func FromCRI(rt Runtime, imgs []*criapi.Image, ctrs []*criapi.Container, imageFs *CRIUsage, collectedAt time.Time, o Options) (*Report, error) {
	if o.Sort == "" {
		o.Sort = SortUnique
	}
	if !validSort(o.Sort) {
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrBadSort, o.Sort, strings.Join(SortOrders, ", "))
	}
	name := rt.Name
	if name == "" {
		name = "the runtime"
	}
	rep := &Report{
		CollectedAt: collectedAt,
		Source:      SourceCRI,
		Runtime:     rt,
		Sort:        o.Sort,
		CRIOnly: &CRIOnly{Unavailable: []string{
			fmt.Sprintf("layers, unique and shared bytes: CRI does not say which layers images share; SIZE is %s's ListImages size (containerd: compressed content; CRI-O: uncompressed image size), which counts shared layers in every image", name),
			"containers' writable layers, unreferenced snapshots and blobs, leases and leftover snapshot dirs: they need the runtime's own API (containerd's is supported)",
		}},
	}
	if imageFs != nil {
		c := *imageFs
		if !c.Timestamp.IsZero() {
			c.AgeSeconds = collectedAt.Sub(c.Timestamp).Seconds()
		}
		rep.CRIOnly.ImageFs = &c
	}
	rows := make([]Image, 0, len(imgs))
	for _, im := range imgs {
		r := Image{
			ID:          im.GetId(),
			RepoTags:    append([]string(nil), im.GetRepoTags()...),
			RepoDigests: append([]string(nil), im.GetRepoDigests()...),
			Size:        ptr(im.GetSize()),
			Pinned:      im.GetPinned(),
		}
		sort.Strings(r.RepoTags)
		sort.Strings(r.RepoDigests)
		for _, c := range ctrs {
			if criUses(c, im) {
				r.ContainerIDs = append(r.ContainerIDs, c.GetId())
			}
		}
		sort.Strings(r.ContainerIDs)
		r.Containers = len(r.ContainerIDs)
		rep.CRIOnly.SizeSum += im.GetSize()
		rows = append(rows, r)
	}
	if len(o.WhatIf) > 0 {
		w := &WhatIf{Images: o.WhatIf, Approximate: true}
		set := map[int]bool{}
		for _, q := range o.WhatIf {
			i, err := resolveCRI(rows, q)
			if err != nil {
				return nil, err
			}
			if set[i] {
				continue
			}
			set[i] = true
			w.IDs = append(w.IDs, rows[i].ID)
			w.Freed.add(*rows[i].Size, 0)
			if rows[i].Containers > 0 {
				w.InUse = append(w.InUse, rows[i].Name())
			}
		}
		sort.Strings(w.IDs)
		sort.Strings(w.InUse)
		rep.WhatIf = w
	}
	sortImages(rows, o.Sort)
	rep.ImageCount = len(rows)
	if o.Top > 0 && len(rows) > o.Top {
		rows = rows[:o.Top]
	}
	rep.Images = rows
	return rep, nil
}

// criUses reports whether a CRI container runs image im.
func criUses(c *criapi.Container, im *criapi.Image) bool {
	for _, ref := range []string{c.GetImageRef(), c.GetImage().GetImage(), c.GetImageId()} {
		if ref == "" {
			continue
		}
		if ref == im.GetId() || contains(im.GetRepoTags(), ref) || contains(im.GetRepoDigests(), ref) {
			return true
		}
	}
	return false
}

func resolveCRI(rows []Image, q string) (int, error) {
	n, normOK := normalize(q)
	for i, r := range rows {
		if r.ID == q || contains(r.RepoTags, q) || contains(r.RepoDigests, q) || (normOK && contains(r.RepoTags, n)) {
			return i, nil
		}
	}
	hex := strings.TrimPrefix(q, "sha256:")
	if len(hex) >= 3 && isHex(hex) {
		var hits []int
		for i, r := range rows {
			if strings.HasPrefix(strings.TrimPrefix(r.ID, "sha256:"), hex) {
				hits = append(hits, i)
			}
		}
		if len(hits) == 1 {
			return hits[0], nil
		}
		if len(hits) > 1 {
			return 0, fmt.Errorf("%w %q", ErrAmbiguousImage, q)
		}
	}
	return 0, fmt.Errorf("%w %q (give a tag, digest reference, image ID or ID prefix as imagefs images lists them)", ErrNoSuchImage, q)
}

package output

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imagefs/imagefs/pkg/analyze/images"
)

// ImagesOptions tune the images renderer.
type ImagesOptions struct {
	Format string
	// ExactBytes prints byte counts exactly instead of with binary units.
	ExactBytes bool
	// Layers prints each image's layers under it (table).
	Layers bool
}

// Images renders an images report: tables with the reconciliation and what
// no image accounts for, or JSON/YAML of the whole report.
func Images(w io.Writer, r *images.Report, o ImagesOptions) error {
	return render(w, o.Format, r, func() error { return imagesText(w, r, o) })
}

type imagesPrinter struct {
	w     io.Writer
	exact bool
	now   time.Time
}

func (p *imagesPrinter) bytes(v *uint64) string { return Bytes(v, p.exact) }
func (p *imagesPrinter) n(v uint64) string      { return Bytes(&v, p.exact) }

func (p *imagesPrinter) age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return imgDuration(p.now.Sub(t))
}

func imagesText(w io.Writer, r *images.Report, o ImagesOptions) error {
	p := &imagesPrinter{w: w, exact: o.ExactBytes, now: r.CollectedAt}
	p.header(r)
	p.imageTable(r, o.Layers)
	if r.WhatIf != nil {
		p.whatIf(r)
	}
	if r.Totals != nil {
		p.totals(r)
	}
	if r.CRIOnly != nil {
		p.criOnly(r)
	}
	if r.Unaccounted != nil {
		p.unaccounted(r)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	return nil
}

func (p *imagesPrinter) header(r *images.Report) {
	rt := r.Runtime
	who := strings.TrimSpace(rt.Name + " " + rt.Version)
	if who == "" {
		who = "runtime"
	}
	if c := rt.Containerd; c != nil {
		fmt.Fprintf(p.w, "containerd %s at %s (its own API, read-only), namespace %s\n", imgOrDash(c.Version), c.Address, c.Namespace)
		fmt.Fprintf(p.w, "snapshotter %s (%s), root %s\n", c.Snapshotter, c.SnapshotterSource, imgOrDash(c.SnapshotterRoot))
	} else {
		fmt.Fprintf(p.w, "%s at %s: CRI ListImages only\n", who, imgOrDash(rt.Endpoint))
	}
	fmt.Fprintln(p.w)
}

func (p *imagesPrinter) imageTable(r *images.Report, layers bool) {
	var t imgTable
	cri := r.Source == images.SourceCRI
	if cri {
		t.row("IMAGE ID", "NAME", "CONTAINERS", "SIZE", "PINNED")
	} else {
		t.row("IMAGE ID", "NAME", "CONTAINERS", "LAYERS", "COMPRESSED", "UNPACKED", "UNIQUE", "SHARED", "AGE")
	}
	for i := range r.Images {
		im := &r.Images[i]
		name := imgShortName(im.Name())
		if extra := len(im.RepoTags) + len(im.RepoDigests) - 1; extra > 0 {
			name += fmt.Sprintf(" (+%d)", extra)
		}
		if im.Pinned && !cri {
			name += " [pinned]"
		}
		if cri {
			t.row(imgShortID(im.ID), name, strconv.Itoa(im.Containers), p.bytes(im.Size), imgYesNo(im.Pinned))
			continue
		}
		nl := "-"
		if im.Layers != nil || im.UnpackedBytes != nil {
			nl = strconv.Itoa(len(im.Layers))
		}
		t.row(imgShortID(im.ID), name, strconv.Itoa(im.Containers), nl,
			p.bytes(im.CompressedBytes), p.bytes(im.UnpackedBytes), p.bytes(im.UniqueBytes), p.bytes(im.SharedBytes), p.age(im.Created))
		if layers {
			for li, l := range im.Layers {
				size := "not unpacked"
				if l.Snapshot {
					size = "unpacked " + p.bytes(l.Bytes)
				}
				what := ""
				switch {
				case !l.Snapshot:
				case l.Unique:
					what = ", unique"
				case len(l.SharedWith) > 0:
					what = ", shared with " + strings.Join(l.SharedWith, ", ")
				default:
					what = ", shared"
				}
				t.line(fmt.Sprintf("  layer %d %s %s: compressed %s, %s%s", li+1, imgShortKey(l.ChainID), imgOrDash(l.Dir), p.bytes(l.BlobBytes), size, what))
			}
		}
	}
	t.write(p.w, "")
	if r.ImageCount > len(r.Images) {
		fmt.Fprintf(p.w, "(%d of %d images, sorted by %s)\n", len(r.Images), r.ImageCount, r.Sort)
	} else {
		fmt.Fprintf(p.w, "(%d images, sorted by %s)\n", r.ImageCount, r.Sort)
	}
	for i := range r.Images {
		for _, n := range r.Images[i].Notes {
			fmt.Fprintf(p.w, "  %s: %s\n", imgShortName(r.Images[i].Name()), n)
		}
	}
}

func (p *imagesPrinter) whatIf(r *images.Report) {
	w := r.WhatIf
	fmt.Fprintf(p.w, "\nWhat if %s were removed:\n", strings.Join(w.Images, ", "))
	if w.Approximate {
		fmt.Fprintf(p.w, "  at most %s freed: the sum of the runtime's sizes (layers shared with other images would stay; CRI cannot tell which)\n", p.n(w.Freed.Bytes))
	} else {
		fmt.Fprintf(p.w, "  snapshots freed   %s, %d inodes (%d layer snapshot(s) only these images use)\n", p.n(w.Freed.Bytes), w.Freed.Inodes, w.Freed.Count)
		fmt.Fprintf(p.w, "  content freed     %s (%d blob(s), compressed; not in CRI usedBytes)\n", p.n(w.FreedContent.Bytes), w.FreedContent.Count)
		fmt.Fprintf(p.w, "  layers kept       %s (%d snapshot(s) other images or containers still use)\n", p.n(w.Kept.Bytes), w.Kept.Count)
	}
	if len(w.InUse) > 0 {
		fmt.Fprintf(p.w, "  in use by containers (the kubelet never removes these): %s\n", strings.Join(w.InUse, ", "))
	}
}

func (p *imagesPrinter) totals(r *images.Report) {
	t := r.Totals
	ns, sn := "", ""
	if c := r.Runtime.Containerd; c != nil {
		ns, sn = c.Namespace, c.Snapshotter
	}
	fmt.Fprintf(p.w, "\nSnapshots of %s in namespace %s (allocated bytes and inodes, as containerd counts them):\n", sn, ns)
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tSNAPSHOTS\tBYTES\tINODES")
	row := func(label string, a images.Amount) {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\n", label, a.Count, p.n(a.Bytes), a.Inodes)
	}
	row("image layers", t.ImageLayers)
	row("  unique to one image", t.Unique)
	row("  shared (each once)", t.Shared)
	row("container layers (writable)", t.ContainerLayers)
	row("kept only by containers", t.KeptByContainers)
	row("unreferenced", t.Unreferenced)
	row("total", t.Snapshotter)
	if c := t.CRI; c != nil {
		fmt.Fprintf(tw, "  CRI ImageFsInfo (%.1fs old)\t\t%s\t%s\n", c.AgeSeconds, p.bytes(c.UsedBytes), Count(c.InodesUsed))
		if c.DiffBytes != nil {
			di := "-"
			if c.DiffInodes != nil {
				di = fmt.Sprintf("%+d", *c.DiffInodes)
			}
			fmt.Fprintf(tw, "  total - CRI\t\t%s\t%s\n", imgSigned(*c.DiffBytes, p.exact), di)
		}
	}
	tw.Flush()
	if t.UsageUnknown > 0 {
		fmt.Fprintf(p.w, "  (%d snapshot(s) with unknown usage left out)\n", t.UsageUnknown)
	}
	for _, l := range t.Reconciliation {
		fmt.Fprintf(p.w, "  - %s\n", l)
	}
	fmt.Fprintf(p.w, "\nContent store: %d blob(s), %s compressed; %d unreferenced (%s)", t.Content.Blobs, p.n(t.Content.Bytes), t.Content.Unreferenced, p.n(t.Content.UnreferencedBytes))
	if t.Content.Missing > 0 {
		fmt.Fprintf(p.w, "; %d referenced but absent", t.Content.Missing)
	}
	fmt.Fprintln(p.w)
}

func (p *imagesPrinter) criOnly(r *images.Report) {
	c := r.CRIOnly
	fmt.Fprintf(p.w, "\nSum of image sizes: %s (shared layers counted in every image)\n", p.n(c.SizeSum))
	if fs := c.ImageFs; fs != nil {
		fmt.Fprintf(p.w, "CRI ImageFsInfo usedBytes: %s, inodesUsed %s (%.1fs old), mountpoint %s\n", p.bytes(fs.UsedBytes), Count(fs.InodesUsed), fs.AgeSeconds, imgOrDash(fs.Mountpoint))
	}
	fmt.Fprintln(p.w, "Not available from CRI:")
	for _, u := range c.Unavailable {
		fmt.Fprintf(p.w, "  - %s\n", u)
	}
}

func (p *imagesPrinter) unaccounted(r *images.Report) {
	u := r.Unaccounted
	fmt.Fprintln(p.w, "\nWhat no image accounts for:")

	fmt.Fprintf(p.w, "\nSnapshots no image or container uses: %d\n", len(u.Snapshots))
	if len(u.Snapshots) > 0 {
		tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  KEY\tKIND\tDIR\tBYTES\tINODES\tAGE\tGC")
		for _, s := range u.Snapshots {
			gc := "collectable (next GC removes it)"
			if !s.Collectable {
				gc = "held by " + s.HeldBy
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", imgShortKey(s.Key), s.Kind, imgOrDash(s.Dir), p.bytes(s.Bytes), Count(s.Inodes), p.age(s.Created), gc)
		}
		tw.Flush()
	}

	fmt.Fprintf(p.w, "\nContent blobs no GC root reaches (removed at containerd's next GC): %d\n", len(u.Blobs))
	if len(u.Blobs) > 0 {
		tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  DIGEST\tKIND\tBYTES\tAGE")
		for _, b := range u.Blobs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", b.Digest, imgOrDash(b.Kind), p.n(b.Bytes), p.age(b.Created))
		}
		tw.Flush()
	}

	stale := 0
	for _, l := range u.Leases {
		if l.Stale {
			stale++
		}
	}
	fmt.Fprintf(p.w, "\nLeases: %d (%d stale)\n", len(u.Leases), stale)
	if len(u.Leases) > 0 {
		tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tAGE\tEXPIRES\tRESOURCES\tSTATE\tLABELS")
		for _, l := range u.Leases {
			exp := "-"
			if l.Expires != nil {
				exp = l.Expires.UTC().Format(time.RFC3339)
			}
			state := "active"
			if l.Stale {
				state = "stale: " + l.StaleReason
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", l.ID, p.age(l.Created), exp, l.Resources, state, imgLabels(l.Labels))
		}
		tw.Flush()
	}

	l := u.LeftoverDirs
	switch {
	case l == nil:
	case !l.Checked:
		fmt.Fprintf(p.w, "\nLeftover snapshot dirs: not checked: %s\n", l.Reason)
	default:
		fmt.Fprintf(p.w, "\nLeftover dirs under %s the snapshotter no longer knows: %d (%s; %d dirs, %d known IDs)\n", l.SnapshotsDir, len(l.Dirs), p.n(l.Total.Bytes), l.DirsOnDisk, l.KnownIDs)
		if len(l.Dirs) > 0 {
			tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  DIR\tBYTES\tINODES\tMODIFIED\tNOTE")
			for _, d := range l.Dirs {
				note := "no snapshot has this ID: removed at the snapshotter's next cleanup (after a GC that removes a snapshot), or left by a crash"
				if d.Temp {
					note = "snapshot being created, or left by a crash mid-creation"
				}
				if d.Error != "" {
					note += "; " + d.Error
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s ago\t%s\n", d.Name, p.bytes(d.Bytes), Count(d.Inodes), p.age(d.ModTime), note)
			}
			tw.Flush()
		}
	}
}

// imgShortID is a digest's first 12 hex characters, as docker and crictl show it.
func imgShortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// imgShortName shortens the digest of a digest reference (repo@sha256:…).
func imgShortName(n string) string {
	if repo, d, ok := strings.Cut(n, "@"); ok {
		return repo + "@" + imgShortKey(d)
	}
	return n
}

// imgShortKey shortens a snapshot key that is a digest; other keys stay.
func imgShortKey(k string) string {
	if strings.HasPrefix(k, "sha256:") && len(k) == len("sha256:")+64 {
		return "sha256:" + imgShortID(k)
	}
	return k
}

func imgOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func imgYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func imgSigned(v int64, exact bool) string {
	if exact || v == 0 {
		return fmt.Sprintf("%+d", v)
	}
	if v < 0 {
		return "-" + HumanBytes(uint64(-v))
	}
	return "+" + HumanBytes(uint64(v))
}

func imgLabels(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// imgDuration is a rough age: 42s, 5m, 3h, 2d.
func imgDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// imgTable aligns columns like tabwriter, but lets free-text lines sit
// between rows without breaking the alignment.
type imgTable struct {
	rows []imgRow
}

type imgRow struct {
	cells []string
	text  string // a free-text line instead of cells
}

func (t *imgTable) row(cells ...string) { t.rows = append(t.rows, imgRow{cells: cells}) }
func (t *imgTable) line(s string)       { t.rows = append(t.rows, imgRow{text: s}) }

func (t *imgTable) write(w io.Writer, indent string) {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r.cells {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range t.rows {
		if r.cells == nil {
			fmt.Fprintln(w, indent+r.text)
			continue
		}
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r.cells {
			b.WriteString(c)
			if i < len(r.cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

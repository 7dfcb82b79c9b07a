package output

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/imagefs/imagefs/pkg/analyze/explain"
)

// FormatMarkdown is a report to paste into an issue.
const FormatMarkdown = "markdown"

// ExplainOptions tune the explain renderers.
type ExplainOptions struct {
	Format string // table (narrative), json, yaml, markdown
	Color  bool   // ANSI colour, only on a terminal
}

// Explain renders an explanation.
func Explain(w io.Writer, r *explain.Report, o ExplainOptions) error {
	if o.Format == FormatMarkdown {
		return narrative(w, r, style{markdown: true})
	}
	return render(w, o.Format, r, func() error { return narrative(w, r, style{color: o.Color}) })
}

// style decides how headings, code and warnings look.
type style struct {
	color, markdown bool
}

func (s style) h1(t string) string {
	switch {
	case s.markdown:
		return "## " + t
	case s.color:
		return "\x1b[1m" + t + "\x1b[0m"
	}
	return t
}

func (s style) h2(t string) string {
	switch {
	case s.markdown:
		return "### " + t
	case s.color:
		return "\x1b[1;36m" + t + "\x1b[0m"
	}
	return t
}

func (s style) bad(t string) string {
	if s.color {
		return "\x1b[31m" + t + "\x1b[0m"
	}
	return t
}

// block prints preformatted lines, fenced in markdown, indented otherwise.
func (s style) block(w io.Writer, lines ...string) {
	if s.markdown {
		fmt.Fprintln(w, "```")
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintln(w, "```")
		return
	}
	for _, l := range lines {
		fmt.Fprintln(w, "     "+l)
	}
}

// kv prints aligned "key  value" lines.
func (s style) kv(w io.Writer, pairs ...[2]string) {
	width := 0
	for _, p := range pairs {
		width = max(width, len(p[0]))
	}
	for _, p := range pairs {
		if s.markdown {
			fmt.Fprintf(w, "- **%s**: %s\n", p[0], p[1])
			continue
		}
		fmt.Fprintf(w, "   %-*s  %s\n", width, p[0], p[1])
	}
}

func narrative(w io.Writer, r *explain.Report, s style) error {
	fmt.Fprintln(w, s.h1(fmt.Sprintf("How the kubelet computes the filesystem stats of node %s", r.NodeName)))
	fmt.Fprintln(w, "(kubelet v1.37 CRI stats provider, cadvisor lib v0.60.5; imagefs reads, it changes nothing)")
	fmt.Fprintln(w)

	fmt.Fprintln(w, s.h2("1. The runtime"))
	s.kv(w,
		[2]string{"endpoint", fmt.Sprintf("%s (chosen from %s)", r.Runtime.Endpoint, r.Runtime.EndpointSource)},
		[2]string{"runtime", fmt.Sprintf("%s %s, CRI %s", r.Runtime.Name, r.Runtime.Version, r.Runtime.RuntimeAPIVersion)},
	)
	fmt.Fprintln(w)

	fmt.Fprintln(w, s.h2("2. ImageFsInfo, as the runtime answered"))
	s.block(w, string(r.ImageFsInfo.Raw))
	for i, u := range r.ImageFsInfo.ImageFilesystems {
		fmt.Fprintf(w, "   image_filesystems[%d]: %s\n", i, usageLine(u))
	}
	if len(r.ImageFsInfo.ContainerFilesystems) == 0 {
		fmt.Fprintln(w, "   container_filesystems: none (the kubelet's CRI stats provider ignores them anyway)")
	}
	for i, u := range r.ImageFsInfo.ContainerFilesystems {
		fmt.Fprintf(w, "   container_filesystems[%d]: %s (ignored by the kubelet's CRI stats provider)\n", i, usageLine(u))
	}
	fmt.Fprintln(w)

	for _, f := range r.Filesystems {
		explainFs(w, f, s)
	}
	if r.Live != nil {
		liveSection(w, r.Live, s)
	}
	return nil
}

func liveSection(w io.Writer, l *explain.Live, s style) {
	fmt.Fprintln(w, s.h1("6. The live kubelet, side by side"))
	fmt.Fprintf(w, "   source: %s\n", l.Source)
	if l.Error != "" {
		fmt.Fprintln(w, "   "+s.bad("could not fetch the live Summary: "+l.Error))
		fmt.Fprintln(w)
		return
	}
	rows := []string{fmt.Sprintf("%-10s %-15s %20s %20s %12s", "ROLE", "FIELD", "IMAGEFS", "KUBELET", "DIFF")}
	for _, rd := range l.Roles {
		for _, f := range rd.Fields {
			ours, live := Count(f.Ours), Count(f.Live)
			if f.Field == "time" {
				ours, live = timeOrDash(f.OursTime), timeOrDash(f.LiveTime)
			}
			diff := "="
			if !f.Equal {
				diff = "≠"
				if f.Diff != nil {
					diff = fmt.Sprintf("%+d", *f.Diff)
				}
			}
			rows = append(rows, fmt.Sprintf("%-10s %-15s %20s %20s %12s", rd.Role, f.Field, ours, live, diff))
		}
	}
	s.block(w, rows...)
	for _, r := range l.Reasons {
		fmt.Fprintf(w, "   - %s\n", r)
	}
	fmt.Fprintln(w)
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("15:04:05Z")
}

func usageLine(u explain.Usage) string {
	return fmt.Sprintf("mountpoint %s, used_bytes %s, inodes_used %s, timestamp %s (%.1f s old when asked)",
		u.Mountpoint, Count(u.UsedBytes), Count(u.InodesUsed), u.Timestamp.Format("2006-01-02T15:04:05.000Z07:00"), u.AgeSeconds)
}

func explainFs(w io.Writer, f *explain.Filesystem, s style) {
	fmt.Fprintln(w, s.h1(fmt.Sprintf("%s (%s)", f.Path, f.Role)))
	if f.SameAs != "" {
		fmt.Fprintf(w, "   The kubelet reports the very same object as for %s:\n", f.SameAs)
		for _, n := range f.Notes {
			fmt.Fprintf(w, "   - %s\n", n)
		}
		fmt.Fprintln(w)
		return
	}
	l := f.Lookup
	fmt.Fprintln(w, s.h2("3. Directory → device → partition"))
	pairs := [][2]string{{"directory", fmt.Sprintf("%s (from %s)", orDash(f.Dir), f.DirSource)}}
	if l.StatError == "" && f.Dir != "" {
		pairs = append(pairs, [2]string{"stat", fmt.Sprintf("st_dev %d → major:minor %d:%d", l.Dev, l.Major, l.Minor)})
	}
	if l.MountinfoLine != "" {
		pairs = append(pairs, [2]string{"mountinfo", l.MountinfoLine})
	}
	if p := l.Partition; p != nil {
		pairs = append(pairs, [2]string{"partition", fmt.Sprintf("%s at %s (%s, cadvisor plugin %s, %d:%d) via the %s", p.Device, p.Mountpoint, p.FSType, p.Plugin, p.Major, p.Minor, l.Via)})
		if p.Note != "" {
			pairs = append(pairs, [2]string{"note", p.Note})
		}
	}
	pairs = append(pairs, [2]string{"why", l.Why})
	s.kv(w, pairs...)
	if f.KubeletError != "" {
		fmt.Fprintln(w, "   "+s.bad("The kubelet fails here; the Summary API returns HTTP 500 with:"))
		s.block(w, f.KubeletError)
		fmt.Fprintln(w, "   and logs:")
		s.block(w, f.KubeletLog)
	}
	fmt.Fprintln(w)

	if st := f.Statfs; st != nil {
		fmt.Fprintln(w, s.h2(fmt.Sprintf("4. statfs(%s) and the arithmetic", l.Partition.Mountpoint)))
		s.block(w, fmt.Sprintf("f_bsize %d  f_frsize %d  f_blocks %d  f_bfree %d  f_bavail %d  f_files %d  f_ffree %d", st.Bsize, st.Frsize, st.Blocks, st.Bfree, st.Bavail, st.Files, st.Ffree))
	} else {
		fmt.Fprintln(w, s.h2("4. The fields"))
	}
	var rows []string
	for _, fl := range f.Fields {
		rows = append(rows, fmt.Sprintf("%-15s %-14s %s  [%s]", fl.Name, Count(fl.Value), fl.Formula, fl.Source))
	}
	s.block(w, rows...)
	if g := f.Gap; g != nil {
		fmt.Fprintf(w, "   Why usedBytes + availableBytes (%d) ≠ capacityBytes (%d): %s.\n", g.UsedBytes+g.AvailableBytes, g.CapacityBytes, g.Why)
	}
	for _, n := range f.Notes {
		fmt.Fprintf(w, "   note: %s\n", n)
	}
	fmt.Fprintln(w)

	if f.Df == nil && f.RuntimeData == nil {
		return
	}
	fmt.Fprintln(w, s.h2("5. The same mount as df sees it, and the runtime's own data"))
	if d := f.Df; d != nil {
		s.block(w,
			fmt.Sprintf("$ df -B1 %s", d.Mountpoint),
			fmt.Sprintf("%-20s %15s %15s %15s %4s  %s", "Filesystem", "1B-blocks", "Used", "Available", "Use%", "Mounted on"),
			fmt.Sprintf("%-20s %15d %15d %15d %3d%%  %s", d.Filesystem, d.B1.Size, d.B1.Used, d.B1.Available, d.B1.UsePercent, d.Mountpoint),
			fmt.Sprintf("$ df -BKB %s", d.Mountpoint),
			fmt.Sprintf("%-20s %15s %15s %15s %4s  %s", "Filesystem", "1kB-blocks", "Used", "Available", "Use%", "Mounted on"),
			fmt.Sprintf("%-20s %15s %15s %15s %3d%%  %s", d.Filesystem, fmt.Sprintf("%dkB", d.KB.Size), fmt.Sprintf("%dkB", d.KB.Used), fmt.Sprintf("%dkB", d.KB.Available), d.KB.UsePercent, d.Mountpoint),
		)
		fmt.Fprintln(w, "   df's Used is f_blocks - f_bfree (the kubelet's node usedBytes); df's Use% rounds up used/(used+available).")
	}
	if rd := f.RuntimeData; rd != nil {
		var used string
		for _, fl := range f.Fields {
			if fl.Name == "usedBytes" {
				used = Count(fl.Value)
			}
		}
		pairs := [][2]string{
			{"usedBytes (runtime)", used + " bytes: snapshots of the CRI namespace (k8s.io) in the CRI snapshotter, allocated blocks, each inode once"},
			{"snapshotter dir", fmt.Sprintf("%s: %s bytes, %s inodes on disk (all namespaces)", rd.SnapshotterDir, Count(rd.SnapshotterBytes), Count(rd.SnapshotterInodes))},
		}
		if rd.ContentStoreDir != "" {
			pairs = append(pairs, [2]string{"content store", fmt.Sprintf("%s: %s bytes, not counted in usedBytes (compressed layers kept after unpacking)", rd.ContentStoreDir, Count(rd.ContentStoreBytes))})
		}
		pairs = append(pairs, [2]string{"runtime root", fmt.Sprintf("%s: %s bytes in all", rd.RootDir, Count(rd.RootBytes))})
		s.kv(w, pairs...)
		for _, e := range rd.Errors {
			fmt.Fprintf(w, "   (measuring: %s)\n", e)
		}
	}
	fmt.Fprintln(w)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

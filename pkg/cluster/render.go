package cluster

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/imagefs/imagefs/pkg/output"
)

// Output formats of Render.
const (
	FormatTable = "table"
	FormatWide  = "wide"
	FormatJSON  = "json"
)

// Formats lists what Render accepts.
var Formats = []string{FormatTable, FormatWide, FormatJSON}

// noteWidth caps the NOTE column of the table; wide shows every reason.
const noteWidth = 100

// Render writes the report as a table (one row per node and a totals
// line), a wide table, or JSON.
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "", FormatTable:
		return table(w, r, false)
	case FormatWide:
		return table(w, r, true)
	case FormatJSON:
		return output.JSON(w, r)
	}
	return output.ErrUnknownFormat{Format: format, Allowed: Formats}
}

func table(w io.Writer, r *Report, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	doctorCol := false
	for _, n := range r.Nodes {
		doctorCol = doctorCol || n.Doctor != nil
	}
	head := []string{"NODE", "STATUS", "IMAGEFS SIZE", "USED", "AVAILABLE", "USE%", "INODES FREE", "TO GC HIGH", "TO EVICTION"}
	if wide {
		head = append(head, "CONTAINERFS", "NODEFS SIZE", "NODEFS AVAILABLE", "NODEFS USE%", "NODEFS INODES FREE", "READY", "DISKPRESSURE", "SOURCE", "MISSING")
	} else {
		head = append(head, "NODEFS USE%")
	}
	if doctorCol {
		head = append(head, "DOCTOR")
	}
	head = append(head, "NOTE")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, n := range r.Nodes {
		img := n.ImageFs
		if img == nil {
			img = &Fs{}
		}
		nfs := n.NodeFs
		if nfs == nil {
			nfs = &Fs{}
		}
		row := []string{n.Name, string(n.Status), bytes(img.CapacityBytes), bytes(img.UsedBytes), bytes(img.AvailableBytes), percent(img.UsePercent), inodesFree(img), toGCHigh(n.ImageGC), toEviction(n)}
		if wide {
			row = append(row, containerFs(n), bytes(nfs.CapacityBytes), bytes(nfs.AvailableBytes), percent(nfs.UsePercent), inodesFree(nfs), dash(n.Ready), dash(n.DiskPressureCondition), n.Source, missingCell(n.Missing))
		} else {
			row = append(row, percent(nfs.UsePercent))
		}
		if doctorCol {
			row = append(row, doctorCell(n))
		}
		row = append(row, note(n, wide))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t := r.Totals
	_, err := fmt.Fprintf(w, "\n%d nodes: %d ok, %d near threshold, %d missing capacity, %d pressure, %d unreachable\n",
		t.Nodes, t.OK, t.NearThreshold, t.MissingCapacity, t.Pressure, t.Unreachable)
	for _, warn := range r.Warnings {
		if err == nil {
			_, err = fmt.Fprintf(w, "warning: %s\n", warn)
		}
	}
	return err
}

func bytes(v *uint64) string { return output.Bytes(v, false) }

func percent(v *int) string {
	if v == nil {
		return "-"
	}
	return strconv.Itoa(*v) + "%"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// inodesFree is the free share of inodes, floored like USE%.
func inodesFree(f *Fs) string {
	if f.Inodes == nil || f.InodesFree == nil || *f.Inodes == 0 {
		return "-"
	}
	return strconv.FormatUint(min(*f.InodesFree, *f.Inodes)*100 / *f.Inodes, 10) + "%"
}

func toGCHigh(gc *ImageGC) string {
	switch {
	case gc == nil || gc.PointsToHigh == nil:
		return "-"
	case gc.Disabled:
		return "disabled"
	case gc.Runs:
		return fmt.Sprintf("%d (runs)", *gc.PointsToHigh)
	}
	return fmt.Sprintf("%+d", *gc.PointsToHigh)
}

func toEviction(n Node) string {
	if n.Nearest == nil {
		return "-"
	}
	return fmt.Sprintf("%+.1f %s", n.Nearest.HeadroomPoints, n.Nearest.Signal)
}

func containerFs(n Node) string {
	if n.ContainerFs == nil {
		if n.ImageFs == nil {
			return "-"
		}
		return "=imagefs"
	}
	return fmt.Sprintf("split %s of %s", percent(n.ContainerFs.UsePercent), bytes(n.ContainerFs.CapacityBytes))
}

func doctorCell(n Node) string {
	if n.Doctor == nil {
		return "-"
	}
	bad := 0
	for _, f := range n.Doctor.Findings {
		if f.Severity != "ok" {
			bad++
		}
	}
	if bad == 0 {
		return string(n.Doctor.Worst)
	}
	return fmt.Sprintf("%s (%d)", n.Doctor.Worst, bad)
}

// note is the first reason, shortened, or in wide every reason and the
// error's hint.
func note(n Node, wide bool) string {
	if wide {
		var parts []string
		if n.Error != nil {
			parts = append(parts, n.Error.Long())
			parts = append(parts, n.Reasons[1:]...)
		} else {
			parts = n.Reasons
		}
		return dash(strings.Join(parts, "; "))
	}
	if len(n.Reasons) == 0 {
		return "-"
	}
	s, suffix := n.Reasons[0], ""
	if more := len(n.Reasons) - 1; more > 0 {
		suffix = fmt.Sprintf(" (+%d more)", more)
	}
	if width := noteWidth - len(suffix); utf8.RuneCountInString(s) > width {
		s = string([]rune(s)[:width-1]) + "…"
	}
	return s + suffix
}

// missingCell groups missing fields by filesystem:
// imageFs.{capacityBytes,availableBytes}.
func missingCell(fields []string) string {
	if len(fields) == 0 {
		return "-"
	}
	var (
		groups []string
		by     = map[string][]string{}
	)
	for _, f := range fields {
		f = strings.TrimPrefix(strings.TrimPrefix(f, "node."), "runtime.")
		fs, field, ok := strings.Cut(f, ".")
		if !ok {
			groups = append(groups, fs)
			continue
		}
		if by[fs] == nil {
			groups = append(groups, fs)
		}
		by[fs] = append(by[fs], field)
	}
	for i, g := range groups {
		switch f := by[g]; len(f) {
		case 0:
		case 1:
			groups[i] = g + "." + f[0]
		default:
			groups[i] = g + ".{" + strings.Join(f, ",") + "}"
		}
	}
	return strings.Join(groups, " ")
}

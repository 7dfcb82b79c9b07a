package output

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/imagefs/imagefs/pkg/stats"
)

// StatsOptions tune the stats renderers.
type StatsOptions struct {
	Format string
	// ExactBytes prints byte counts as integers instead of human sizes.
	ExactBytes bool
}

// Stats renders a collection: the table has one row per filesystem, JSON
// and YAML are the kubelet Summary API shape.
func Stats(w io.Writer, r *stats.Result, o StatsOptions) error {
	return render(w, o.Format, r.Summary, func() error { return statsTable(w, r, o.ExactBytes) })
}

func statsTable(w io.Writer, r *stats.Result, exact bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tDIRECTORY\tDEVICE\tFSTYPE\tCAPACITY\tUSED (RUNTIME)\tUSED (STATFS)\tAVAILABLE\tUSE%\tINODES\tINODES FREE")
	for _, f := range r.Filesystems {
		device, fstype := "-", "-"
		if f.Lookup != nil && f.Lookup.Partition != nil {
			device, fstype = f.Lookup.Partition.Device, f.Lookup.Partition.FSType
		}
		dir := f.Dir
		if dir == "" {
			dir = "-"
		}
		used := "-"
		var capacity, available, inodes, inodesFree *uint64
		if s := f.Stats; s != nil {
			capacity, available, inodes, inodesFree = s.CapacityBytes, s.AvailableBytes, s.Inodes, s.InodesFree
			if f.Role != stats.RoleNode {
				used = Bytes(s.UsedBytes, exact)
			}
		}
		role := f.Role
		if f.SameAs != "" {
			role += " (=" + f.SameAs + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			role, dir, device, fstype,
			Bytes(capacity, exact), used, Bytes(f.UsedStatfs(), exact), Bytes(available, exact),
			UsePercent(available, capacity), Count(inodes), Count(inodesFree))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nruntime: %s %s at %s (%s)\n", r.Runtime.Name, r.Runtime.Version, r.Runtime.Endpoint.URL, r.Runtime.Endpoint.Source)
	for _, f := range r.Filesystems {
		for _, n := range f.Notes {
			fmt.Fprintf(w, "note: %s: %s\n", f.Role, n)
		}
	}
	return nil
}

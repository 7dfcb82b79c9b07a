package output

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imagefs/imagefs/pkg/analyze/gc"
)

// GCOptions tune the gc renderers.
type GCOptions struct {
	Format string
	// ExactBytes prints byte counts exactly instead of with binary units.
	ExactBytes bool
}

// GC renders an image GC report: a narrative with tables, or JSON/YAML of
// the whole report.
func GC(w io.Writer, r *gc.Report, o GCOptions) error {
	return render(w, o.Format, r, func() error { return gcText(w, r, o.ExactBytes) })
}

// GCRemoval is the progress line for one removal made by --apply.
func GCRemoval(r gc.Removal) string {
	s := fmt.Sprintf("removed %s (%s, %d bytes, %s): %d bytes freed so far", r.Name, gcShortID(r.ID), r.Size, r.Reason, r.CumulativeFreedBytes)
	if r.Error != "" {
		s = fmt.Sprintf("failed to remove %s (%s, %d bytes, %s): %s; %d bytes freed so far", r.Name, gcShortID(r.ID), r.Size, r.Reason, r.Error, r.CumulativeFreedBytes)
	}
	return s
}

func gcText(w io.Writer, r *gc.Report, exact bool) error {
	p := r.Plan
	mode := "dry run: nothing is removed (--apply --yes removes the images marked \"remove\")"
	if r.Applied != nil {
		mode = "applied: images were removed through CRI RemoveImage"
	}
	fmt.Fprintf(w, "imagefs gc (kubelet v1.37 image garbage collection), %s\n", mode)
	fs := r.ImageFs.Dir
	if r.ImageFs.Device != "" {
		fs += fmt.Sprintf(" (%s, %s)", r.ImageFs.Device, r.ImageFs.FSType)
	}
	fmt.Fprintf(w, "image filesystem: %s\n", fs)
	if r.Runtime != "" {
		fmt.Fprintf(w, "runtime: %s\n", r.Runtime)
	}
	maxAge := p.Policy.MaxAge.String()
	if p.Policy.MaxAge == 0 {
		maxAge += " (off)"
	}
	fmt.Fprintf(w, "policy: high %d%%, low %d%%, minimum age %s, maximum age %s\n\n", p.Policy.HighThresholdPercent, p.Policy.LowThresholdPercent, p.Policy.MinAge, maxAge)

	// Usage and target.
	switch {
	case p.Verdict == gc.VerdictInvalidCapacity:
		fmt.Fprintf(w, "capacity 0: the kubelet's image GC fails with %q (Warning event %s) before it can free anything\n", p.KubeletMessage, p.KubeletEvent)
	case p.Disabled && !p.Forced:
		fmt.Fprintf(w, "image GC is disabled (high threshold 100%%, maximum age 0): the kubelet never runs it\n")
	default:
		fmt.Fprintf(w, "capacity %s, available %s\n", gcSize(p.CapacityBytes, true), gcSize(p.AvailableBytes, true))
		cmp, what := "<", "GC does not run"
		if p.HighCrossed {
			cmp, what = "≥", fmt.Sprintf("GC runs, must free %s bytes to reach %d%%", strconv.FormatInt(p.AmountToFree, 10), p.Policy.LowThresholdPercent)
		} else if p.GCRuns {
			what = fmt.Sprintf("the kubelet would not run GC now; forced: must free %s bytes to reach %d%%", strconv.FormatInt(p.AmountToFree, 10), p.Policy.LowThresholdPercent)
		} else if p.Forced {
			what = fmt.Sprintf("GC does not run; forced: nothing to free, usage is at or below the low threshold %d%%", p.Policy.LowThresholdPercent)
		}
		if p.Disabled {
			what = "image GC is disabled; " + what
		}
		fmt.Fprintf(w, "usage %d%% (100 - floor(available*100/capacity)) %s high %d%%: %s\n", p.UsagePercent, cmp, p.Policy.HighThresholdPercent, what)
		fmt.Fprintf(w, "  amountToFree = capacity*(100-%d)/100 - available = %d - %d = %d\n", p.Policy.LowThresholdPercent, p.TargetBytes, p.AvailableBytes, p.AmountToFree)
	}

	// Max-age removals.
	if len(p.MaxAgeRemovals) > 0 {
		fmt.Fprintf(w, "\nmax-age removals first (imageMaximumGCAge %s, lastUsed older than that; not counted toward amountToFree):\n", p.Policy.MaxAge)
		gcCandidateTable(w, p.MaxAgeRemovals, exact, func(gc.Candidate) string { return "remove (age)" })
	}

	// Candidates.
	fmt.Fprintf(w, "\ncandidates in the kubelet's order (lastUsed, then firstDetected; * = assumed, see below):\n")
	if len(p.Candidates) == 0 {
		fmt.Fprintf(w, "  none: no image is eligible\n")
	} else {
		gcCandidateTable(w, p.Candidates, exact, func(c gc.Candidate) string {
			switch {
			case c.WouldRemove:
				return "remove"
			case p.GCRuns:
				return "keep (target reached)"
			case p.Verdict == gc.VerdictInvalidCapacity:
				return "keep (GC fails)"
			}
			return "keep (GC does not run)"
		})
	}

	// Skipped.
	fmt.Fprintf(w, "\nskipped:\n")
	if len(p.Skipped) == 0 {
		fmt.Fprintf(w, "  none\n")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  IMAGE\tID\tSIZE\tREASON\tDETAIL")
		for _, s := range p.Skipped {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.Name(), gcShortID(s.ID), gcSize(s.Size, exact), s.Reason, s.Detail)
		}
		tw.Flush()
	}

	// Verdict.
	fmt.Fprintln(w)
	removed := 0
	for _, c := range p.Candidates {
		if c.WouldRemove {
			removed++
		}
	}
	switch p.Verdict {
	case gc.VerdictReachesTarget:
		prefix := "verdict: reaches the target"
		if p.Forced && !p.HighCrossed {
			prefix = "verdict (forced): would reach the target"
		}
		fmt.Fprintf(w, "%s: removing %d image(s) frees %d bytes (CRI sizes) ≥ %d\n", prefix, removed, p.FreedBytes, p.AmountToFree)
	case gc.VerdictTargetNotReachable:
		prefix := "verdict: FreeDiskSpaceFailed"
		if p.Forced && !p.HighCrossed {
			prefix = "verdict (forced): the target is not reachable"
		}
		fmt.Fprintf(w, "%s: would free only %d of %d bytes (all %d eligible image(s))\n", prefix, p.FreedBytes, p.AmountToFree, removed)
		fmt.Fprintf(w, "  kubelet: %s\n", p.KubeletMessage)
	case gc.VerdictBelowThreshold:
		fmt.Fprintf(w, "verdict: nothing to do: usage is below the high threshold\n")
	case gc.VerdictDisabled:
		fmt.Fprintf(w, "verdict: image GC is disabled\n")
	case gc.VerdictInvalidCapacity:
		fmt.Fprintf(w, "verdict: %s: %s\n", p.KubeletEvent, p.KubeletMessage)
	}
	if p.MaxAgeFreedBytes > 0 {
		fmt.Fprintf(w, "  plus %d max-age removal(s) freeing %d bytes\n", len(p.MaxAgeRemovals), p.MaxAgeFreedBytes)
	}

	if a := r.Applied; a != nil {
		fmt.Fprintf(w, "\napplied: %d RemoveImage call(s); freed %d bytes for space", len(a.Removals), a.FreedBytes)
		if a.MaxAgeFreedBytes > 0 {
			fmt.Fprintf(w, " and %d bytes for age", a.MaxAgeFreedBytes)
		}
		switch {
		case a.Interrupted:
			fmt.Fprintf(w, "; interrupted before the end\n")
		case p.GCRuns && a.ReachedTarget:
			fmt.Fprintf(w, "; target %d reached\n", a.AmountToFree)
		case p.GCRuns:
			fmt.Fprintf(w, "; target %d not reached\n", a.AmountToFree)
		default:
			fmt.Fprintln(w)
		}
		for _, rm := range a.Removals {
			fmt.Fprintf(w, "  %s\n", GCRemoval(rm))
		}
		for _, e := range a.Errors {
			fmt.Fprintf(w, "  error: %s\n", e)
		}
	}

	for _, sec := range []struct {
		title string
		lines []string
	}{{"errors", p.Errors}, {"notes", p.Notes}, {"assumptions", p.Assumptions}} {
		if len(sec.lines) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", sec.title)
		for _, l := range sec.lines {
			fmt.Fprintf(w, "  - %s\n", l)
		}
	}
	return nil
}

func gcCandidateTable(w io.Writer, cs []gc.Candidate, exact bool, action func(gc.Candidate) string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tIMAGE\tID\tSIZE\tFREED (CUMULATIVE)\tFIRST DETECTED\tLAST USED\tTIE\tACTION")
	for _, c := range cs {
		freed, tie := "-", "-"
		if c.WouldRemove {
			freed = gcSize(uint64(c.CumulativeFreedBytes), exact)
		}
		if c.TieGroup > 0 {
			tie = strconv.Itoa(c.TieGroup)
		}
		mark := ""
		if c.Assumed != "" {
			mark = "*"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Order, c.Name(), gcShortID(c.ID), gcSize(c.Size, exact), freed,
			gcStamp(c.FirstDetected)+mark, gcLastUsed(c.LastUsed)+mark, tie, action(c))
	}
	tw.Flush()
}

func gcSize(n uint64, exact bool) string {
	if exact {
		return strconv.FormatUint(n, 10)
	}
	return HumanBytes(n)
}

func gcStamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func gcLastUsed(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return gcStamp(t)
}

// gcShortID is algorithm:first 12 hex digits, as crictl images shows IDs.
func gcShortID(id string) string {
	algo, hex, ok := strings.Cut(id, ":")
	if !ok {
		algo, hex = "", id
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if algo == "" {
		return hex
	}
	return algo + ":" + hex
}

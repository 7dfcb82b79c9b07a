package output

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/imagefs/imagefs/pkg/analyze/pressure"
)

// PressureOptions tune the pressure renderers.
type PressureOptions struct {
	Format     string
	ExactBytes bool
	Color      bool
	// Rates adds the rate and time-to-pressure columns (--watch).
	Rates bool
}

// Pressure renders an eviction-signal report.
func Pressure(w io.Writer, r *pressure.Report, o PressureOptions) error {
	return render(w, o.Format, r, func() error { return pressureTable(w, r, o) })
}

func amount(v *uint64, unit string, exact bool) string {
	if unit == "inodes" {
		return Count(v)
	}
	return Bytes(v, exact)
}

func signedAmount(v int64, unit string, exact bool) string {
	neg := v < 0
	if neg {
		v = -v
	}
	u := uint64(v)
	s := amount(&u, unit, exact)
	if neg {
		return "-" + s
	}
	return s
}

func thresholdCell(t *pressure.Threshold, unit string, exact bool) string {
	if t == nil {
		return "-"
	}
	r := t.Resolved
	s := fmt.Sprintf("<%s (%s)", t.Configured, signedAmount(r, unit, exact))
	if t.Kind == "soft" {
		s += " for " + t.GracePeriod
	}
	return s
}

func pressureTable(w io.Writer, r *pressure.Report, o PressureOptions) error {
	verdict := "no"
	if r.DiskPressure {
		verdict = "YES"
		if o.Color {
			verdict = "\x1b[1;31mYES\x1b[0m"
		}
	}
	fmt.Fprintf(w, "node %s: DiskPressure %s\n", r.NodeName, verdict)
	fmt.Fprintf(w, "layout: %s\n", r.Layout)
	if r.LayoutError != "" {
		fmt.Fprintf(w, "layout error: %s\n", r.LayoutError)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "SIGNAL\tOBSERVED\tCAPACITY\tHARD THRESHOLD\tSOFT THRESHOLD\tHEADROOM\tMET\tSOURCE"
	if o.Rates {
		header += "\tUSE/S\tTIME TO PRESSURE"
	}
	fmt.Fprintln(tw, header)
	for _, s := range r.Signals {
		headroom := "-"
		if s.Headroom != nil && s.Threshold != nil {
			headroom = fmt.Sprintf("%s (%.1f%%)", signedAmount(*s.Headroom, s.Unit, o.ExactBytes), s.Threshold.HeadroomPercent)
		}
		met := "no"
		if s.Met {
			met = "MET"
		}
		if s.Missing != "" {
			met = "n/a"
		}
		src := s.Source
		if src == "" {
			src = "-"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", s.Signal, amount(s.Observed, s.Unit, o.ExactBytes), amount(s.Capacity, s.Unit, o.ExactBytes),
			thresholdCell(s.Threshold, s.Unit, o.ExactBytes), thresholdCell(s.Soft, s.Unit, o.ExactBytes), headroom, met, src)
		if o.Rates {
			rate, ttp := "-", "-"
			if s.RatePerSecond != nil {
				rate = fmt.Sprintf("%.0f", *s.RatePerSecond)
			}
			if s.TimeToPressure != "" {
				ttp = s.TimeToPressure
			}
			line += "\t" + rate + "\t" + ttp
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if r.FirstToTrip != "" {
		fmt.Fprintf(w, "first to trip: %s (least headroom relative to capacity)\n", r.FirstToTrip)
	}
	shown := map[string]bool{}
	for _, s := range r.Signals {
		if !(s.Met || s.Signal == r.FirstToTrip) {
			continue
		}
		key := strings.Join(s.Reclaim, "|")
		if shown[key] {
			continue
		}
		shown[key] = true
		fmt.Fprintf(w, "when %s is met the kubelet will:\n", s.Signal)
		for i, a := range s.Reclaim {
			fmt.Fprintf(w, "  %d. %s\n", i+1, a)
		}
	}
	for _, s := range r.Signals {
		if s.Missing != "" {
			fmt.Fprintf(w, "note: %s: %s\n", s.Signal, s.Missing)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(r.Settings.UnknownFields) > 0 {
		fmt.Fprintf(w, "note: the kubelet config has fields the kubelet does not know (ignored): %s\n", strings.Join(r.Settings.UnknownFields, ", "))
	}
	return nil
}

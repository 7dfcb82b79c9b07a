package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/imagefs/imagefs/pkg/analyze/doctor"
)

// DoctorOptions tune the doctor renderers.
type DoctorOptions struct {
	Format string
	Color  bool
}

// Doctor renders findings: a checklist, or JSON/YAML for automation.
func Doctor(w io.Writer, r *doctor.Report, o DoctorOptions) error {
	return render(w, o.Format, r, func() error { return doctorText(w, r, o.Color) })
}

var severityColor = map[doctor.Severity]string{doctor.OK: "\x1b[32m", doctor.Warn: "\x1b[33m", doctor.Fail: "\x1b[31m"}

func badge(s doctor.Severity, color bool) string {
	b := fmt.Sprintf("[%-4s]", strings.ToUpper(string(s)))
	if color {
		return severityColor[s] + b + "\x1b[0m"
	}
	return b
}

func doctorText(w io.Writer, r *doctor.Report, color bool) error {
	fmt.Fprintf(w, "imagefs doctor: node %s (kubelet v1.37 default thresholds)\n\n", r.NodeName)
	for _, f := range r.Findings {
		fmt.Fprintf(w, "%s %s: %s\n", badge(f.Severity, color), f.Check, f.Summary)
		for _, e := range f.Evidence {
			fmt.Fprintf(w, "       - %s\n", e)
		}
		if f.Fix != "" && f.Severity != doctor.OK {
			fmt.Fprintf(w, "       fix: %s\n", f.Fix)
		}
	}
	fmt.Fprintf(w, "\nworst finding: %s\n", r.Worst)
	return nil
}

// Package output renders imagefs results as tables, JSON and YAML. It
// computes nothing: every number comes from the stats it is given.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"sigs.k8s.io/yaml"

	"github.com/imagefs/imagefs/pkg/analyze/pressure"
)

// Formats every command accepts with -o.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// ErrUnknownFormat is returned for an -o value no renderer handles.
type ErrUnknownFormat struct {
	Format  string
	Allowed []string
}

func (e ErrUnknownFormat) Error() string {
	return fmt.Sprintf("unknown output format %q (want one of %v)", e.Format, e.Allowed)
}

// render writes v as JSON or YAML, or calls table for the table format
// (the default): the dispatch every renderer shares.
func render(w io.Writer, format string, v any, table func() error) error {
	switch format {
	case "", FormatTable:
		return table()
	case FormatJSON:
		return JSON(w, v)
	case FormatYAML:
		return YAML(w, v)
	}
	return ErrUnknownFormat{Format: format, Allowed: []string{FormatTable, FormatJSON, FormatYAML}}
}

// JSON writes v as indented JSON with a trailing newline.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// YAML writes v as YAML using its JSON field names, as kubectl does.
func YAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Bytes formats a byte count with binary units (KiB, MiB, …), one decimal,
// or exactly when exact is set. nil is "-": never show 0 for unknown.
func Bytes(v *uint64, exact bool) string {
	if v == nil {
		return "-"
	}
	if exact {
		return strconv.FormatUint(*v, 10)
	}
	return HumanBytes(*v)
}

// HumanBytes formats n with binary units.
func HumanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Count formats an inode count; nil is "-".
func Count(v *uint64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatUint(*v, 10)
}

// UsePercent is the kubelet image GC's usage figure,
// 100 - floor(available*100/capacity); "-" when either is unknown or
// capacity is 0.
func UsePercent(available, capacity *uint64) string {
	if available == nil {
		return "-"
	}
	usage, ok := pressure.ImageGCUsage(available, capacity)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%d%%", usage)
}

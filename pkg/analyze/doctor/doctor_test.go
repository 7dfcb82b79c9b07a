package doctor_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagefs/imagefs/internal/capture"
	"github.com/imagefs/imagefs/pkg/analyze/doctor"
)

// The runtime-side failures containerd never produces on its own are
// provoked by editing a capture taken from the harness; the integration
// tests provoke the rest on a real runtime.
func TestRuntimeSideFindings(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(string) string
		check    string
		severity doctor.Severity
		phrase   string
	}{
		{"as captured", nil, "split-imagefs", doctor.OK, "no separate container filesystem"},
		{"runtime returns no image filesystem",
			func(s string) string {
				return `{"imageFilesystems":[],"containerFilesystems":[]}`
			}, "runtime-imagefs", doctor.Fail, "imageFs information is unavailable"},
		{"runtime reports a split container filesystem the kubelet ignores",
			func(s string) string {
				var m map[string]any
				if err := json.Unmarshal([]byte(s), &m); err != nil {
					panic(err)
				}
				m["containerFilesystems"] = []any{map[string]any{"timestamp": "1", "fsId": map[string]any{"mountpoint": "/var/lib/containers/storage/overlay-containers"}, "usedBytes": map[string]any{"value": "1"}}}
				b, _ := json.Marshal(m)
				return string(b)
			}, "split-imagefs", doctor.Warn, "ignores container_filesystems"},
		{"runtime sends no fsId: soft omission",
			func(s string) string {
				return `{"imageFilesystems":[{"timestamp":"1","usedBytes":{"value":"5"}}]}`
			}, "imagefs-capacity", doctor.Fail, "fsID is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := capture.Load(filepath.Join("..", "..", "output", "testdata", "capture", "containerd-2.4-ext4.json"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				c.ImageFsInfo = []byte(tt.edit(string(c.ImageFsInfo)))
			}
			res, table, err := c.Replay()
			if err != nil {
				t.Fatal(err)
			}
			r := doctor.Run(doctor.Inputs{Result: res, Table: table, Usage: c.Usage})
			for _, f := range r.Findings {
				if f.Check != tt.check {
					continue
				}
				all := f.Summary + " " + strings.Join(f.Evidence, " ")
				if f.Severity != tt.severity || !strings.Contains(all, tt.phrase) {
					t.Errorf("%s = %s %q, want %s mentioning %q", f.Check, f.Severity, all, tt.severity, tt.phrase)
				}
				return
			}
			t.Fatalf("no %s finding", tt.check)
		})
	}
}

// The kubelet's threshold arithmetic: float32 percentages widened to
// float64, truncated, compared strictly.
func TestDefaultThresholds(t *testing.T) {
	if d := doctor.DefaultThresholds; d.ImagefsAvailable != 0.15 || d.NodefsAvailable != 0.10 || d.ImagefsInodesFree != 0.05 || d.NodefsInodesFree != 0.05 || d.ImageGCHighPercent != 85 || d.ImageGCLowPercent != 80 {
		t.Fatalf("defaults %+v differ from kubelet v1.37", d)
	}
}

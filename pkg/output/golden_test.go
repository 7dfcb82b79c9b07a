package output_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagefs/imagefs/internal/capture"
	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/analyze/explain"
	"github.com/imagefs/imagefs/pkg/output"
)

// Captures were taken from the real-containerd harness
// (test/integration TestCaptureReplaysLiveCollection with
// IMAGEFS_CAPTURE_DIR); they replay stat, statfs, mountinfo and CRI.
var captures = []string{"containerd-2.4-ext4", "containerd-2.4-btrfs"}

func load(t *testing.T, name string, mutate func(*capture.Capture)) *capture.Capture {
	t.Helper()
	c, err := capture.Load(filepath.Join("testdata", "capture", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(c)
	}
	return c
}

// variants of each capture: as taken, and with the runtime reporting a
// mountpoint this mount namespace does not have.
var variants = map[string]func(*capture.Capture){
	"live": nil,
	"mountpoint-missing": func(c *capture.Capture) {
		c.ImageFsInfo = []byte(strings.ReplaceAll(string(c.ImageFsInfo), "/io.containerd.snapshotter.v1.overlayfs", "/elsewhere/io.containerd.snapshotter.v1.overlayfs"))
	},
}

func TestGolden(t *testing.T) {
	for _, name := range captures {
		for variant, mutate := range variants {
			t.Run(name+"/"+variant, func(t *testing.T) {
				c := load(t, name, mutate)
				res, table, err := c.Replay()
				if err != nil {
					t.Fatal(err)
				}
				rep, err := explain.Build(res, table, explain.Options{Usage: c.Usage, Now: func() time.Time { return c.CollectedAt }})
				if err != nil {
					t.Fatal(err)
				}
				doc := doctor.Run(doctor.Inputs{Result: res, Table: table, Usage: c.Usage})
				for _, r := range []struct {
					file   string
					render func(*bytes.Buffer) error
				}{
					{"stats.txt", func(b *bytes.Buffer) error { return output.Stats(b, res, output.StatsOptions{}) }},
					{"stats-bytes.txt", func(b *bytes.Buffer) error { return output.Stats(b, res, output.StatsOptions{ExactBytes: true}) }},
					{"stats.json", func(b *bytes.Buffer) error {
						return output.Stats(b, res, output.StatsOptions{Format: output.FormatJSON})
					}},
					{"stats.yaml", func(b *bytes.Buffer) error {
						return output.Stats(b, res, output.StatsOptions{Format: output.FormatYAML})
					}},
					{"explain.txt", func(b *bytes.Buffer) error { return output.Explain(b, rep, output.ExplainOptions{}) }},
					{"explain-color.txt", func(b *bytes.Buffer) error { return output.Explain(b, rep, output.ExplainOptions{Color: true}) }},
					{"explain.md", func(b *bytes.Buffer) error {
						return output.Explain(b, rep, output.ExplainOptions{Format: output.FormatMarkdown})
					}},
					{"explain.json", func(b *bytes.Buffer) error {
						return output.Explain(b, rep, output.ExplainOptions{Format: output.FormatJSON})
					}},
					{"doctor.txt", func(b *bytes.Buffer) error { return output.Doctor(b, doc, output.DoctorOptions{}) }},
					{"doctor.json", func(b *bytes.Buffer) error {
						return output.Doctor(b, doc, output.DoctorOptions{Format: output.FormatJSON})
					}},
				} {
					t.Run(r.file, func(t *testing.T) {
						var b bytes.Buffer
						if err := r.render(&b); err != nil {
							t.Fatal(err)
						}
						testutil.Golden(t, b.Bytes())
					})
				}
			})
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	c := load(t, captures[0], nil)
	res, _, err := c.Replay()
	if err != nil {
		t.Fatal(err)
	}
	if err := output.Stats(&bytes.Buffer{}, res, output.StatsOptions{Format: "xml"}); err == nil {
		t.Fatal("no error for -o xml")
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 12558336: "12.0 MiB", 510873600: "487.2 MiB", 1 << 40: "1.0 TiB"} {
		if got := output.HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	a, c := uint64(16), uint64(100)
	if got := output.UsePercent(&a, &c); got != "84%" {
		t.Errorf("UsePercent(16/100) = %q, want 84%% (kubelet: 100 - floor(16*100/100))", got)
	}
	a = 15
	if got := output.UsePercent(&a, &c); got != "85%" {
		t.Errorf("UsePercent(15/100) = %q, want 85%%", got)
	}
	if got := output.UsePercent(nil, &c); got != "-" {
		t.Errorf("UsePercent(nil) = %q, want -", got)
	}
}

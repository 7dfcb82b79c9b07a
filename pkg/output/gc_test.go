package output_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/analyze/gc"
	"github.com/imagefs/imagefs/pkg/output"
)

var (
	gcStart = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	gcNow   = time.Date(2026, 12, 4, 15, 20, 31, 0, time.UTC)
)

func gcTimes() gc.Times {
	return gc.Times{
		KubeletStart: gcStart, KubeletStartSource: "kubelet pid 812, starttime in /proc/812/stat",
		FirstDetected: gcStart, FirstDetectedSource: "the kubelet's start, when its first detection runs",
	}
}

// gcImages is a small node: an app in use, the pinned pause image, an
// image pulled a minute ago, and five unused images, two of them tied.
func gcImages() []gc.Image {
	t := gcTimes()
	in := func(id, tag string, size uint64) gc.Image {
		return gc.Image{ID: id, Tags: []string{tag}, Size: size, FirstDetected: t.FirstDetected,
			Assumed: "firstDetected = kubelet start; lastUsed = never (not in use now)"}
	}
	app := in("sha256:a1b2c3d4e5f60718293a4b5c6d7e8f90", "registry.example.com/shop/app:v2", 187_000_000)
	app.InUse, app.UsedBy, app.LastUsed = true, []string{"shop/app-7d9f/app (running)"}, gcNow
	pause := in("sha256:0f0f0f0f0f0f1111222233334444", "registry.k8s.io/pause:3.10", 320_000)
	pause.Pinned = true
	fresh := in("sha256:feedfeedfeed00000000", "registry.example.com/shop/app:v3", 190_000_000)
	fresh.FirstDetected = gcNow.Add(-time.Minute)
	old := in("sha256:5555aaaa5555aaaa", "registry.example.com/shop/app:v1", 185_000_000)
	old.LastUsed = gcNow.Add(-90 * time.Minute)
	old.Assumed = "lastUsed from a test fixture"
	noTag := in("sha256:9999888877776666", "", 12_000_000)
	noTag.Tags, noTag.Digests = nil, []string{"registry.example.com/tools/debug@sha256:abcdef0123456789"}
	return []gc.Image{app, pause, fresh, old, noTag,
		in("sha256:7777bbbb7777bbbb", "docker.io/library/nginx:1.27", 72_000_000),
		in("sha256:3333cccc3333cccc", "docker.io/library/redis:7", 45_000_000),
	}
}

func gcReport(t *testing.T, capacity, available *uint64, p gc.Policy, o gc.Options) *gc.Report {
	t.Helper()
	if o.BeganGC.IsZero() {
		o.BeganGC = gcStart
	}
	plan, err := gc.Simulate(capacity, available, gcImages(), p, gcNow, o)
	if err != nil && !errors.Is(err, gc.ErrInvalidCapacity) {
		t.Fatal(err)
	}
	plan.Assumptions = append(plan.Assumptions, gcTimes().Assumptions(gcNow)...)
	return &gc.Report{
		NodeName: "node-1",
		Runtime:  "containerd v2.4.2 at unix:///run/containerd/containerd.sock (autodetected)",
		ImageFs:  gc.ImageFs{Dir: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs", Device: "/dev/sdb1", FSType: "xfs"},
		Times:    gcTimes(),
		Plan:     plan,
	}
}

func u64p(v uint64) *uint64 { return &v }

func gcPolicy(high, low int, minAge, maxAge time.Duration) gc.Policy {
	return gc.Policy{HighThresholdPercent: high, LowThresholdPercent: low, MinAge: minAge, MaxAge: maxAge}
}

const gcCapacity = 20_000_000_000 // 20 GB: the low threshold (80%) leaves 4 000 000 000 available

func TestGCGolden(t *testing.T) {
	def := gc.DefaultPolicy()
	for _, tc := range []struct {
		name      string
		available *uint64
		capacity  *uint64
		policy    gc.Policy
		opts      gc.Options
		formats   []string
		exact     bool
		apply     bool
	}{
		// usage 100 - floor(3 750 000 000*100/2e10 = 18.75) = 82: below 85.
		{name: "below-threshold", capacity: u64p(gcCapacity), available: u64p(3_750_000_000), policy: def, formats: []string{"txt"}},
		// Forced on the same node: amountToFree = 4e9 - 3.75e9 = 250 000 000.
		{name: "forced", capacity: u64p(gcCapacity), available: u64p(3_750_000_000), policy: def, opts: gc.Options{Force: true}, formats: []string{"txt"}},
		// usage 100 - floor(15.9) = 85; amountToFree = 4e9 - 3.18e9 = 820 000 000 > everything eligible.
		{name: "not-reachable", capacity: u64p(gcCapacity), available: u64p(3_180_000_000), policy: def, formats: []string{"txt", "json"}},
		// usage 100 - floor(19.6) = 81 ≥ 81; amountToFree = 4e9 - 3.92e9 = 80 000 000: two tied images, stop inside the tie.
		{name: "reaches-target", capacity: u64p(gcCapacity), available: u64p(3_920_000_000), policy: gcPolicy(81, 80, 2*time.Minute, 0), formats: []string{"txt", "json", "yaml"}, exact: true},
		// Max age 3h: the kubelet has run 6h20m; never-used images go first.
		{name: "max-age", capacity: u64p(gcCapacity), available: u64p(3_920_000_000), policy: gcPolicy(81, 80, 2*time.Minute, 3*time.Hour), formats: []string{"txt"}},
		{name: "invalid-capacity", capacity: nil, available: nil, policy: def, formats: []string{"txt", "json"}},
		{name: "applied", capacity: u64p(gcCapacity), available: u64p(3_920_000_000), policy: gcPolicy(81, 80, 2*time.Minute, 0), formats: []string{"txt", "json"}, apply: true},
	} {
		for _, format := range tc.formats {
			t.Run(tc.name+"."+format, func(t *testing.T) {
				r := gcReport(t, tc.capacity, tc.available, tc.policy, tc.opts)
				if tc.apply {
					r.Applied = gc.Apply(context.Background(), r.Plan, func(_ context.Context, id string) error {
						if id == "sha256:3333cccc3333cccc" {
							return errors.New("rpc error: code = Unknown desc = image is being pulled")
						}
						return nil
					}, nil)
				}
				f := map[string]string{"txt": output.FormatTable, "json": output.FormatJSON, "yaml": output.FormatYAML}[format]
				var b bytes.Buffer
				if err := output.GC(&b, r, output.GCOptions{Format: f, ExactBytes: tc.exact}); err != nil {
					t.Fatal(err)
				}
				testutil.Golden(t, b.Bytes())
			})
		}
	}
}

func TestGCUnknownFormat(t *testing.T) {
	r := gcReport(t, u64p(gcCapacity), u64p(1), gc.DefaultPolicy(), gc.Options{})
	var e output.ErrUnknownFormat
	if err := output.GC(&bytes.Buffer{}, r, output.GCOptions{Format: "xml"}); !errors.As(err, &e) {
		t.Errorf("xml: %v", err)
	}
}

func TestGCRemovalLine(t *testing.T) {
	for _, tc := range []struct {
		r    gc.Removal
		want string
	}{
		{gc.Removal{ID: "sha256:0123456789abcdef", Name: "a:v1", Size: 10, Reason: gc.ReasonSpace, CumulativeFreedBytes: 30},
			"removed a:v1 (sha256:0123456789ab, 10 bytes, space): 30 bytes freed so far"},
		{gc.Removal{ID: "abc", Name: "b", Size: 5, Reason: gc.ReasonAge, CumulativeFreedBytes: 0, Error: "boom"},
			"failed to remove b (abc, 5 bytes, age): boom; 0 bytes freed so far"},
	} {
		if got := output.GCRemoval(tc.r); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

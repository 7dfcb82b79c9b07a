package exporter_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protojson"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/internal/capture"
	"github.com/imagefs/imagefs/internal/testutil"
	"github.com/imagefs/imagefs/pkg/exporter"
	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

// Captures of the real-containerd harness (copies of
// pkg/output/testdata/capture, taken by test/integration
// TestCaptureReplaysLiveCollection with IMAGEFS_CAPTURE_DIR).
var captures = []string{"containerd-2.4-ext4", "containerd-2.4-btrfs"}

func loadCapture(t testing.TB, name string) *capture.Capture {
	t.Helper()
	c, err := capture.Load(filepath.Join("testdata", "capture", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// statfsPath is the one partition mountpoint a capture took statfs of.
func statfsPath(t testing.TB, c *capture.Capture) string {
	t.Helper()
	if len(c.System.Statfs_) != 1 {
		t.Fatalf("capture has %d statfs paths, want 1", len(c.System.Statfs_))
	}
	for p := range c.System.Statfs_ {
		return p
	}
	return ""
}

// variants of each capture for the golden output.
var variants = []struct {
	name   string
	mutate func(testing.TB, *capture.Capture)
}{
	{"live", nil},
	// 9.6% available: imagefs.available (15%) and nodefs.available (10%)
	// met, image GC usage 91% >= 85%.
	{"nearly-full", func(t testing.TB, c *capture.Capture) {
		p := statfsPath(t, c)
		s := c.System.Statfs_[p]
		reserved := s.Bfree - s.Bavail
		s.Bavail = s.Blocks * 96 / 1000
		s.Bfree = s.Bavail + reserved
		c.System.Statfs_[p] = s
	}},
	// The runtime reports a mountpoint this mount namespace lacks: the
	// kubelet fails the Summary, imageFs has no capacity.
	{"mountpoint-missing", func(_ testing.TB, c *capture.Capture) {
		c.ImageFsInfo = []byte(strings.ReplaceAll(string(c.ImageFsInfo), "/io.containerd.snapshotter.v1.overlayfs", "/elsewhere/io.containerd.snapshotter.v1.overlayfs"))
	}},
	// statfs of the partition times out: cadvisor drops it from its sample.
	{"statfs-hung", func(t testing.TB, c *capture.Capture) {
		c.System.Hang = map[string]bool{statfsPath(t, c): true}
	}},
}

// fixedClock returns t0 and advances by step on every call, so durations
// in the golden output are deterministic.
func fixedClock(t0 time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n := now
		now = now.Add(step)
		return n
	}
}

// stuckGuard returns a guard with one path stuck and one answering.
func stuckGuard(t testing.TB) *exporter.StuckGuard {
	t.Helper()
	sys := newBlockingSystem(&fakeStatfs{})
	sys.block("/mnt/dead-nfs")
	t.Cleanup(sys.releaseAll)
	g := exporter.NewStuckGuard(sys, 10*time.Millisecond, nil)
	if _, err := g.Statfs("/", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Statfs("/mnt/dead-nfs", 10*time.Millisecond); !errors.Is(err, fsinfo.ErrStatfsTimeout) {
		t.Fatalf("statfs of a hung mount: %v, want ErrStatfsTimeout", err)
	}
	return g
}

// The collector's text output for each capture and variant, with the
// kubelet defaults, linted by promtool.
func TestGolden(t *testing.T) {
	for _, name := range captures {
		for _, v := range variants {
			t.Run(name+"/"+v.name, func(t *testing.T) {
				c := loadCapture(t, name)
				if v.mutate != nil {
					v.mutate(t, c)
				}
				e := exporter.New(exporter.Options{
					Source:         func(context.Context) (*stats.Result, *fsinfo.MountTable, error) { return c.Replay() },
					Settings:       kubeletconfig.Defaults(),
					SettingsSource: "defaults",
					Guard:          stuckGuard(t),
					Now:            fixedClock(c.CollectedAt, 25*time.Millisecond),
				})
				if err := e.CollectNow(context.Background()); err != nil {
					t.Fatal(err)
				}
				got, err := textOf(e)
				if err != nil {
					t.Fatal(err)
				}
				testutil.Golden(t, got)
				promtoolCheckMetrics(t, got)
			})
		}
	}
}

// textOf gathers c in a pedantic registry and returns the text
// exposition format /metrics serves, only the named families if any.
func textOf(c prometheus.Collector, names ...string) ([]byte, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return gatherText(reg, names...)
}

func gatherText(g prometheus.Gatherer, names ...string) ([]byte, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// promtool returns promtool's path. It skips without promtool, except
// under CI=true, where a missing promtool fails (Debian: apt-get install
// prometheus).
func promtool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	msg := "promtool not found (Debian package prometheus): the metrics are not linted"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// promtoolCheckMetrics is `promtool check metrics < text`: naming, units,
// HELP and TYPE conventions.
func promtoolCheckMetrics(t testing.TB, text []byte) {
	t.Helper()
	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// Every metric the exporter can emit is described once, with the
// imagefs_ prefix, HELP, and a unit suffix where it has a unit.
func TestMetricsList(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range exporter.Metrics() {
		if seen[m.Name] {
			t.Errorf("%s described twice", m.Name)
		}
		seen[m.Name] = true
		if !strings.HasPrefix(m.Name, "imagefs_") {
			t.Errorf("%s lacks the imagefs_ prefix", m.Name)
		}
		if m.Help == "" {
			t.Errorf("%s has no HELP", m.Name)
		}
		if (m.Type == "counter") != strings.HasSuffix(m.Name, "_total") {
			t.Errorf("%s is a %s: counters, and only counters, end in _total", m.Name, m.Type)
		}
		for _, bad := range []string{"percent", "_kb", "_mb", "milliseconds", "_ms"} {
			if strings.Contains(m.Name, bad) {
				t.Errorf("%s: not a base unit (%s)", m.Name, bad)
			}
		}
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(exporter.New(exporter.Options{Source: nil})); err != nil {
		t.Fatal(err)
	}
}

// Without settings there are no eviction or image GC metrics; the
// filesystem metrics are there.
func TestWithoutSettings(t *testing.T) {
	c := loadCapture(t, captures[0])
	e := exporter.New(exporter.Options{Source: func(context.Context) (*stats.Result, *fsinfo.MountTable, error) { return c.Replay() }})
	if err := e.CollectNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := textOf(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"imagefs_eviction_", "imagefs_image_gc_", "imagefs_disk_pressure", "imagefs_kubelet_config_info", "imagefs_mount_stuck"} {
		if bytes.Contains(got, []byte(absent)) {
			t.Errorf("%s emitted without settings/guard", absent)
		}
	}
	if !bytes.Contains(got, []byte(`imagefs_filesystem_capacity_bytes{`)) {
		t.Errorf("no capacity:\n%s", got)
	}
}

func u64(v uint64) *uint64 { return &v }

// ImageGC is the kubelet's image GC arithmetic.
func TestImageGC(t *testing.T) {
	s := kubeletconfig.Defaults() // high 85, low 80
	for _, tc := range []struct {
		name                string
		capacity, available *uint64
		usage               int
		toFree              int64
		ok                  bool
	}{
		{"no capacity", nil, u64(10), 0, 0, false},
		{"zero capacity", u64(0), u64(0), 0, 0, false},
		{"idle", u64(1000), u64(500), 50, 0, true},
		{"just below high", u64(100), u64(16), 84, 0, true},
		{"at high", u64(100), u64(15), 85, 5, true},  // 100*20/100 - 15
		{"floor", u64(1000), u64(159), 85, 41, true}, // 100 - floor(15.9) = 85; 200 - 159
		{"available > capacity", u64(100), u64(150), 0, 0, true},
		{"full", u64(1 << 40), u64(0), 100, (1 << 40) * 20 / 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			usage, toFree, ok := exporter.ImageGC(&statsapi.FsStats{CapacityBytes: tc.capacity, AvailableBytes: tc.available}, s)
			if usage != tc.usage || toFree != tc.toFree || ok != tc.ok {
				t.Errorf("ImageGC = %d%%, %d, %v; want %d%%, %d, %v", usage, toFree, ok, tc.usage, tc.toFree, tc.ok)
			}
		})
	}
}

// readiness: not ready before a good collection, ready after, and not
// ready again once the last good one is 3 intervals old, failures or not.
func TestReady(t *testing.T) {
	c := loadCapture(t, captures[0])
	var (
		mu   sync.Mutex
		now  = c.CollectedAt
		fail error
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := exporter.New(exporter.Options{
		Interval: 10 * time.Second,
		Now:      clock,
		Source: func(context.Context) (*stats.Result, *fsinfo.MountTable, error) {
			if fail != nil {
				return nil, nil, fail
			}
			return c.Replay()
		},
	})
	check := func(want bool, phrases ...string) {
		t.Helper()
		ok, why := e.Ready()
		if ok != want {
			t.Errorf("Ready() = %v (%s), want %v", ok, why, want)
		}
		for _, p := range phrases {
			if !strings.Contains(why, p) {
				t.Errorf("reason %q lacks %q", why, p)
			}
		}
	}
	check(false, "no collection yet")
	fail = exporter.RuntimeError{Err: runtime.ErrUnavailable}
	_ = e.CollectNow(context.Background())
	check(false, "no successful collection yet", "runtime not reachable")
	if e.Snapshot() != nil {
		t.Fatal("snapshot after a failed collection")
	}
	fail = nil
	if err := e.CollectNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(true, "0s ago")
	advance(29 * time.Second)
	fail = errors.New("mount table unreadable")
	_ = e.CollectNow(context.Background())
	check(true, "29s ago", "mount table unreadable")
	if e.Snapshot() == nil {
		t.Fatal("a failed collection dropped the last good snapshot")
	}
	advance(time.Second)
	check(false, "30s ago", "older than 3×interval (30s)")
	fail = nil
	if err := e.CollectNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(true)
}

// runtime_up follows the runtime, collection_success every failure; the
// counters count; a mount table failure leaves runtime_up alone.
func TestCollectionState(t *testing.T) {
	c := loadCapture(t, captures[0])
	var fail error
	e := exporter.New(exporter.Options{Source: func(context.Context) (*stats.Result, *fsinfo.MountTable, error) {
		if fail != nil {
			return nil, nil, fail
		}
		return c.Replay()
	}})
	value := func(name string) float64 {
		t.Helper()
		text, err := textOf(e, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(text), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == name {
				var v float64
				if _, err := fmt.Sscan(f[1], &v); err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		t.Fatalf("%s not emitted:\n%s", name, text)
		return 0
	}
	for i, step := range []struct {
		fail        error
		up, success float64
		total, errs float64
	}{
		{nil, 1, 1, 1, 0},
		{errors.New("mount table"), 1, 0, 2, 1},
		{exporter.RuntimeError{Err: runtime.ErrTimeout}, 0, 0, 3, 2},
		{nil, 1, 1, 4, 2},
	} {
		fail = step.fail
		_ = e.CollectNow(context.Background())
		if got := value("imagefs_runtime_up"); got != step.up {
			t.Errorf("step %d: runtime_up %v, want %v", i, got, step.up)
		}
		if got := value("imagefs_collection_success"); got != step.success {
			t.Errorf("step %d: collection_success %v, want %v", i, got, step.success)
		}
		if got := value("imagefs_collections_total"); got != step.total {
			t.Errorf("step %d: collections_total %v, want %v", i, got, step.total)
		}
		if got := value("imagefs_collection_errors_total"); got != step.errs {
			t.Errorf("step %d: collection_errors_total %v, want %v", i, got, step.errs)
		}
	}
}

// fakeRuntime answers from a capture's CRI responses.
type fakeRuntime struct {
	runtime.Service
	version *criapi.VersionResponse
	info    *criapi.ImageFsInfoResponse
}

func (f *fakeRuntime) Version(context.Context) (*criapi.VersionResponse, error) {
	return f.version, nil
}
func (f *fakeRuntime) ImageFsInfo(context.Context) (*criapi.ImageFsInfoResponse, error) {
	return f.info, nil
}

// liveSource collects a capture's inputs through sys (for instance a
// StuckGuard over a blocking System), with the real clock.
func liveSource(t testing.TB, c *capture.Capture, sys fsinfo.System) exporter.Source {
	t.Helper()
	rt := &fakeRuntime{version: &criapi.VersionResponse{}, info: &criapi.ImageFsInfoResponse{}}
	if err := protojson.Unmarshal(c.Version, rt.version); err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(c.ImageFsInfo, rt.info); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context) (*stats.Result, *fsinfo.MountTable, error) {
		table, err := fsinfo.ParseMountTable(strings.NewReader(c.Mountinfo), "/proc/self/mountinfo", sys)
		if err != nil {
			return nil, nil, err
		}
		res, err := stats.Collect(ctx, stats.Sources{Runtime: rt, Endpoint: c.Endpoint, Mounts: table, System: sys, RootDir: c.RootDir, NodeName: c.NodeName})
		return res, table, err
	}
}

const (
	docBegin = "<!-- BEGIN GENERATED by go test ./pkg/exporter -run TestMetricsDoc -update; do not edit -->\n"
	docEnd   = "<!-- END GENERATED -->\n"
)

// metricsTable renders exporter.Metrics() as the reference table of
// docs/metrics.md.
func metricsTable() string {
	var b strings.Builder
	b.WriteString("| metric | type | labels | help |\n|---|---|---|---|\n")
	for _, m := range exporter.Metrics() {
		labels := "-"
		if len(m.Labels) > 0 {
			labels = "`" + strings.Join(m.Labels, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", m.Name, m.Type, labels, strings.ReplaceAll(m.Help, "|", `\|`))
	}
	return b.String()
}

// docs/metrics.md's reference table is generated from the collectors;
// -update rewrites it.
func TestMetricsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "metrics.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), docBegin)
	_, after, ok2 := strings.Cut(rest, docEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the generated section markers", path)
	}
	want := before + docBegin + metricsTable() + docEnd + after
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(doc) != want {
		t.Errorf("%s is out of date: run go test ./pkg/exporter -run TestMetricsDoc -update", path)
	}
}

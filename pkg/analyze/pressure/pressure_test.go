package pressure_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imagefs/imagefs/internal/capture"
	"github.com/imagefs/imagefs/pkg/analyze/pressure"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/stats"
)

// replay loads a harness capture: ext4 with the kubelet root dir on the
// same filesystem as containerd's root (shared device).
func replay(t *testing.T, name string, edit func(*capture.Capture)) *stats.Result {
	t.Helper()
	c, err := capture.Load(filepath.Join("..", "..", "output", "testdata", "capture", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(c)
	}
	res, _, err := c.Replay()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func settings(t *testing.T, yaml string) *kubeletconfig.Settings {
	t.Helper()
	if yaml == "" {
		return kubeletconfig.Defaults()
	}
	s, err := kubeletconfig.Parse([]byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+yaml), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signal(t *testing.T, r *pressure.Report, name string) pressure.Signal {
	t.Helper()
	for _, s := range r.Signals {
		if s.Signal == name {
			return s
		}
	}
	t.Fatalf("no signal %s", name)
	return pressure.Signal{}
}

// The capture's ext4: capacity 510873600 bytes, available 451055616 bytes
// (see its stats golden); thresholds below are derived by hand from that.
func TestEvaluate(t *testing.T) {
	res := replay(t, "containerd-2.4-ext4", nil)
	img := res.Summary.Node.Runtime.ImageFs
	capacity, avail := int64(*img.CapacityBytes), int64(*img.AvailableBytes)
	tests := []struct {
		name     string
		yaml     string
		signal   string
		resolved int64
		met      bool
		pressure bool
		soft     bool
	}{
		{name: "default 15%, shared disk", signal: "imagefs.available", resolved: int64(float64(capacity) * float64(float32(0.15)))},
		{name: "containerfs copies nodefs on a shared disk", signal: "containerfs.available", resolved: int64(float64(capacity) * float64(float32(0.10)))},
		{name: "quantity just above available: met", yaml: "evictionHard: {imagefs.available: \"" + itoa(avail+1) + "\"}", signal: "imagefs.available", resolved: avail + 1, met: true, pressure: true},
		{name: "quantity equal to available: not met (strict)", yaml: "evictionHard: {imagefs.available: \"" + itoa(avail) + "\"}", signal: "imagefs.available", resolved: avail},
		{name: "soft threshold met sets DiskPressure before its grace period", yaml: "evictionHard: {}\nevictionSoft: {nodefs.available: \"99%\"}\nevictionSoftGracePeriod: {nodefs.available: 1h}", signal: "nodefs.available", soft: true, resolved: int64(float64(capacity) * float64(float32(0.99))), met: true, pressure: true},
		{name: "evictionHard set without merge drops the defaults", yaml: "evictionHard: {memory.available: 100Mi}", signal: "imagefs.available", resolved: -1},
		{name: "100% ignored", yaml: "evictionHard: {imagefs.available: \"100%\"}", signal: "imagefs.available", resolved: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := pressure.Evaluate(res, settings(t, tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			s := signal(t, r, tt.signal)
			th := s.Threshold
			if tt.soft {
				th = s.Soft
			}
			if tt.resolved < 0 {
				if th != nil {
					t.Fatalf("threshold %+v, want none", th)
				}
				return
			}
			if th == nil || th.Resolved != tt.resolved || th.Met != tt.met || s.Met != tt.met || r.DiskPressure != tt.pressure {
				t.Fatalf("threshold %+v met %v pressure %v, want resolved %d met %v pressure %v", th, s.Met, r.DiskPressure, tt.resolved, tt.met, tt.pressure)
			}
			if !tt.soft && th.Headroom != avail-tt.resolved && strings.HasPrefix(tt.signal, "imagefs") {
				t.Errorf("headroom %d, want %d", th.Headroom, avail-tt.resolved)
			}
		})
	}
}

func TestLayoutAndReclaim(t *testing.T) {
	r, err := pressure.Evaluate(replay(t, "containerd-2.4-ext4", nil), kubeletconfig.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if r.DedicatedImageFs == nil || *r.DedicatedImageFs {
		t.Fatalf("dedicated = %v, want false: the capture's kubelet root dir is on the image filesystem", r.DedicatedImageFs)
	}
	if got := signal(t, r, "nodefs.available").Reclaim; len(got) != 3 || !strings.Contains(got[0], "containers") || !strings.Contains(got[1], "image") {
		t.Errorf("shared disk nodefs reclaim = %q, want containers, images, eviction", got)
	}
	if r.FirstToTrip != "imagefs.available" {
		t.Errorf("first to trip = %q, want imagefs.available (15%% above 10%% on one disk)", r.FirstToTrip)
	}
	// A user-set containerfs threshold is replaced, and said so.
	r, err = pressure.Evaluate(replay(t, "containerd-2.4-ext4", nil), settings(t, "mergeDefaultEvictionSettings: true\nevictionHard: {containerfs.available: \"50%\"}"))
	if err != nil {
		t.Fatal(err)
	}
	if c := signal(t, r, "containerfs.available"); c.Threshold.Configured != "10%" || !strings.Contains(strings.Join(r.Notes, " "), "is ignored") {
		t.Errorf("containerfs threshold %+v notes %q", c.Threshold, r.Notes)
	}
}

// btrfs reports zero inodes: the inode signals resolve to 0 and never trip.
func TestBtrfsInodes(t *testing.T) {
	r, err := pressure.Evaluate(replay(t, "containerd-2.4-btrfs", nil), kubeletconfig.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	s := signal(t, r, "imagefs.inodesFree")
	if s.Observed == nil || *s.Observed != 0 || s.Threshold.Resolved != 0 || s.Met {
		t.Fatalf("btrfs imagefs.inodesFree = %+v", s)
	}
}

// An unresolvable imagefs makes HasDedicatedImageFs fail: no signal is
// evaluated at all.
func TestLayoutError(t *testing.T) {
	res := replay(t, "containerd-2.4-ext4", func(c *capture.Capture) {
		c.ImageFsInfo = []byte(strings.ReplaceAll(string(c.ImageFsInfo), "/io.containerd.snapshotter.v1.overlayfs", "/gone"))
	})
	r, err := pressure.Evaluate(res, settings(t, "evictionHard: {nodefs.available: \"99%\"}"))
	if err != nil {
		t.Fatal(err)
	}
	if r.LayoutError == "" || r.DiskPressure {
		t.Fatalf("layout error %q pressure %v, want an error and no DiskPressure", r.LayoutError, r.DiskPressure)
	}
	if s := signal(t, r, "imagefs.available"); s.Missing == "" {
		t.Errorf("imagefs.available has an observation without capacity: %+v", s)
	}
}

func TestRates(t *testing.T) {
	res := replay(t, "containerd-2.4-ext4", nil)
	prev, _ := pressure.Evaluate(res, kubeletconfig.Defaults())
	res2 := replay(t, "containerd-2.4-ext4", nil)
	*res2.Summary.Node.Runtime.ImageFs.AvailableBytes -= 1000 * 10
	res2.CollectedAt = res.CollectedAt.Add(10e9)
	cur, _ := pressure.Evaluate(res2, kubeletconfig.Defaults())
	cur.AddRates(prev)
	s := signal(t, cur, "imagefs.available")
	if s.RatePerSecond == nil || *s.RatePerSecond != 1000 || s.TimeToPressure == "" || s.TimeToPressure == "now" {
		t.Fatalf("rate %v ttp %q", s.RatePerSecond, s.TimeToPressure)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

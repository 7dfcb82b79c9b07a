package pressure_test

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/analyze/pressure"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
)

func u64(v uint64) *uint64 { return &v }

func TestResolveThreshold(t *testing.T) {
	q := resource.MustParse("1Gi")
	for _, tt := range []struct {
		name     string
		v        kubeletconfig.Value
		capacity uint64
		want     int64
	}{
		// float32(0.1) widened: 0.100000001490116…, truncated.
		{"10% of 1e12", kubeletconfig.Value{Percentage: 0.1}, 1_000_000_000_000, 100_000_001_490},
		{"15% of 100Gi", kubeletconfig.Value{Percentage: 0.15}, 100 << 30, 16_106_128_000},
		{"5% of inodes", kubeletconfig.Value{Percentage: 0.05}, 3_276_800, 163_840},
		{"quantity ignores capacity", kubeletconfig.Value{Quantity: &q}, 5, 1 << 30},
		{"capacity 0", kubeletconfig.Value{Percentage: 0.1}, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := pressure.ResolveThreshold(tt.v, tt.capacity); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
	if pressure.ThresholdMet(100, 100) || !pressure.ThresholdMet(101, 100) {
		t.Error("ThresholdMet must be threshold > available, strictly")
	}
}

func TestImageGCUsage(t *testing.T) {
	for _, tt := range []struct {
		name                string
		available, capacity *uint64
		want                int
		ok                  bool
	}{
		{"nil capacity", u64(10), nil, 0, false},
		{"capacity 0", u64(0), u64(0), 0, false},
		{"16% free is 84", u64(16), u64(100), 84, true},
		// floor(15.99) = 15, so 85: GC at 85 triggers below 16% free.
		{"15.99% free is 85", u64(1599), u64(10000), 85, true},
		{"nil available counts as 0", nil, u64(100), 100, true},
		{"available above capacity is clamped", u64(200), u64(100), 0, true},
		{"large disk", u64(1 << 50), u64(4 << 50), 75, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pressure.ImageGCUsage(tt.available, tt.capacity)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func fs(avail, capacity, ifree, inodes uint64) *statsapi.FsStats {
	return &statsapi.FsStats{AvailableBytes: u64(avail), CapacityBytes: u64(capacity), InodesFree: u64(ifree), Inodes: u64(inodes), UsedBytes: u64(1), InodesUsed: u64(1)}
}

func summary(node, image, container *statsapi.FsStats) *statsapi.Summary {
	s := &statsapi.Summary{Node: statsapi.NodeStats{NodeName: "n", Fs: node}}
	if image != nil || container != nil {
		s.Node.Runtime = &statsapi.RuntimeStats{ImageFs: image, ContainerFs: container}
	}
	return s
}

func TestEvaluateSummary(t *testing.T) {
	const gi = 1 << 30
	img := fs(14*gi, 100*gi, 900, 1000) // imagefs.available<15% met
	tests := []struct {
		name     string
		s        *statsapi.Summary
		settings func() *kubeletconfig.Settings
		want     []string // signal:met:headroomPoints(%.2f)
		skipped  []string
		split    bool
		nearest  string
	}{
		{
			name: "defaults, containerFs = imageFs",
			s:    summary(fs(50*gi, 100*gi, 90, 100), img, img),
			want: []string{
				"nodefs.available:false:40.00", "nodefs.inodesFree:false:85.00",
				"imagefs.available:true:-1.00", "imagefs.inodesFree:false:85.00",
			},
			nearest: "imagefs.available",
		},
		{
			name: "missing fields are skipped",
			s:    summary(&statsapi.FsStats{UsedBytes: u64(5)}, &statsapi.FsStats{AvailableBytes: u64(1), Inodes: u64(10), InodesFree: u64(9)}, nil),
			// 5% of 10 inodes truncates to a threshold of 0.
			want: []string{"imagefs.inodesFree:false:90.00"},
			skipped: []string{
				"nodefs.available: node.fs has no availableBytes/capacityBytes",
				"nodefs.inodesFree: node.fs has no inodesFree/inodes",
				"imagefs.available: node.runtime.imageFs has no availableBytes/capacityBytes",
			},
			nearest: "imagefs.inodesFree",
		},
		{
			name: "split containerFs gets nodefs's thresholds",
			s:    summary(fs(50*gi, 100*gi, 90, 100), img, fs(9*gi, 100*gi, 90, 100)),
			want: []string{
				"nodefs.available:false:40.00", "nodefs.inodesFree:false:85.00",
				"imagefs.available:true:-1.00", "imagefs.inodesFree:false:85.00",
				"containerfs.available:true:-1.00", "containerfs.inodesFree:false:85.00",
			},
			split:   true,
			nearest: "imagefs.available",
		},
		{
			name: "user containerfs thresholds are replaced, soft ones kept",
			s:    summary(fs(50*gi, 100*gi, 90, 100), img, img),
			settings: func() *kubeletconfig.Settings {
				st := kubeletconfig.Defaults()
				st.EvictionHard = map[string]string{"imagefs.available": "10%", "containerfs.available": "90%"}
				st.EvictionSoft = map[string]string{"nodefs.available": "55%"}
				st.EvictionSoftGracePeriod = map[string]string{"nodefs.available": "1m"}
				return st
			},
			want:    []string{"nodefs.available:true:-5.00", "imagefs.available:false:4.00"},
			nearest: "nodefs.available",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := kubeletconfig.Defaults()
			if tt.settings != nil {
				st = tt.settings()
			}
			e, err := pressure.EvaluateSummary(tt.s, st)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range e.Signals {
				got = append(got, s.Signal+":"+map[bool]string{true: "true", false: "false"}[s.Met]+":"+trim2(s.HeadroomPoints))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("signals\n got %q\nwant %q", got, tt.want)
			}
			if strings.Join(e.Skipped, "|") != strings.Join(tt.skipped, "|") {
				t.Errorf("skipped %q, want %q", e.Skipped, tt.skipped)
			}
			if e.SplitContainerFs != tt.split {
				t.Errorf("split %v", e.SplitContainerFs)
			}
			if n := e.Nearest(); n == nil || n.Signal != tt.nearest {
				t.Errorf("nearest %+v, want %s", n, tt.nearest)
			}
			if e.Met() != strings.Contains(strings.Join(got, " "), ":true:") {
				t.Errorf("Met() = %v", e.Met())
			}
		})
	}
}

// trim2 rounds to two decimals, so float32 widening noise does not matter.
func trim2(f float64) string { return fmt.Sprintf("%.2f", f) }

func TestImageGCAmountToFree(t *testing.T) {
	for _, c := range []struct {
		available, capacity uint64
		low                 int
		want                int64
	}{
		{available: 66412544, capacity: 510873600, low: 80, want: 102174720 - 66412544}, // the harness gc run
		{available: 15, capacity: 101, low: 80, want: 20 - 15},                          // floor(101*20/100) = 20
		{available: 200, capacity: 100, low: 80, want: 20 - 100},                        // available clamped to capacity
	} {
		if got := pressure.ImageGCAmountToFree(c.available, c.capacity, c.low); got != c.want {
			t.Errorf("ImageGCAmountToFree(%d, %d, %d) = %d, want %d", c.available, c.capacity, c.low, got, c.want)
		}
	}
}

package gc

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The expected values below are worked out by hand from
// image_gc_manager.go (kubernetes v1.37.2):
//
//	usagePercent = 100 - int(available*100/capacity)      (int64, floor)
//	GC runs iff usagePercent >= high
//	amountToFree = capacity*(100-low)/100 - available       (int64, floor)
//	order: lastUsed asc, then firstDetected asc (ties: random in the kubelet, ID here)
//	freeSpace: skip lastUsed >= now, skip now-firstDetected < minAge,
//	           freed += size, stop once freed >= amountToFree (checked after a removal)

var (
	t0  = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	now = t0.Add(3 * time.Hour)
)

func u64(v uint64) *uint64 { return &v }

// img is an unused, unpinned image first detected at t0, never used.
func img(id string, size uint64) Image {
	return Image{ID: id, Tags: []string{"example.com/" + id + ":v1"}, Size: size, FirstDetected: t0}
}

func (i Image) lastUsed(t time.Time) Image { i.LastUsed = t; return i }
func (i Image) detected(t time.Time) Image { i.FirstDetected = t; return i }
func (i Image) pinned() Image              { i.Pinned = true; return i }
func (i Image) inUse(by ...string) Image   { i.InUse, i.UsedBy, i.LastUsed = true, by, now; return i }
func ids(cs []Candidate, onlyRemoved bool) []string {
	out := []string{}
	for _, c := range cs {
		if !onlyRemoved || c.WouldRemove {
			out = append(out, c.ID)
		}
	}
	return out
}

func skipped(p *Plan) map[string]SkipReason {
	out := map[string]SkipReason{}
	for _, s := range p.Skipped {
		out[s.ID] = s.Reason
	}
	return out
}

func TestSimulate(t *testing.T) {
	const C = 1_000_000
	def := DefaultPolicy()
	three := []Image{img("a", 60_000), img("b", 50_000), img("c", 10_000)}
	for _, tc := range []struct {
		name      string
		capacity  *uint64
		available *uint64
		images    []Image
		policy    Policy
		opts      Options

		err         error
		verdict     Verdict
		usage       int
		crossed     bool
		runs        bool
		toFree      int64
		order       []string // all candidates, in order
		removed     []string // candidates with WouldRemove
		freed       int64
		reach       bool
		skips       map[string]SkipReason
		maxAge      []string
		maxAgeFreed int64
		note        string // a phrase some note must contain
	}{
		{
			name: "below threshold", capacity: u64(C), available: u64(200_000), images: three, policy: def,
			// 100 - floor(20) = 80 < 85; amountToFree = 200000 - 200000 = 0
			verdict: VerdictBelowThreshold, usage: 80, toFree: 0,
			order: []string{"a", "b", "c"}, removed: []string{}, skips: map[string]SkipReason{},
		},
		{
			name: "16% available is below the 85% boundary", capacity: u64(C), available: u64(160_000), images: three, policy: def,
			// floor(160000*100/1e6) = 16 → usage 84
			verdict: VerdictBelowThreshold, usage: 84, toFree: 40_000,
			order: []string{"a", "b", "c"}, removed: []string{}, skips: map[string]SkipReason{},
		},
		{
			name: "15.9999% available is at the boundary", capacity: u64(C), available: u64(159_999), images: three, policy: def,
			// floor(15.9999) = 15 → usage 85 ≥ 85; amountToFree = 200000 - 159999 = 40001
			// a (60000) ≥ 40001 → stop after a
			verdict: VerdictReachesTarget, usage: 85, crossed: true, runs: true, toFree: 40_001,
			order: []string{"a", "b", "c"}, removed: []string{"a"}, freed: 60_000, reach: true, skips: map[string]SkipReason{},
		},
		{
			name: "exactly 15% available", capacity: u64(C), available: u64(150_000), images: three, policy: def,
			// usage 85; amountToFree 50000; a = 60000 ≥ 50000
			verdict: VerdictReachesTarget, usage: 85, crossed: true, runs: true, toFree: 50_000,
			order: []string{"a", "b", "c"}, removed: []string{"a"}, freed: 60_000, reach: true, skips: map[string]SkipReason{},
		},
		{
			name: "amountToFree floors the first term", capacity: u64(1_000_003), available: u64(100_000), images: three, policy: def,
			// usage = 100 - floor(100000*100/1000003 = 9.99997) = 91
			// amountToFree = floor(1000003*20/100 = 200000.6) - 100000 = 100000
			// a+b = 110000 ≥ 100000 → stop after b
			verdict: VerdictReachesTarget, usage: 91, crossed: true, runs: true, toFree: 100_000,
			order: []string{"a", "b", "c"}, removed: []string{"a", "b"}, freed: 110_000, reach: true, skips: map[string]SkipReason{},
		},
		{
			name: "target not reachable", capacity: u64(C), available: u64(50_000), images: three, policy: def,
			// usage 95; amountToFree 150000; all three = 120000 < 150000
			verdict: VerdictTargetNotReachable, usage: 95, crossed: true, runs: true, toFree: 150_000,
			order: []string{"a", "b", "c"}, removed: []string{"a", "b", "c"}, freed: 120_000, skips: map[string]SkipReason{},
		},
		{
			name: "ordering: lastUsed, then firstDetected, ties by ID", capacity: u64(C), available: u64(0), policy: def,
			images: []Image{
				img("used-1h-ago", 1).lastUsed(now.Add(-time.Hour)),
				img("later", 1).detected(t0.Add(10 * time.Minute)),
				img("tie-z", 1),
				img("tie-b", 1),
				img("used-2h-ago", 1).lastUsed(now.Add(-2 * time.Hour)),
			},
			// never used (zero lastUsed) first: tie-b, tie-z (t0), later (t0+10m); then used 2h ago, 1h ago.
			// usage 100, amountToFree 200000: nothing reaches it.
			verdict: VerdictTargetNotReachable, usage: 100, crossed: true, runs: true, toFree: 200_000,
			order:   []string{"tie-b", "tie-z", "later", "used-2h-ago", "used-1h-ago"},
			removed: []string{"tie-b", "tie-z", "later", "used-2h-ago", "used-1h-ago"}, freed: 5, skips: map[string]SkipReason{},
			note: "random order",
		},
		{
			name: "in use, pinned, too young and used-recently are skipped", capacity: u64(C), available: u64(100_000), policy: def,
			images: []Image{
				img("running", 500_000).inUse("default/web/app (running)"),
				img("pause", 500_000).pinned(),
				img("fresh", 500_000).detected(now.Add(-time.Minute)),
				img("at-min-age", 40_000).detected(now.Add(-2 * time.Minute)), // age == minAge: eligible
				img("clock-skew", 500_000).lastUsed(now),
				img("old", 70_000),
			},
			// usage 90; amountToFree 100000; order (never used): old (t0), at-min-age (now-2m);
			// fresh is skipped inline; clock-skew (lastUsed now) sorts last and is skipped.
			verdict: VerdictReachesTarget, usage: 90, crossed: true, runs: true, toFree: 100_000,
			order: []string{"old", "at-min-age"}, removed: []string{"old", "at-min-age"}, freed: 110_000, reach: true,
			skips: map[string]SkipReason{"running": SkipInUse, "pause": SkipPinned, "fresh": SkipTooYoung, "clock-skew": SkipUsedRecently},
		},
		{
			name: "max age: removed before the space phase, regardless of min age", capacity: u64(C), available: u64(100_000),
			policy: Policy{85, 80, 2 * time.Minute, time.Hour}, opts: Options{BeganGC: now.Add(-2 * time.Hour)},
			images: []Image{
				img("never-used", 30_000),
				img("fresh-never-used", 30_000).detected(now.Add(-time.Minute)),
				img("used-61m-ago", 30_000).lastUsed(now.Add(-61 * time.Minute)),
				img("used-30m-ago", 150_000).lastUsed(now.Add(-30 * time.Minute)),
				img("used-59m-ago", 50_000).lastUsed(now.Add(-59 * time.Minute)),
			},
			// max-age removes never-used, fresh-never-used (zero lastUsed) and used-61m-ago: 90000,
			// not counted toward amountToFree = 100000; space phase: used-59m-ago (50000), used-30m-ago (→200000).
			verdict: VerdictReachesTarget, usage: 90, crossed: true, runs: true, toFree: 100_000,
			order: []string{"used-59m-ago", "used-30m-ago"}, removed: []string{"used-59m-ago", "used-30m-ago"}, freed: 200_000, reach: true,
			maxAge: []string{"never-used", "fresh-never-used", "used-61m-ago"}, maxAgeFreed: 90_000, skips: map[string]SkipReason{},
		},
		{
			name: "max age waits until the kubelet has run longer than MaxAge", capacity: u64(C), available: u64(500_000),
			policy: Policy{85, 80, 2 * time.Minute, time.Hour}, opts: Options{BeganGC: now.Add(-time.Hour)}, // now - beganGC == MaxAge: not yet
			images:  []Image{img("never-used", 30_000)},
			verdict: VerdictBelowThreshold, usage: 50, toFree: -300_000,
			order: []string{"never-used"}, removed: []string{}, skips: map[string]SkipReason{},
			note: "has run longer than imageMaximumGCAge",
		},
		{
			name: "max age with unknown kubelet start is not simulated", capacity: u64(C), available: u64(500_000),
			policy: Policy{85, 80, 2 * time.Minute, time.Hour}, images: []Image{img("never-used", 30_000)},
			verdict: VerdictBelowThreshold, usage: 50, toFree: -300_000,
			order: []string{"never-used"}, removed: []string{}, skips: map[string]SkipReason{},
			note: "start time is unknown",
		},
		{
			name: "nil capacity", capacity: nil, available: u64(10), images: three, policy: def,
			err: ErrInvalidCapacity, verdict: VerdictInvalidCapacity,
			order: []string{"a", "b", "c"}, removed: []string{}, skips: map[string]SkipReason{},
		},
		{
			name: "zero capacity", capacity: u64(0), available: u64(0), images: three, policy: def,
			err: ErrInvalidCapacity, verdict: VerdictInvalidCapacity,
			order: []string{"a", "b", "c"}, removed: []string{}, skips: map[string]SkipReason{},
		},
		{
			name: "nil available counts as 0", capacity: u64(C), available: nil, images: three, policy: def,
			// usage 100; amountToFree 200000 > 120000
			verdict: VerdictTargetNotReachable, usage: 100, crossed: true, runs: true, toFree: 200_000,
			order: []string{"a", "b", "c"}, removed: []string{"a", "b", "c"}, freed: 120_000, skips: map[string]SkipReason{},
			note: "takes available as 0",
		},
		{
			name: "available above capacity is clamped", capacity: u64(C), available: u64(C + 5), images: three, policy: def,
			// available → C: usage 0; amountToFree 200000 - 1000000
			verdict: VerdictBelowThreshold, usage: 0, toFree: -800_000,
			order: []string{"a", "b", "c"}, removed: []string{}, skips: map[string]SkipReason{},
			note: "Availability is larger than capacity",
		},
		{
			name: "amountToFree 0 still removes one image", capacity: u64(1_000_003), available: u64(160_000), images: three,
			policy: Policy{85, 84, 2 * time.Minute, 0},
			// usage = 100 - floor(15.99995) = 85; amountToFree = floor(1000003*16/100 = 160000.48) - 160000 = 0;
			// freeSpace removes a, then 60000 ≥ 0 stops it.
			verdict: VerdictReachesTarget, usage: 85, crossed: true, runs: true, toFree: 0,
			order: []string{"a", "b", "c"}, removed: []string{"a"}, freed: 60_000, reach: true, skips: map[string]SkipReason{},
			note: "still removes the first eligible image",
		},
		{
			name: "forced below the high threshold", capacity: u64(C), available: u64(180_000), images: three, policy: def,
			opts: Options{Force: true},
			// usage 82 < 85; amountToFree = 200000 - 180000 = 20000; a = 60000
			verdict: VerdictReachesTarget, usage: 82, runs: true, toFree: 20_000,
			order: []string{"a", "b", "c"}, removed: []string{"a"}, freed: 60_000, reach: true, skips: map[string]SkipReason{},
			note: "forced",
		},
		{
			name: "forced below the low threshold frees nothing", capacity: u64(C), available: u64(250_000), images: three, policy: def,
			opts:    Options{Force: true},
			verdict: VerdictBelowThreshold, usage: 75, toFree: -50_000,
			order: []string{"a", "b", "c"}, removed: []string{}, skips: map[string]SkipReason{},
			note: "nothing to free",
		},
		{
			name: "disabled", capacity: u64(C), available: u64(0), images: three, policy: Policy{100, 80, 2 * time.Minute, 0},
			verdict: VerdictDisabled,
			order:   []string{"a", "b", "c"}, removed: []string{}, skips: map[string]SkipReason{},
			note: "disabled",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Simulate(tc.capacity, tc.available, tc.images, tc.policy, now, tc.opts)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if p == nil {
				t.Fatal("no plan")
			}
			if p.Verdict != tc.verdict {
				t.Errorf("verdict %q, want %q", p.Verdict, tc.verdict)
			}
			if tc.verdict != VerdictInvalidCapacity && tc.verdict != VerdictDisabled {
				if p.UsagePercent != tc.usage || p.HighCrossed != tc.crossed || p.GCRuns != tc.runs || p.AmountToFree != tc.toFree {
					t.Errorf("usage %d crossed %v runs %v amountToFree %d; want %d %v %v %d", p.UsagePercent, p.HighCrossed, p.GCRuns, p.AmountToFree, tc.usage, tc.crossed, tc.runs, tc.toFree)
				}
			}
			if got := ids(p.Candidates, false); !reflect.DeepEqual(got, tc.order) {
				t.Errorf("candidates %v, want %v", got, tc.order)
			}
			if got := ids(p.Candidates, true); !reflect.DeepEqual(got, tc.removed) {
				t.Errorf("removed %v, want %v", got, tc.removed)
			}
			if p.FreedBytes != tc.freed || p.WouldReachTarget != tc.reach {
				t.Errorf("freed %d reach %v, want %d %v", p.FreedBytes, p.WouldReachTarget, tc.freed, tc.reach)
			}
			if got := skipped(p); !reflect.DeepEqual(got, tc.skips) {
				t.Errorf("skipped %v, want %v", got, tc.skips)
			}
			var maxAge []string
			for _, c := range p.MaxAgeRemovals {
				maxAge = append(maxAge, c.ID)
			}
			if !reflect.DeepEqual(maxAge, tc.maxAge) || p.MaxAgeFreedBytes != tc.maxAgeFreed {
				t.Errorf("max-age removals %v (%d bytes), want %v (%d)", maxAge, p.MaxAgeFreedBytes, tc.maxAge, tc.maxAgeFreed)
			}
			// Cumulative totals are running sums of the removed sizes.
			var sum int64
			for _, c := range p.Candidates {
				if c.WouldRemove {
					sum += int64(c.Size)
					if c.CumulativeFreedBytes != sum {
						t.Errorf("%s: cumulative %d, want %d", c.ID, c.CumulativeFreedBytes, sum)
					}
				} else if c.CumulativeFreedBytes != 0 {
					t.Errorf("%s is kept but has cumulative %d", c.ID, c.CumulativeFreedBytes)
				}
			}
			if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
				t.Errorf("no note contains %q: %q", tc.note, p.Notes)
			}
			if t.Failed() {
				t.Logf("plan: %+v", p)
			}
		})
	}
}

func TestSimulateMessages(t *testing.T) {
	p, err := Simulate(u64(1_000_000), u64(50_000), []Image{img("a", 30_000), img("b", 20_000)}, DefaultPolicy(), now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// formatSize(1e6) = 976.5625 KiB.
	want := "Insufficient free disk space on the node's image filesystem (95% of 976.6 KiB used). Failed to free sufficient space by deleting unused images (freed 50000 bytes). Investigate disk usage, as it could be used by active images, logs, volumes, or other data."
	if p.KubeletMessage != want || p.KubeletEvent != "FreeDiskSpaceFailed" {
		t.Errorf("kubelet message %q (%s), want %q", p.KubeletMessage, p.KubeletEvent, want)
	}
	p, err = Simulate(nil, nil, nil, DefaultPolicy(), now, Options{})
	if err == nil || err.Error() != "invalid capacity 0 on image filesystem" || p.KubeletEvent != "InvalidDiskCapacity" || len(p.Errors) != 1 {
		t.Errorf("nil capacity: %v, %+v", err, p)
	}
	for size, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", 2 << 40: "2.0 TiB"} {
		if got := formatSize(size); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", size, got, want)
		}
	}
}

func TestTieGroups(t *testing.T) {
	imgs := []Image{img("b", 50_000), img("a", 50_000), img("c", 50_000).detected(t0.Add(time.Minute)), img("d", 50_000).detected(t0.Add(time.Minute)), img("e", 1).lastUsed(t0)}
	p, err := Simulate(u64(1_000_000), u64(120_000), imgs, DefaultPolicy(), now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// amountToFree 80000: a, b (group 1) → 100000; stops inside group 1? No: b is the
	// group's last member, so no stop-inside note. Groups: {a,b}=1, {c,d}=2, e alone.
	var groups []int
	for _, c := range p.Candidates {
		groups = append(groups, c.TieGroup)
	}
	if want := []int{1, 1, 2, 2, 0}; !reflect.DeepEqual(groups, want) {
		t.Errorf("tie groups %v, want %v (candidates %v)", groups, want, ids(p.Candidates, false))
	}
	if strings.Contains(strings.Join(p.Notes, "\n"), "stops inside tie group") {
		t.Errorf("unexpected stop-inside note: %q", p.Notes)
	}
	// amountToFree 30000 stops after a, inside group 1.
	p, _ = Simulate(u64(1_000_000), u64(170_000), imgs, Policy{83, 80, 2 * time.Minute, 0}, now, Options{})
	if !strings.Contains(strings.Join(p.Notes, "\n"), "stops inside tie group 1") {
		t.Errorf("missing stop-inside note: %q", p.Notes)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{DefaultPolicy(), ""},
		{Policy{101, 80, 0, 0}, "imageGCHighThresholdPercent (--image-gc-high-threshold) 101 must be between 0 and 100"},
		{Policy{85, -1, 0, 0}, "imageGCLowThresholdPercent (--image-gc-low-threshold) -1 must be between 0 and 100"},
		{Policy{80, 80, 0, 0}, "imageGCLowThresholdPercent (--image-gc-low-threshold) 80 must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) 80"},
		{Policy{85, 80, -time.Second, 0}, "imageMinimumGCAge -1s must not be negative"},
		{Policy{85, 80, 0, -time.Second}, "imageMaximumGCAge -1s must not be negative"},
		{Policy{85, 80, 2 * time.Minute, 2 * time.Minute}, "imageMaximumGCAge 2m0s must be greater than imageMinimumGCAge 2m0s"},
		{Policy{85, 80, 0, 0}, ""},
	} {
		err := tc.p.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.p, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.p, err, tc.want)
		}
		if _, err := Simulate(u64(1), u64(1), nil, tc.p, now, Options{}); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("Simulate accepted %+v: %v", tc.p, err)
		}
	}
}

func TestPolicyJSON(t *testing.T) {
	in := Policy{HighThresholdPercent: 90, LowThresholdPercent: 70, MinAge: 90 * time.Second, MaxAge: 48 * time.Hour}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"highThresholdPercent":90,"lowThresholdPercent":70,"minAge":"1m30s","maxAge":"48h0m0s"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var out Policy
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("round trip: %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"minAge":"soon"}`), &out); err == nil {
		t.Error("bad duration accepted")
	}
}

package pressure

import (
	"fmt"
	"math"
	"strings"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/kubeletconfig"
)

// This file evaluates thresholds on a Summary alone, as a cluster view has
// it (no mount table, no device names): the same arithmetic as Evaluate,
// without the layout decisions that need the node.

// ResolveThreshold is GetThresholdQuantity: a quantity as given, a
// percentage as int64(float64(capacity) * float64(pct)) with pct the
// kubelet's float32, so 10% of 1e12 is 100000001490.
func ResolveThreshold(v kubeletconfig.Value, capacity uint64) int64 {
	return v.Resolve(int64(capacity))
}

// ThresholdMet is thresholdsMet for a LessThan threshold: met iff the
// resolved threshold is strictly greater than what is available.
func ThresholdMet(threshold int64, available uint64) bool {
	return threshold > int64(available)
}

// ImageGCUsage is the image GC manager's usagePercent,
// 100 - int(available*100/capacity): nil fields count as 0, available
// above capacity is clamped to it, and ok is false for capacity 0 (the
// kubelet's "invalid capacity 0 on image filesystem").
func ImageGCUsage(available, capacity *uint64) (usage int, ok bool) {
	var a, c int64
	if capacity != nil {
		c = int64(*capacity)
	}
	if available != nil {
		a = int64(*available)
	}
	if c <= 0 {
		return 0, false
	}
	a = min(a, c)
	return 100 - int(a*100/c), true
}

// ImageGCAmountToFree is the image GC manager's amountToFree,
// capacity*(100-low)/100 - available (int64, floor on the first term), with
// available clamped to capacity as ImageGCUsage does.
func ImageGCAmountToFree(available, capacity uint64, lowPercent int) int64 {
	c := int64(capacity)
	a := min(int64(available), c)
	return c*int64(100-lowPercent)/100 - a
}

// SummarySignal is one eviction threshold evaluated on a Summary.
type SummarySignal struct {
	Signal string `json:"signal"`
	// Kind is hard or soft.
	Kind string `json:"kind"`
	// Filesystem is the Summary path observed, e.g. node.runtime.imageFs.
	Filesystem string `json:"filesystem"`
	// Configured is the threshold as written, e.g. "15%".
	Configured string `json:"configured"`
	// Observed is available bytes or free inodes; Capacity the total.
	Observed uint64 `json:"observed"`
	Capacity uint64 `json:"capacity"`
	// Threshold is the resolved quantity.
	Threshold int64 `json:"threshold"`
	Met       bool  `json:"met"`
	// Headroom is Observed - Threshold: what can still be used before the
	// threshold is met (negative once met).
	Headroom int64 `json:"headroom"`
	// HeadroomPoints is Headroom in percentage points of Capacity; for a
	// percentage threshold that is free% minus threshold%.
	HeadroomPoints float64 `json:"headroomPoints"`
}

// SummaryEvaluation is every filesystem threshold of a Summary.
type SummaryEvaluation struct {
	Signals []SummarySignal `json:"signals"`
	// Skipped names the thresholds without an observation, as the kubelet
	// skips them ("no observation found for eviction signal").
	Skipped []string `json:"skipped,omitempty"`
	// SplitContainerFs is containerFs differing from imageFs; only then
	// are containerfs signals evaluated (with nodefs's thresholds, as
	// UpdateContainerFsThresholds copies them for a split layout).
	// Otherwise containerFs is imageFs and its thresholds are copies of
	// nodefs's or imagefs's, so they repeat one of those signals.
	SplitContainerFs bool `json:"splitContainerFs"`
}

// Nearest is the signal with the least headroom in points, nil if none.
func (e *SummaryEvaluation) Nearest() *SummarySignal {
	var best *SummarySignal
	for i := range e.Signals {
		if best == nil || e.Signals[i].HeadroomPoints < best.HeadroomPoints {
			best = &e.Signals[i]
		}
	}
	return best
}

// Met is whether any threshold is met: the kubelet then reports DiskPressure.
func (e *SummaryEvaluation) Met() bool {
	for _, s := range e.Signals {
		if s.Met {
			return true
		}
	}
	return false
}

// EvaluateSummary resolves the filesystem thresholds of settings against a
// Summary's node.fs, imageFs and (when split) containerFs.
func EvaluateSummary(s *statsapi.Summary, settings *kubeletconfig.Settings) (*SummaryEvaluation, error) {
	all, err := settings.Thresholds()
	if err != nil {
		return nil, err
	}
	return EvaluateSummaryThresholds(s, all), nil
}

// EvaluateSummaryThresholds is EvaluateSummary with the thresholds parsed
// once (settings.Thresholds()), for many Summaries.
func EvaluateSummaryThresholds(s *statsapi.Summary, all []kubeletconfig.Threshold) *SummaryEvaluation {
	var imageFs, containerFs *statsapi.FsStats
	if rt := s.Node.Runtime; rt != nil {
		imageFs, containerFs = rt.ImageFs, rt.ContainerFs
	}
	e := &SummaryEvaluation{SplitContainerFs: containerFs != nil && !SameFs(imageFs, containerFs)}
	fsFor := map[string]struct {
		path string
		fs   *statsapi.FsStats
	}{
		"nodefs":      {"node.fs", s.Node.Fs},
		"imagefs":     {"node.runtime.imageFs", imageFs},
		"containerfs": {"node.runtime.containerFs", containerFs},
	}
	var thresholds []kubeletconfig.Threshold
	for _, t := range all {
		// User-set containerfs thresholds are replaced, as the kubelet does.
		if t.Signal != kubeletconfig.ContainerFsAvailable && t.Signal != kubeletconfig.ContainerFsInodesFree {
			thresholds = append(thresholds, t)
		}
	}
	thresholds = appendContainerFsCopies(all, thresholds, e.SplitContainerFs)

	for _, sig := range signalOrder {
		for _, t := range thresholds {
			if t.Signal != sig.name {
				continue
			}
			role := roleName(sig.name)
			f := fsFor[role]
			obs, capacity := observe(f.fs, sig.unit)
			if obs == nil || capacity == nil {
				e.Skipped = append(e.Skipped, fmt.Sprintf("%s: %s has no %s", t.Signal, f.path, map[string]string{"bytes": "availableBytes/capacityBytes", "inodes": "inodesFree/inodes"}[sig.unit]))
				continue
			}
			e.Signals = append(e.Signals, EvaluateThreshold(t, f.path, *obs, *capacity))
		}
	}
	return e
}

// appendContainerFsCopies adds the containerfs copies of nodefs's
// thresholds for a split layout.
func appendContainerFsCopies(all, out []kubeletconfig.Threshold, split bool) []kubeletconfig.Threshold {
	if !split {
		return out
	}
	for _, t := range all {
		if t.Signal != kubeletconfig.NodeFsAvailable && t.Signal != kubeletconfig.NodeFsInodesFree {
			continue
		}
		c := t
		c.Signal = "containerfs." + signalUnit(t.Signal)
		c.Source = fmt.Sprintf("copied from %s (%s)", t.Signal, t.Source)
		out = append(out, c)
	}
	return out
}

// EvaluateThreshold resolves one threshold against an observation.
func EvaluateThreshold(t kubeletconfig.Threshold, filesystem string, observed, capacity uint64) SummarySignal {
	s := SummarySignal{Signal: t.Signal, Kind: kindOf(t), Filesystem: filesystem, Configured: t.Configured, Observed: observed, Capacity: capacity}
	s.Threshold = ResolveThreshold(t.Value, capacity)
	s.Met = ThresholdMet(s.Threshold, observed)
	s.Headroom = saturatingSub(observed, s.Threshold)
	if capacity > 0 {
		s.HeadroomPoints = float64(s.Headroom) * 100 / float64(capacity)
	}
	return s
}

// SameFs is whether two FsStats report the same values (nil fields equal
// only to nil); time is not compared.
func SameFs(a, b *statsapi.FsStats) bool {
	if a == nil || b == nil {
		return a == b
	}
	eq := func(x, y *uint64) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.AvailableBytes, b.AvailableBytes) && eq(a.CapacityBytes, b.CapacityBytes) && eq(a.UsedBytes, b.UsedBytes) &&
		eq(a.InodesFree, b.InodesFree) && eq(a.Inodes, b.Inodes) && eq(a.InodesUsed, b.InodesUsed)
}

// signalUnit is "available" of "nodefs.available".
func signalUnit(signal string) string {
	_, unit, _ := strings.Cut(signal, ".")
	return unit
}

// roleName is "nodefs" of "nodefs.available".
func roleName(signal string) string {
	role, _, _ := strings.Cut(signal, ".")
	return role
}

// saturatingSub is observed - threshold with observed capped at the int64
// range (thresholds are never negative).
func saturatingSub(observed uint64, threshold int64) int64 {
	return int64(min(observed, math.MaxInt64)) - threshold
}
